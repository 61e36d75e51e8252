package faults_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/services/inventory"
	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/reconcile"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/tools/internal/resttest"
)

// cardHangs is the sandbox's card whose charge is never answered: the
// gateway waits until the payments service's provider timeout.
const cardHangs = "4000000000000119"

// gatewayEnv names the env var that makes TestGatewayProcess a gateway:
// the JSON of the service targets it reaches.
const gatewayEnv = "STREAMGATE_FAULTS_GATEWAY_TARGETS"

// TestGatewayProcess is not a test: it is the gateway that
// startGatewayProcess runs in a child process (this test binary again),
// so that a test can SIGKILL it. It prints its REST address and serves
// until killed.
func TestGatewayProcess(t *testing.T) {
	spec := os.Getenv(gatewayEnv)
	if spec == "" {
		t.Skip("the child gateway of TestReconcileAfterGatewayCrash")
	}
	var targets map[string]string
	if err := json.Unmarshal([]byte(spec), &targets); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"STREAMGATE_SERVICE_KEY": serviceKey, "STREAMGATE_ADMIN_KEY": adminKey, "STREAMGATE_JWT_SECRET": jwtSecret}
	err := gateway.Run(context.Background(), gateway.RunOptions{
		ConfigPath: configPath, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		Env:     func(k string) string { return env[k] },
		Targets: targets,
		Options: []gateway.Option{gateway.WithCacheSize(0), gateway.WithoutCoalescing()},
		Ready:   func(a gateway.Addrs) { fmt.Printf("gateway-http=%s\n", a.HTTP) },
	})
	t.Fatalf("the child gateway stopped: %v", err)
}

// gatewayProcess is a gateway in a child process.
type gatewayProcess struct {
	cmd    *exec.Cmd
	rest   *resttest.Client
	done   chan error // Wait's result
	killed sync.Once
}

// startGatewayProcess runs a gateway in a child process, reaching the
// cluster's services through their proxies, and waits until it serves.
func (c *cluster) startGatewayProcess(t *testing.T) *gatewayProcess {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]string{}
	for name := range c.services {
		targets[name] = c.target(name)
	}
	spec, err := json.Marshal(targets)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestGatewayProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), gatewayEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &gatewayProcess{cmd: cmd, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "gateway-http="); ok {
				addr <- a
			}
		}
		g.done <- cmd.Wait()
	}()
	t.Cleanup(func() { g.kill(t) })
	select {
	case a := <-addr:
		transport := &http.Transport{}
		t.Cleanup(transport.CloseIdleConnections)
		g.rest = &resttest.Client{Base: "http://" + a, HTTP: &http.Client{Transport: transport, Timeout: waitLong}}
	case err := <-g.done:
		g.done <- err
		t.Fatalf("the child gateway stopped: %v", err)
	case <-time.After(waitLong):
		t.Fatal("the child gateway was not ready")
	}
	return g
}

// kill SIGKILLs the child gateway, as a crash would stop it, and waits
// until it is gone.
func (g *gatewayProcess) kill(t testing.TB) {
	g.killed.Do(func() {
		_ = g.cmd.Process.Kill()
		select {
		case <-g.done:
		case <-time.After(waitLong):
			t.Errorf("the child gateway did not die")
		}
	})
}

// eventually polls cond until it holds or waitLong has passed.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		<-time.After(20 * time.Millisecond)
	}
}

// stock reads an item's stock as the admin.
func (c *cluster) stock(t testing.TB, id string) int64 {
	t.Helper()
	return resttest.Into[inventory.Item](t, c.call(t, adminKey, "GET", "/v1/items/"+id, nil, http.StatusOK)).Stock
}

// orderOf has the user order n of the item.
func (c *cluster) orderOf(t testing.TB, user, itemID string, n int64) orders.Order {
	t.Helper()
	return resttest.Into[orders.Order](t, c.call(t, as(t, user), "POST", "/v1/orders", map[string]any{"lines": []orders.Line{{ItemID: itemID, Quantity: n}}}, http.StatusCreated))
}

// TestReconcileAfterGatewayCrash: the gateway process is SIGKILLed while
// v3 purchases wait on the payment provider, after their stock was
// reserved. Nothing was charged; a reconciliation run once their leases
// ran out releases the purchases and their reservations, and the stock is
// exactly the initial stock less what paid orders took: an order for all
// of it pays.
func TestReconcileAfterGatewayCrash(t *testing.T) {
	c := startCluster(t, options{})
	const initial = 60
	item := c.newItem(t, "crash", 100, initial)
	c.newUser(t, "cora")
	tok := as(t, "cora")
	pay := func(rest *resttest.Client, o orders.Order, card string) (reply, error) {
		return rest.Do(tok, "POST", "/v3/orders/"+o.ID+"/pay", map[string]any{"gateway": "A", "card": card}, "Idempotency-Key", newKey())
	}

	// Purchases that complete: their stock stays taken.
	var paid int64
	for _, n := range []int64{1, 2, 3} {
		o := c.orderOf(t, "cora", item.ID, n)
		r, err := pay(c.rest, o, cardOK)
		if err != nil || r.Status != http.StatusOK {
			t.Fatalf("pay %d: %v %+v", n, err, r)
		}
		paid += n
	}

	// Purchases in flight when the gateway dies: stock reserved, the
	// charges waiting on the provider.
	g := c.startGatewayProcess(t)
	var crashed []orders.Order
	var reserved int64
	for _, n := range []int64{4, 5, 6, 7} {
		crashed = append(crashed, c.orderOf(t, "cora", item.ID, n))
		reserved += n
	}
	var wg sync.WaitGroup
	for _, o := range crashed {
		wg.Go(func() { _, _ = pay(g.rest, o, cardHangs) })
	}
	eventually(t, "every crashed purchase's charge is pending", func() bool {
		for _, o := range crashed {
			ps := c.payments(t, o.ID)
			if len(ps) != 1 || ps[0].Status != payments.StatusPending {
				return false
			}
		}
		return true
	})
	g.kill(t)
	wg.Wait()
	if got := c.stock(t, item.ID); got != initial-paid-reserved {
		t.Fatalf("stock %d after the crash, want %d", got, initial-paid-reserved)
	}
	// The payments service finishes its charges on its own: the provider
	// times out and nothing was charged.
	eventually(t, "the crashed purchases' payments failed", func() bool {
		for _, o := range crashed {
			if ps := c.payments(t, o.ID); len(ps) != 1 || ps[0].Status != payments.StatusFailed {
				return false
			}
		}
		return true
	})

	// Past the leases, reconcile: a dry run shows the reservations and
	// changes nothing, a run releases them.
	opts := c.reconcileOptions(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	for _, dry := range []bool{true, false} {
		opts.DryRun = dry
		rep, err := reconcile.Run(ctx, opts)
		if err != nil {
			t.Fatalf("reconcile (dry run %v): %v (%+v)", dry, err, rep)
		}
		t.Logf("reconcile after the crash (dry run %v): %s", dry, rep.Summary())
		var stock int64
		for _, e := range rep.Entries {
			if e.Kind == reconcile.KindReservation {
				stock += e.Lines[0].Quantity
			}
		}
		if n := rep.Counts[reconcile.ActionReleasedStock]; n != len(crashed) || stock != reserved || rep.Counts[reconcile.ActionReleased] != len(crashed) {
			t.Fatalf("reconcile (dry run %v): %d reservations released (%d items), want %d (%d): %s", dry, n, stock, len(crashed), reserved, rep.Summary())
		}
		if got, want := c.stock(t, item.ID), initial-paid-reserved; dry && got != want {
			t.Fatalf("stock %d after a dry run, want %d", got, want)
		}
	}
	for _, o := range crashed {
		if got := c.order(t, o.ID); got.Status != orders.StatusPending {
			t.Errorf("order %s is %s after reconcile, want pending", o.ID, got.Status)
		}
	}
	if got := c.stock(t, item.ID); got != initial-paid {
		t.Fatalf("stock %d after reconcile, want %d (initial %d less %d paid)", got, initial-paid, initial, paid)
	}
	// All of the stock can be bought.
	rest := c.orderOf(t, "cora", item.ID, initial-paid)
	if r, err := pay(c.rest, rest, cardOK); err != nil || r.Status != http.StatusOK {
		t.Fatalf("paying for the rest of the stock: %v %d %s", err, r.Status, r.Raw)
	}
	if got := c.stock(t, item.ID); got != 0 {
		t.Fatalf("stock %d after buying all of it", got)
	}
	c.settled(t)
}

// reconcileOptions are the options of a reconciliation run against the
// cluster, three minutes ahead (past every lease), as settled runs it.
func (c *cluster) reconcileOptions(t testing.TB) reconcile.Options {
	t.Helper()
	dial := func(name string) *caller.Client {
		cl, err := caller.Dial(c.target(name), caller.WithKey(serviceKey))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		return cl
	}
	return reconcile.Options{
		Orders: dial("orders"), Payments: dial("payments"), Inventory: dial("inventory"),
		Now:       func() time.Time { return time.Now().Add(3 * time.Minute) },
		OlderThan: time.Minute,
	}
}

// stockExact fails the test unless every item newItem made holds its
// initial stock less the quantities of the paid orders whose purchase
// took stock (v3's), and every reservation still held is such an order's.
func (c *cluster) stockExact(t testing.TB, ordersClient, inventoryClient *caller.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	ctx = caller.ContextWithMeta(ctx, socket.Meta{APIVersion: "v1", Principal: socket.Principal{Subject: "faults", Roles: []string{"admin"}}})
	paid := map[string]orders.Order{} // purchase id → order
	for in := (orders.ListOrdersInput{Status: orders.StatusPaid, PageSize: 1000}); ; {
		page, err := caller.Call[orders.Page[orders.Order]](ctx, ordersClient, "LIST_ORDERS", "", in)
		if err != nil {
			t.Fatalf("LIST_ORDERS: %v", err)
		}
		for _, o := range page.Items {
			paid[o.PurchaseID] = o
		}
		if in.PageToken = page.NextPageToken; in.PageToken == "" {
			break
		}
	}
	taken := map[string]int64{} // item id → quantity
	for in := (inventory.ReservationsInput{Status: inventory.ReservationHeld, PageSize: 1000}); ; {
		page, err := caller.Call[inventory.ReservationPage](ctx, inventoryClient, "LIST_RESERVATIONS", "", in)
		if err != nil {
			t.Fatalf("LIST_RESERVATIONS: %v", err)
		}
		for _, r := range page.Reservations {
			o, ok := paid[r.ID]
			if !ok {
				t.Errorf("reservation %s holds %v for a purchase no paid order has", r.ID, r.Reserved)
				continue
			}
			want := map[string]int64{}
			for _, l := range o.Lines {
				want[l.ItemID] += l.Quantity
			}
			for _, l := range r.Reserved {
				taken[l.ItemID] += l.Quantity
				if want[l.ItemID] != l.Quantity {
					t.Errorf("reservation %s holds %d of %s, its paid order %s %d", r.ID, l.Quantity, l.ItemID, o.ID, want[l.ItemID])
				}
			}
		}
		if in.PageToken = page.NextPageToken; in.PageToken == "" {
			break
		}
	}
	c.initialStock.Range(func(id, initial any) bool {
		it, err := caller.Call[inventory.Item](ctx, inventoryClient, "GET_ITEM", id.(string), nil)
		if err != nil {
			t.Errorf("GET_ITEM %s: %v", id, err)
			return true
		}
		if want := initial.(int64) - taken[it.ID]; it.Stock != want {
			t.Errorf("item %s: stock %d, want %d (initial %d less %d paid)", it.ID, it.Stock, want, initial, taken[it.ID])
		}
		return true
	})
}
