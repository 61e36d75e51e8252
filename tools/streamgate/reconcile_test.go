package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/inventory"
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/reconcile"
	"github.com/streamgate/streamgate/services/run"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/status"
)

// serve runs one service with run.Run until the test ends and returns its
// address.
func serve(t *testing.T, o run.Options) string {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	o.Listen, o.Store = "127.0.0.1:0", run.StoreMemory
	o.Keys = []keyring.Key{{Name: "cli", Secret: "k", Delegate: true, Roles: []string{"admin"}}}
	o.Ready = func(a string) { addr <- a }
	go func() { done <- run.Run(ctx, o) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case a := <-addr:
		return a
	case err := <-done:
		t.Fatal(err)
	}
	return ""
}

func TestReconcileCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sb := payments.NewSandbox("A", 0)
	url, err := sb.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	ordersAddr := serve(t, run.Options{Service: "orders", Inventory: "127.0.0.1:1", CallKey: "k"})
	paymentsAddr := serve(t, run.Options{Service: "payments", Gateways: map[string]string{"A": url}, ProviderTimeout: 100 * time.Millisecond, SettleInterval: -1})
	inventoryAddr := serve(t, run.Options{Service: "inventory"})

	// A charge whose answer was lost, and a charge for an order that does
	// not exist.
	c, err := caller.Dial(paymentsAddr, caller.WithKey("k"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	alice := caller.ContextWithMeta(ctx, socket.Meta{APIVersion: "v2", Principal: socket.Principal{Subject: "alice"}})
	if _, err := caller.Call[payments.Payment](alice, c, "PAY", "", payments.PayInput{OrderID: "ord_lost", AmountCents: 500, Gateway: "A", Card: "4000000000000259"}); status.CodeOf(err) != socket.CodeDeadlineExceeded {
		t.Fatalf("lost answer: %v", err)
	}
	if _, err := caller.Call[payments.Payment](alice, c, "PAY", "", payments.PayInput{OrderID: "ord_nowhere", AmountCents: 700, Gateway: "A", Card: "4242424242424242"}); err != nil {
		t.Fatal(err)
	}

	// Stock reserved by a purchase no order knows (its gateway died
	// before BEGIN_PURCHASE's order could be paid, and it was aborted).
	ic, err := caller.Dial(inventoryAddr, caller.WithKey("k"))
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	admin := caller.ContextWithMeta(ctx, socket.Meta{APIVersion: "v1", Principal: socket.Principal{Subject: "root", Roles: []string{"admin"}}})
	if _, err := caller.Call[inventory.Item](admin, ic, "CREATE_ITEM", "", map[string]any{"id": "mug", "name": "Mug", "price_cents": 900, "stock": 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := caller.Call[inventory.Reservation](admin, ic, "RESERVE_STOCK", "pur_gone", map[string]any{"lines": []inventory.Line{{ItemID: "mug", Quantity: 2}}}); err != nil {
		t.Fatal(err)
	}
	stock := func() int64 {
		it, err := caller.Call[inventory.Item](admin, ic, "GET_ITEM", "mug", nil)
		if err != nil {
			t.Fatal(err)
		}
		return it.Stock
	}

	reconcileCmd := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		args = append([]string{"reconcile", "-orders", ordersAddr, "-payments", paymentsAddr, "-inventory", inventoryAddr, "-older-than", "1ms"}, args...)
		return dispatch(ctx, args, &out, &errOut), out.String(), errOut.String()
	}
	t.Setenv("STREAMGATE_SERVICE_KEY", "k")
	const releasedStock = "released_stock reservation pur_gone (2 of mug): purchase_abandoned"
	status, out, errOut := reconcileCmd("-dry-run")
	if status != 0 || !strings.Contains(out, "dry run") || !strings.Contains(out, releasedStock) || len(sb.Taken()) != 2 || stock() != 3 {
		t.Fatalf("dry run: %d %q %q, taken %v", status, out, errOut, sb.Taken())
	}
	status, out, errOut = reconcileCmd()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if status != 0 || len(lines) != 4 ||
		!strings.Contains(out, "refunded payment order ord_lost") || !strings.Contains(out, "refunded charge order ord_nowhere") ||
		!strings.Contains(out, releasedStock) ||
		!strings.HasPrefix(lines[3], "settled 3: refunded 2 released_stock 1") {
		t.Fatalf("run: %d\n%s\n%s", status, out, errOut)
	}
	if len(sb.Taken()) != 0 {
		t.Fatalf("the gateway still holds %v", sb.Taken())
	}
	if got := stock(); got != 5 {
		t.Fatalf("stock %d after the run, want 5", got)
	}
	status, out, _ = reconcileCmd()
	if status != 0 || strings.TrimSpace(out) != "nothing to settle (0 in flight)" {
		t.Fatalf("second run: %d %q", status, out)
	}
	status, out, _ = reconcileCmd("-json")
	var rep reconcile.Report
	if status != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Entries == nil || len(rep.Entries) != 0 {
		t.Fatalf("-json: %d %q", status, out)
	}
	status, _, errOut = reconcileCmd("-key", "wrong")
	if status != 1 || !strings.Contains(errOut, "UNAUTHENTICATED") && !strings.Contains(errOut, "unknown or revoked key") {
		t.Fatalf("wrong key: %d %q", status, errOut)
	}
	if status, _, _ := reconcileCmd("extra"); status != 2 {
		t.Fatalf("extra argument: status %d, want 2", status)
	}
}
