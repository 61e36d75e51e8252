package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/streamgate/streamgate/services/internal/once/oncetest"
	"github.com/streamgate/streamgate/services/inventory"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

const shopKey = "shop-test-key"

// startInventory runs shop/inventory.js on a free port with store and
// returns a client of it (the stack's way: a delegating key with role
// admin); the process is stopped with SIGTERM at cleanup and must exit 0.
func startInventory(t *testing.T, store string) *caller.Client {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH: the Node inventory needs Node.js 20")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "pg")); err != nil {
		t.Skip("services/node/node_modules is missing: run `npm ci` in services/node")
	}
	cmd := exec.Command(node, "shop/inventory.js", "-addr", "127.0.0.1:0", "-key", shopKey, "-store", store)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" {
				addr <- line.Addr
			}
		}
		exited <- cmd.Wait()
	}()
	var c *caller.Client
	t.Cleanup(func() {
		if c != nil {
			_ = c.Close()
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("the inventory exited with %v after SIGTERM", err)
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("the inventory did not exit within 20s of SIGTERM")
		}
	})
	select {
	case a := <-addr:
		c, err = caller.Dial(a, caller.WithKey(shopKey))
		if err != nil {
			t.Fatal(err)
		}
		return c
	case err := <-exited:
		t.Fatalf("the inventory exited before serving: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the inventory did not start serving within 30s")
	}
	return nil
}

// goInventory serves the Go inventory on a memory store: the reference.
func goInventory(t *testing.T) *caller.Client {
	t.Helper()
	srv, err := socket.NewServer(socket.Config{Name: "inventory"}, socket.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	if err := inventory.Register(srv, inventory.NewMemoryStore()); err != nil {
		t.Fatal(err)
	}
	return sockettest.Start(t, srv)
}

// stores are the Node inventory's stores to test: memory, and a fresh
// PostgreSQL schema (dropped at cleanup) when STREAMGATE_TEST_POSTGRES is set.
func stores(t *testing.T) map[string]func(t *testing.T) string {
	out := map[string]func(t *testing.T) string{"memory": func(*testing.T) string { return "memory" }}
	dsn := os.Getenv("STREAMGATE_TEST_POSTGRES")
	if dsn == "" {
		return out
	}
	out["postgres"] = func(t *testing.T) string { return freshSchema(t, dsn) }
	return out
}

// freshSchema creates a schema of its own in dsn's database, drops it at
// cleanup, and returns dsn selecting it.
func freshSchema(t *testing.T, dsn string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	schema := fmt.Sprintf("node_inv_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(ctx)
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema
}

// step is one request of the contract.
type step struct {
	who    string // "admin", "user", "anon"
	action string
	id     string
	body   string
	key    string // idempotency key
}

// answer is what the contract compares: the outcome as the wire has it.
type answer struct {
	Code     status.Code
	Message  string
	Details  map[string]any
	Result   any
	Replayed bool
}

var madeID = regexp.MustCompile(`itm_[0-9a-f]{12}`)

// ask sends s and returns its answer, normalised: made ids and
// created_at replaced, the JSON offset of a decoding error dropped (Go's
// decoder reports where it stopped; the Node one does not).
func ask(t *testing.T, c *caller.Client, s step) answer {
	t.Helper()
	var ctx context.Context
	switch s.who {
	case "admin":
		ctx = sockettest.As(t, "v1", "root", "admin")
	case "user":
		ctx = sockettest.As(t, "v1", "alice")
	default:
		ctx = sockettest.As(t, "v1", "anonymous")
	}
	if s.key != "" {
		ctx = oncetest.WithKey(ctx, s.key)
	}
	var body any
	if s.body != "" {
		body = json.RawMessage(s.body)
	}
	r, err := c.Do(ctx, s.action, s.id, body)
	if err != nil {
		e := status.AsError(err)
		if e.Code == "" || e.Code == socket.CodeInternal || e.Code == socket.CodeUnavailable {
			t.Fatalf("%s %q: %v", s.action, s.id, err)
		}
		d := map[string]any{}
		for k, v := range e.Details {
			if k != "offset" {
				d[k] = v
			}
		}
		return answer{Code: e.Code, Message: e.Message, Details: d}
	}
	raw := madeID.ReplaceAllString(string(r.Result), "itm_*")
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatalf("%s answered %s: %v", s.action, r.Result, err)
	}
	dropCreatedAt(t, v)
	return answer{Result: v, Replayed: r.Replayed}
}

// dropCreatedAt checks every created_at is RFC 3339 and removes it.
func dropCreatedAt(t *testing.T, v any) {
	switch x := v.(type) {
	case map[string]any:
		if at, ok := x["created_at"]; ok {
			if s, _ := at.(string); s == "" {
				t.Fatalf("created_at %v", at)
			} else if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				t.Fatalf("created_at %q: %v", s, err)
			}
			x["created_at"] = "T"
		}
		for _, e := range x {
			dropCreatedAt(t, e)
		}
	case []any:
		for _, e := range x {
			dropCreatedAt(t, e)
		}
	}
}

// contract is the Go inventory's behaviour, request by request, in order
// against one store: items, lines, reservations with versions, prices,
// keyed writes, and the errors of each.
var contract = []step{
	{"admin", "CREATE_ITEM", "", `{"id":"a","name":"  A ","price_cents":100,"stock":5}`, ""},
	{"admin", "CREATE_ITEM", "", `{"id":"b","name":"B","price_cents":250,"stock":3}`, ""},
	{"admin", "CREATE_ITEM", "", `{"id":"c.1","name":"cup","price_cents":0}`, ""},
	{"admin", "CREATE_ITEM", "", `{"id":"mug","name":"Mug","price_cents":900,"stock":2}`, ""},
	{"admin", "CREATE_ITEM", "", `{"name":"Lamp","price_cents":1,"stock":1}`, "h1:CREATE_ITEM"},
	{"admin", "CREATE_ITEM", "", `{"name":"Lamp","price_cents":1,"stock":1}`, "h1:CREATE_ITEM"},
	{"admin", "CREATE_ITEM", "", `{"stock":1, "price_cents":1,"name":"Lamp"}`, "h1:CREATE_ITEM"},
	{"admin", "CREATE_ITEM", "", `{"name":"Desk","price_cents":1}`, "h1:CREATE_ITEM"},
	{"user", "CREATE_ITEM", "", `{"name":"x","price_cents":1}`, ""},
	{"anon", "CREATE_ITEM", "", `{"name":"x","price_cents":1}`, ""},
	{"admin", "CREATE_ITEM", "", `{"id":"a","name":"x","price_cents":1}`, ""},
	{"admin", "CREATE_ITEM", "", `{"name":"  ","price_cents":1}`, ""},
	{"admin", "CREATE_ITEM", "", `{"name":"` + strings.Repeat("é", 201) + `","price_cents":1}`, ""},
	{"admin", "CREATE_ITEM", "", `{"name":"x"}`, ""},
	{"admin", "CREATE_ITEM", "", `{"name":"x","price_cents":null}`, ""},
	{"admin", "CREATE_ITEM", "", `{"name":"x","price_cents":-1}`, ""},
	{"admin", "CREATE_ITEM", "", `{"name":"x","price_cents":1.5}`, ""},
	{"admin", "CREATE_ITEM", "", `{"name":"x","price_cents":"1"}`, ""},
	{"admin", "CREATE_ITEM", "", `{"name":5,"price_cents":1}`, ""},
	{"admin", "CREATE_ITEM", "", `{"name":"x","price_cents":1,"stock":-1}`, ""},
	{"admin", "CREATE_ITEM", "", `{"id":"a/b","name":"x","price_cents":1}`, ""},
	{"admin", "CREATE_ITEM", "", `{"name":"x","price_cents":1,"colour":"red"}`, ""},
	{"admin", "CREATE_ITEM", "", `[1]`, ""},
	{"admin", "CREATE_ITEM", "", `{"ID":"d","Name":"D","PRICE_CENTS":7}`, ""},
	{"anon", "GET_ITEM", "a", ``, ""},
	{"anon", "GET_ITEM", "", ``, ""},
	{"anon", "GET_ITEM", "nope", ``, ""},
	{"anon", "GET_ITEM", "a", `{"x":1}`, ""},
	{"admin", "UPDATE_ITEM", "b", `{"stock":7}`, ""},
	{"admin", "UPDATE_ITEM", "b", `{"name":" Bee ","price_cents":300,"stock":null}`, "h2:UPDATE_ITEM"},
	{"admin", "UPDATE_ITEM", "b", `{"stock":3}`, ""},
	{"admin", "UPDATE_ITEM", "b", `{"name":" Bee ","price_cents":300,"stock":null}`, "h2:UPDATE_ITEM"},
	{"admin", "UPDATE_ITEM", "b", `{"stock":-3}`, ""},
	{"admin", "UPDATE_ITEM", "b", `{"price_cents":-3}`, ""},
	{"admin", "UPDATE_ITEM", "b", `{"name":""}`, ""},
	{"admin", "UPDATE_ITEM", "nope", `{"stock":1}`, ""},
	{"admin", "UPDATE_ITEM", "", `{"stock":1}`, ""},
	{"user", "UPDATE_ITEM", "b", `{"stock":1}`, ""},
	{"user", "DELETE_ITEM", "b", ``, ""},
	{"anon", "LIST_ITEMS", "", ``, ""},
	{"anon", "LIST_ITEMS", "", `{"page_size":2}`, ""},
	{"anon", "LIST_ITEMS", "", `{"page_size":2,"page_token":"b"}`, ""},
	{"anon", "LIST_ITEMS", "", `{"name":"u"}`, ""},
	{"anon", "LIST_ITEMS", "", `{"name":"nothing"}`, ""},
	{"anon", "LIST_ITEMS", "", `{"page_size":1001}`, ""},
	{"anon", "LIST_ITEMS", "", `{"page_size":-1}`, ""},
	{"anon", "LIST_ITEMS", "", `{"page_size":"x"}`, ""},
	{"user", "CHECK_AVAILABLE", "", `{"lines":[{"item_id":"a","quantity":2},{"item_id":"b","quantity":1}]}`, ""},
	{"user", "CHECK_AVAILABLE", "", `{"lines":[{"item_id":"a","quantity":2},{"item_id":"x","quantity":1},{"item_id":"a","quantity":4}]}`, ""},
	{"user", "CHECK_AVAILABLE", "", `{"order":{"id":"o","lines":[{"item_id":"a","quantity":1,"unit_price_cents":100},{"item_id":"a","quantity":1}]}}`, ""},
	{"user", "REQUIRE_AVAILABLE", "", `{"lines":[{"item_id":"a","quantity":2},{"item_id":"x","quantity":1},{"item_id":"a","quantity":4}]}`, ""},
	{"user", "REQUIRE_AVAILABLE", "", `{"lines":[{"item_id":"a","quantity":5}]}`, ""},
	{"user", "CHECK_AVAILABLE", "", ``, ""},
	{"user", "CHECK_AVAILABLE", "", `{"lines":[]}`, ""},
	{"user", "CHECK_AVAILABLE", "", `{"lines":null}`, ""},
	{"user", "CHECK_AVAILABLE", "", `{"order":{"id":"o"}}`, ""},
	{"user", "CHECK_AVAILABLE", "", `{"lines":[{"item_id":"a","quantity":0}]}`, ""},
	{"user", "CHECK_AVAILABLE", "", `{"lines":[{"quantity":1}]}`, ""},
	{"user", "CHECK_AVAILABLE", "", `{"lines":[null]}`, ""},
	{"user", "CHECK_AVAILABLE", "", `{"lines":[{"item_id":"a","quantity":1}],"order":{"lines":[]}}`, ""},
	{"user", "CHECK_AVAILABLE", "", `{"lines":[{"item_id":"a","quantity":1}],"extra":1}`, ""},
	{"user", "CHECK_AVAILABLE", "", `{"lines":[{"item_id":"a","quantity":1,"x":1}]}`, ""},
	{"user", "CHECK_AVAILABLE", "", `{"order":{"lines":[{"item_id":"a","quantity":"2"}]}}`, ""},
	{"user", "CHECK_AVAILABLE", "", `{"order":5}`, ""},
	{"user", "CHECK_AVAILABLE", "", `{"lines":"a"}`, ""},
	{"user", "RESERVE_STOCK", "r1", `{"lines":[{"item_id":"a","quantity":1},{"item_id":"b","quantity":1},{"item_id":"a","quantity":1}]}`, ""},
	{"user", "RESERVE_STOCK", "r1", `{"lines":[{"item_id":"b","quantity":1},{"item_id":"a","quantity":2}]}`, ""},
	{"user", "RESERVE_STOCK", "r1", `{"lines":[{"item_id":"a","quantity":1}]}`, ""},
	{"user", "RESERVE_STOCK", "", `{"order":{"lines":[{"item_id":"a","quantity":1}]}}`, "pur-7"},
	{"user", "RESERVE_STOCK", "", `{"lines":[{"item_id":"a","quantity":1}]}`, ""},
	{"user", "RESERVE_STOCK", "r2", `{"lines":[{"item_id":"a","quantity":9},{"item_id":"b","quantity":9}]}`, ""},
	{"user", "RESERVE_STOCK", strings.Repeat("x", 256), `{"lines":[{"item_id":"a","quantity":1}]}`, ""},
	{"user", "RESERVE_STOCK", "p\n1", `{"lines":[{"item_id":"a","quantity":1}]}`, ""},
	{"anon", "GET_ITEM", "a", ``, ""},
	{"admin", "LIST_RESERVATIONS", "", ``, ""},
	{"admin", "LIST_RESERVATIONS", "", `{"status":"held","page_size":1}`, ""},
	{"admin", "LIST_RESERVATIONS", "", `{"status":"unknown"}`, ""},
	{"admin", "LIST_RESERVATIONS", "", `{"page_size":1001}`, ""},
	{"user", "LIST_RESERVATIONS", "", ``, ""},
	{"user", "RELEASE_STOCK", "r1", `{"version":1}`, ""},
	{"user", "RELEASE_STOCK", "r1", `{"version":-1}`, ""},
	{"user", "RELEASE_STOCK", "r1", `{"lines":[{"item_id":"a","quantity":1}]}`, ""},
	{"user", "RELEASE_STOCK", "r1", `{"lines":[{"item_id":"a","quantity":2},{"item_id":"b","quantity":1}],"version":2}`, ""},
	{"user", "RELEASE_STOCK", "r1", ``, ""},
	{"user", "RESERVE_STOCK", "r1", `{"lines":[{"item_id":"a","quantity":2},{"item_id":"b","quantity":1}]}`, ""},
	{"user", "RELEASE_STOCK", "never", ``, ""},
	{"user", "RELEASE_STOCK", "never", `{"lines":[{"item_id":"a","quantity":1}]}`, ""},
	{"user", "RELEASE_STOCK", "", ``, ""},
	{"user", "RELEASE_STOCK", "pur-7", `{"lines":[]}`, ""},
	{"admin", "DELETE_ITEM", "c.1", ``, ""},
	{"user", "RELEASE_STOCK", "pur-7", ``, ""},
	{"admin", "LIST_RESERVATIONS", "", `{"status":"released"}`, ""},
	{"anon", "GET_ITEM", "a", ``, ""},
	{"anon", "GET_ITEM", "b", ``, ""},
	{"user", "GET_PRICES", "", `{"item_ids":["b","a","b"]}`, ""},
	{"user", "GET_PRICES", "", `{"item_ids":["a","x","y","x"]}`, ""},
	{"user", "GET_PRICES", "", `{}`, ""},
	{"user", "GET_PRICES", "", `{"item_ids":["a",""]}`, ""},
	{"admin", "DELETE_ITEM", "b", ``, "h3:DELETE_ITEM"},
	{"admin", "DELETE_ITEM", "b", ``, "h3:DELETE_ITEM"},
	{"admin", "DELETE_ITEM", "b", ``, ""},
	{"admin", "DELETE_ITEM", "", ``, ""},
	{"anon", "LIST_ITEMS", "", ``, ""},
}

// TestNodeInventoryAnswersAsGo runs the contract against the Go inventory
// and the Node one, on each store, and compares every answer: code,
// message, details, result and replayed.
func TestNodeInventoryAnswersAsGo(t *testing.T) {
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			goc, nodec := goInventory(t), startInventory(t, store(t))
			for i, s := range contract {
				want, got := ask(t, goc, s), ask(t, nodec, s)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("step %d, %s %q %s (key %q):\n node %+v\n go   %+v", i, s.action, s.id, s.body, s.key, got, want)
				}
			}
		})
	}
}

// TestNodeInventoryDescribesAsGo: the same actions with the same kinds,
// idempotency, publicness, cache TTLs, versions and docs.
func TestNodeInventoryDescribesAsGo(t *testing.T) {
	goc, nodec := goInventory(t), startInventory(t, "memory")
	ctx := sockettest.As(t, "v1", "anonymous")
	want, err := goc.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := nodec.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Describe:\n node %+v\n go   %+v", got, want)
	}
}

// TestNodeInventoryReservesOnceUnderLoad: 20 concurrent RESERVE_STOCK of
// one on a stock of 10 (distinct ids), and 20 more of one id, never
// oversell: exactly 10 succeed, stock ends at 0, the id takes stock once.
func TestNodeInventoryReservesOnceUnderLoad(t *testing.T) {
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := startInventory(t, store(t))
			admin := sockettest.As(t, "v1", "root", "admin")
			for _, body := range []string{`{"id":"hot","name":"Hot","price_cents":1,"stock":10}`, `{"id":"cold","name":"Cold","price_cents":1,"stock":40}`} {
				if _, err := c.Request(admin, "CREATE_ITEM", "", json.RawMessage(body)); err != nil {
					t.Fatal(err)
				}
			}
			var ok, short atomic.Int64
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Go(func() {
					body := json.RawMessage(`{"lines":[{"item_id":"cold","quantity":1},{"item_id":"hot","quantity":1}]}`)
					_, err := c.Request(admin, "RESERVE_STOCK", fmt.Sprint("pur_", i), body)
					switch status.CodeOf(err) {
					case "":
						ok.Add(1)
					case socket.CodeFailedPrecondition:
						short.Add(1)
					default:
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if ok.Load() != 10 || short.Load() != 10 {
				t.Fatalf("%d reserved, %d out of stock; want 10 and 10", ok.Load(), short.Load())
			}
			stock := func(id string) int64 {
				it, err := caller.Call[inventory.Item](admin, c, "GET_ITEM", id, nil)
				if err != nil {
					t.Fatal(err)
				}
				return it.Stock
			}
			if h, cl := stock("hot"), stock("cold"); h != 0 || cl != 30 {
				t.Fatalf("stock hot %d, cold %d; want 0 and 30", h, cl)
			}

			// One id, 20 at once, after a restock: stock is taken once and
			// every answer but one is a replay; versions count the replays.
			if _, err := c.Request(admin, "UPDATE_ITEM", "hot", json.RawMessage(`{"stock":5}`)); err != nil {
				t.Fatal(err)
			}
			var fresh atomic.Int64
			for range 20 {
				wg.Go(func() {
					r, err := c.Do(admin, "RESERVE_STOCK", "one", json.RawMessage(`{"lines":[{"item_id":"hot","quantity":2}]}`))
					if err != nil {
						t.Error(err)
						return
					}
					if !r.Replayed {
						fresh.Add(1)
					}
				})
			}
			wg.Wait()
			if fresh.Load() != 1 || stock("hot") != 3 {
				t.Fatalf("%d fresh reservations, stock %d; want 1 and 3", fresh.Load(), stock("hot"))
			}
			// The version is 20: a release at an older one is refused.
			_, err := c.Request(admin, "RELEASE_STOCK", "one", json.RawMessage(`{"version":19}`))
			if e := status.AsError(err); e == nil || e.Code != socket.CodeConflict || e.Details["reason"] != "reservation_changed" || e.Details["version"] != 20.0 {
				t.Fatalf("release at version 19: %v %v, want CONFLICT reservation_changed at version 20", err, e)
			}
			if _, err := c.Request(admin, "RELEASE_STOCK", "one", json.RawMessage(`{"version":20}`)); err != nil || stock("hot") != 5 {
				t.Fatalf("release at version 20: %v, stock %d; want 5", err, stock("hot"))
			}
		})
	}
}

// TestNodeInventoryPublishesChanges: every change of an item is an event
// on items/{id}, public, with the item as GET_ITEM answers it; replays
// publish nothing.
func TestNodeInventoryPublishesChanges(t *testing.T) {
	c := startInventory(t, "memory")
	next := sockettest.Events(t, c, "items/*")
	admin := sockettest.As(t, "v1", "root", "admin")
	var seq uint64
	want := func(step string, deleted bool) {
		t.Helper()
		seq++
		e := next()
		if e.Topic != "items/book" || e.Seq != seq || e.Gap || !e.Visibility.Public {
			t.Fatalf("%s: event %+v, want items/book seq %d, public", step, e, seq)
		}
		wantData := `{"id":"book","deleted":true}`
		if !deleted {
			got, err := c.Request(admin, "GET_ITEM", "book", nil)
			if err != nil {
				t.Fatal(err)
			}
			wantData = string(got)
		}
		if string(e.Data) != wantData {
			t.Fatalf("%s: data %s, want %s", step, e.Data, wantData)
		}
	}
	do := func(action, id, body string) {
		t.Helper()
		var b any
		if body != "" {
			b = json.RawMessage(body)
		}
		if _, err := c.Request(admin, action, id, b); err != nil {
			t.Fatalf("%s %s: %v", action, id, err)
		}
	}
	do("CREATE_ITEM", "", `{"id":"book","name":"Book","price_cents":1500,"stock":10}`)
	want("create", false)
	do("UPDATE_ITEM", "book", `{"price_cents":1600}`)
	want("price", false)
	do("RESERVE_STOCK", "r1", `{"lines":[{"item_id":"book","quantity":2}]}`)
	want("reserve", false)
	do("RESERVE_STOCK", "r1", `{"lines":[{"item_id":"book","quantity":2}]}`) // a replay changes nothing
	do("RELEASE_STOCK", "r1", ``)
	want("release", false)
	do("RELEASE_STOCK", "r1", ``)
	do("DELETE_ITEM", "book", ``)
	want("delete", true)
}

// TestNodeInventoryKeyedWritesApplyOnce: an item write sent 7 times with
// one key (6 at once) applies once; the others are replays.
func TestNodeInventoryKeyedWritesApplyOnce(t *testing.T) {
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := startInventory(t, store(t))
			admin := sockettest.As(t, "v1", "root", "admin")
			res := oncetest.Once(t, c, oncetest.WithKey(admin, "k1:CREATE_ITEM"), "CREATE_ITEM", "", json.RawMessage(`{"name":"Lamp","price_cents":900,"stock":3}`))
			var it inventory.Item
			if err := json.Unmarshal(res, &it); err != nil {
				t.Fatal(err)
			}
			page, err := caller.Call[inventory.Page](admin, c, "LIST_ITEMS", "", nil)
			if err != nil || len(page.Items) != 1 || page.Items[0].ID != it.ID {
				t.Fatalf("items after 7 creates with one key: %+v, %v; want only %s", page.Items, err, it.ID)
			}
			oncetest.Once(t, c, oncetest.WithKey(admin, "k2:UPDATE_ITEM"), "UPDATE_ITEM", it.ID, json.RawMessage(`{"stock":10}`))
			oncetest.Once(t, c, oncetest.WithKey(admin, "k3:DELETE_ITEM"), "DELETE_ITEM", it.ID, nil)
		})
	}
}
