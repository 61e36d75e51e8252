package stack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/internal/rusage"
	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/tools/streamgate/internal/stack"
)

// BenchmarkPurchase measures whole v3 purchases per second, two ways, on
// one stack (memory store, sandbox gateway A, which answers after 20 ms):
//
//   - gateway: POST /v3/orders/{id}/pay through the REST edge, which runs
//     the route's pipeline over the services' sockets (GET_ORDER, four
//     checks in parallel, BEGIN_PURCHASE, RESERVE_STOCK, PAY, MARK_PAID);
//   - unary: the same nine steps called one by one from a Go client as
//     unary gRPC (SocketService.Call) on each service, with the same meta
//     (version, principal, a key per step) and bodies built from the
//     earlier steps' results, as a caller without the gateway would.
//
// Each purchase pays its own order, made before the timer starts; the
// callers run in parallel (8 per CPU), so what bounds purchases/s is CPU,
// not the sandbox's latency.
func BenchmarkPurchase(b *testing.B) {
	s := startStack(b, stack.Options{})
	const users = 8
	ids := make([]string, users)
	for i := range ids {
		ids[i] = s.newUser(b, fmt.Sprintf("bench-%d", i)).ID
	}
	item := s.newItem(b, 1500, 1<<40)

	b.Run("gateway", func(b *testing.B) {
		todo := s.benchOrders(b, ids, item.ID)
		s.runPurchases(b, todo, func(o orders.Order) error {
			r, err := s.tryPay("v3", as(b, o.UserID), o.ID, "A", cardOK)
			if err == nil && r.Status != http.StatusOK {
				err = fmt.Errorf("pay: %d %s", r.Status, r.Raw)
			}
			return err
		})
	})
	b.Run("unary", func(b *testing.B) {
		u := dialUnary(b, s)
		todo := s.benchOrders(b, ids, item.ID)
		s.runPurchases(b, todo, u.purchase)
	})
}

// benchOrders makes b.N orders of one unit of the item, spread over the
// users.
func (s *testStack) benchOrders(b *testing.B, users []string, itemID string) chan orders.Order {
	b.Helper()
	todo := make(chan orders.Order, b.N)
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 8 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
				user := users[i%int64(len(users))]
				r, err := s.do(as(b, user), "POST", "/v1/orders", map[string]any{"lines": []orders.Line{{ItemID: itemID, Quantity: 1}}})
				var o orders.Order
				if err == nil && r.Status == http.StatusCreated {
					err = json.Unmarshal(r.Result, &o)
				} else if err == nil {
					err = fmt.Errorf("create order: %d %s", r.Status, r.Raw)
				}
				if err != nil {
					b.Error(err)
					return
				}
				todo <- o
			}
		})
	}
	wg.Wait()
	close(todo)
	if b.Failed() {
		b.FailNow()
	}
	return todo
}

// runPurchases pays every order in todo with pay, from parallel callers,
// and reports purchases/s and the CPU time of the process (stack, gateway
// and callers) per purchase, which depends less on what else the machine
// runs.
func (s *testStack) runPurchases(b *testing.B, todo chan orders.Order, pay func(orders.Order) error) {
	b.ReportAllocs()
	b.SetParallelism(64)
	cpu := rusage.CPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := pay(<-todo); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "purchases/s")
	rusage.Report(b, cpu)
}

// unaryShop calls the stack's services as unary gRPC with the service key.
type unaryShop struct {
	stubs map[string]socketv1.SocketServiceClient
	key   string
}

// dialUnary connects to every service of the stack, from its banner.
func dialUnary(b *testing.B, s *testStack) *unaryShop {
	b.Helper()
	u := &unaryShop{stubs: map[string]socketv1.SocketServiceClient{}}
	for line := range strings.Lines(s.banner) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "service" && f[1] == "key":
			u.key = f[2]
		case len(f) >= 3 && f[0] == "service":
			cc, err := grpc.NewClient(f[2], grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = cc.Close() })
			u.stubs[f[1]] = socketv1.NewSocketServiceClient(cc)
		}
	}
	if u.key == "" || len(u.stubs) != 4 {
		b.Fatalf("no service key or not four services in the banner:\n%s", s.banner)
	}
	return u
}

// call runs one action as unary gRPC for the user and decodes its result
// into out (unless nil).
func (u *unaryShop) call(service, action, id string, body any, user, key string, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+u.key)
	r, err := u.stubs[service].Call(ctx, &socketv1.CallRequest{Request: &socketv1.Request{
		Action: action, ResourceId: id, Payload: &socketv1.Request_BodyRaw{BodyRaw: raw},
		Meta: &socketv1.Meta{ApiVersion: "v3", IdempotencyKey: key, Principal: &socketv1.Principal{Subject: user, Roles: []string{"user"}}},
	}})
	if err != nil {
		return err
	}
	if !r.GetResponse().GetOk() {
		return fmt.Errorf("%s: %s", action, r.GetResponse().GetError())
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(r.GetResponse().GetResultRaw(), out)
}

// purchase is the v3 pay route's pipeline (gateway/stack.yaml), step by
// step.
func (u *unaryShop) purchase(o orders.Order) error {
	user, card, key := o.UserID, cardOK, newKey()
	var order, purchase orders.Order
	if err := u.call("orders", "GET_ORDER", o.ID, nil, user, "", &order); err != nil {
		return err
	}
	if err := u.call("users", "REQUIRE_PURCHASABLE", order.UserID, nil, user, "", nil); err != nil {
		return err
	}
	if err := u.call("orders", "CHECK_VOUCHER", o.ID, nil, user, "", nil); err != nil {
		return err
	}
	if err := u.call("inventory", "REQUIRE_AVAILABLE", "", map[string]any{"order": order}, user, "", nil); err != nil {
		return err
	}
	if err := u.call("payments", "CHECK_PAYMENT", "", map[string]any{"order_id": o.ID, "gateway": "A", "card": card, "user_id": order.UserID}, user, "", nil); err != nil {
		return err
	}
	if err := u.call("orders", "BEGIN_PURCHASE", o.ID, nil, user, key+":purchase", &purchase); err != nil {
		return err
	}
	if err := u.call("inventory", "RESERVE_STOCK", purchase.PurchaseID, map[string]any{"order": purchase}, user, key+":stock", nil); err != nil {
		return err
	}
	var payment payments.Payment
	if err := u.call("payments", "PAY", "", map[string]any{"order_id": o.ID, "amount_cents": purchase.TotalCents, "gateway": "A", "card": card, "user_id": purchase.UserID}, user, key+":payment", &payment); err != nil {
		return err
	}
	return u.call("orders", "MARK_PAID", o.ID, map[string]any{"payment_id": payment.ID, "amount_cents": payment.AmountCents, "version": purchase.Version, "purchase_id": purchase.PurchaseID}, user, key+":paid", nil)
}
