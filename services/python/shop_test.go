package python_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/internal/sqldb"
	"github.com/streamgate/streamgate/services/internal/sqldb/sqltest"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/services/users"
	"github.com/streamgate/streamgate/status"
)

// usersScript is the Python users service, a drop-in for services/users.
const usersScript = "shop/users.py"

// startPythonUsers starts the Python users service with the stack's
// arguments (--addr, --key, --store) and returns the address it prints;
// the process gets SIGTERM when the test ends and must exit 0.
func startPythonUsers(t *testing.T, store string) string {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Skipf("the Python users service needs %s (Debian's python3): %v", python, err)
	}
	if out, err := exec.Command(python, "-c", "import grpc, google.protobuf").CombinedOutput(); err != nil {
		t.Skipf("the Python users service needs python3-grpcio and python3-protobuf: %v: %s", err, out)
	}
	cmd := exec.Command(python, usersScript, "--addr", "127.0.0.1:0", "--key", key, "--store", store)
	cmd.Stderr = os.Stderr // its log lines, for a failing test
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				addr <- a
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("the Python users service after SIGTERM: %v, want exit 0", err)
			}
		case <-time.After(wait):
			_ = cmd.Process.Kill()
			t.Errorf("the Python users service did not exit within %v of SIGTERM", wait)
		}
	})
	select {
	case a := <-addr:
		return a
	case err := <-exited:
		t.Fatalf("the Python users service exited before serving: %v", err)
	case <-time.After(wait):
		t.Fatalf("the Python users service did not say where it listens within %v", wait)
	}
	return ""
}

// startGoUsers serves the Go users service on st with the key as the stack
// gives it (delegating, role admin) and returns its address.
func startGoUsers(t *testing.T, st users.Store) string {
	t.Helper()
	keys, err := keyring.New(keyring.Key{Name: "gateway", Secret: key, Delegate: true, Roles: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := socket.NewServer(socket.Config{Name: "users"}, socket.WithKeys(keys))
	if err != nil {
		t.Fatal(err)
	}
	if err := users.Register(srv, st); err != nil {
		t.Fatal(err)
	}
	return sockettest.Serve(t, srv)
}

func dialUsers(t *testing.T, addr string) *caller.Client {
	t.Helper()
	c, err := caller.Dial(addr, caller.WithKey(key), caller.WithoutCoalescing(), caller.WithServiceName("users"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// call is one request: as whom (subject and roles), with which
// idempotency key.
type call struct {
	as           []string
	key          string
	action, id   string
	body         any
	sameCodeOnly bool // Go's JSON syntax messages are not reproduced word for word
}

// answer is what a caller sees of a reply, with what differs by nature
// (generated ids, creation times) made comparable.
type answer struct {
	Code     status.Code
	Message  string
	Details  any
	Result   any
	Replayed bool
}

var (
	generatedID = regexp.MustCompile(`usr_[0-9a-f]{12}`)
	rfc3339Nano = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$`)
)

// normalize replaces generated ids with usr_X and creation times (checked
// to be RFC 3339 in UTC, as Go writes them) with "T".
func normalize(t *testing.T, v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			if s, ok := x.(string); ok && k == "created_at" {
				if !rfc3339Nano.MatchString(s) {
					t.Errorf("created_at %q is not RFC 3339 in UTC", s)
				}
				out[k] = "T"
				continue
			}
			out[k] = normalize(t, x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = normalize(t, x)
		}
		return out
	case string:
		return generatedID.ReplaceAllString(v, "usr_X")
	}
	return v
}

func (c call) do(t *testing.T, cl *caller.Client) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	m := socket.Meta{APIVersion: "v1", IdempotencyKey: c.key}
	if len(c.as) > 0 {
		m.Principal = socket.Principal{Subject: c.as[0], Roles: c.as[1:]}
	}
	r, err := cl.Do(caller.ContextWithMeta(ctx, m), c.action, c.id, c.body)
	a := answer{Replayed: r.Replayed}
	if err != nil {
		e := status.AsError(err)
		a.Code, a.Message = e.Code, generatedID.ReplaceAllString(e.Message, "usr_X")
		if len(e.Details) > 0 {
			a.Details = normalize(t, e.Details)
		}
		return a
	}
	var v any
	if err := json.Unmarshal(r.Result, &v); err != nil {
		t.Fatalf("%s %s: result %s: %v", c.action, c.id, r.Result, err)
	}
	a.Result = normalize(t, v)
	return a
}

var (
	admin = []string{"root", "admin"}
	alice = []string{"alice"}
	bob   = []string{"bob"}
	dave  = []string{"dave"}
	anon  = []string{"anonymous"}
)

// usersContract is the Go users service's tests (services/users) as a
// sequence of calls, with the bodies' edge cases added: the Python service
// must answer each exactly as the Go one does.
func usersContract() []call {
	long := strings.Repeat("é", 201)
	x := func(as []string, body any) call { return call{as: as, action: "CREATE_USER", body: body} }
	cs := []call{
		x(alice, map[string]any{"name": "  Alice  ", "email": " Alice@Example.COM "}),
		{as: alice, action: "GET_USER", id: "alice"},
		x(bob, users.CreateInput{ID: "bob", Name: "Bob", Email: "bob@example.com", Status: "active"}),
		x(admin, users.CreateInput{Name: "Generated", Email: "gen@example.com"}),
		x(admin, users.CreateInput{ID: "carol", Name: "Carol", Email: "carol@example.com", Status: "suspended"}),
		// Create rules.
		x(anon, users.CreateInput{Name: "X", Email: "x@example.com"}),
		x(bob, users.CreateInput{ID: "dave", Name: "X", Email: "x@example.com"}),
		x(dave, users.CreateInput{Name: "X", Email: "x@example.com", Status: "suspended"}),
		x(bob, users.CreateInput{Name: "X", Email: "x@example.com"}),
		x(admin, users.CreateInput{ID: "alice", Name: "X", Email: "x@example.com"}),
		x(admin, users.CreateInput{Name: "X", Email: "ALICE@example.com"}),
		x(dave, users.CreateInput{Email: "x@example.com"}),
		x(dave, users.CreateInput{Name: "   ", Email: "x@example.com"}),
		x(dave, users.CreateInput{Name: long, Email: "x@example.com"}),
		x(dave, users.CreateInput{Name: "X"}),
		x(dave, users.CreateInput{Name: "X", Email: "example.com"}),
		x(dave, users.CreateInput{Name: "X", Email: "@example.com"}),
		x(dave, users.CreateInput{Name: "X", Email: "x@"}),
		x(admin, users.CreateInput{Name: "X", Email: "x@example.com", Status: "banned"}),
		x(admin, users.CreateInput{ID: "a b", Name: "X", Email: "x@example.com"}),
		x(admin, users.CreateInput{ID: "tab\there", Name: "X", Email: "x@example.com"}),
		x(admin, users.CreateInput{ID: strings.Repeat("i", 257), Name: "X", Email: "x@example.com"}),
		x(admin, users.CreateInput{ID: "nbsp\u00a0", Name: "X", Email: "x@example.com"}),
		x(admin, users.CreateInput{Name: "X", Email: "x y@example.com"}),
		x(admin, users.CreateInput{Name: "X", Email: strings.Repeat("e", 250) + "@x.io"}),
		x(dave, map[string]any{"name": "X", "email": "x@example.com", "role": "admin"}),
		// Bodies as encoding/json decodes them.
		x(dave, map[string]any{"name": 5, "email": "x@example.com"}),
		x(dave, map[string]any{"role": 1, "name": 5}),
		x(dave, []int{1}),
		x(dave, "a string"),
		x(dave, 7),
		x(dave, true),
		x(dave, []byte(`{"name":"X","email":"x@example.com"} {}`)),
		{as: dave, action: "CREATE_USER", body: []byte(`{"name":`), sameCodeOnly: true},
		{as: dave, action: "CREATE_USER", body: []byte(`{name}`), sameCodeOnly: true},
		x(dave, map[string]any{"name": map[string]any{}, "email": []any{}}),
		x(dave, map[string]any{"NAME": "Dave <&>", "Email": " X@example.com", "status": nil}),
		// Get rules.
		{as: alice, action: "GET_USER", id: "alice"},
		{as: admin, action: "GET_USER", id: "bob"},
		{as: alice, action: "GET_USER", id: "bob"},
		{as: alice, action: "GET_USER", id: "ghost"},
		{as: admin, action: "GET_USER", id: "ghost"},
		{as: admin, action: "GET_USER", id: "gh\"ost\n\u00a0ü\u2028"},
		{as: anon, action: "GET_USER", id: "anonymous"},
		{as: admin, action: "GET_USER", id: ""},
		{as: admin, action: "GET_USER", id: "bob", body: map[string]any{"x": 1}},
		{as: admin, action: "GET_USER", id: "bob", body: []int{}},
		// List.
		{as: alice, action: "LIST_USERS"},
		{as: alice, action: "LIST_USERS", body: map[string]any{"bad": 1}},
		{as: admin, action: "LIST_USERS", body: users.ListInput{PageSize: 1001}},
		{as: admin, action: "LIST_USERS", body: map[string]any{"page_size": -1}},
		{as: admin, action: "LIST_USERS", body: map[string]any{"page_size": 1.5}},
		{as: admin, action: "LIST_USERS", body: map[string]any{"page_size": "2"}},
		{as: admin, action: "LIST_USERS", body: []byte(`{"page_size": 1e2}`)},
		{as: admin, action: "LIST_USERS", body: []byte(`{"page_size": 99999999999999999999}`)},
		{as: admin, action: "LIST_USERS", body: users.ListInput{Status: "gone"}},
		{as: admin, action: "LIST_USERS", body: users.ListInput{PageSize: 2}},
		{as: admin, action: "LIST_USERS", body: users.ListInput{PageSize: 2, PageToken: "bob"}},
		{as: admin, action: "LIST_USERS", body: users.ListInput{PageSize: 2, PageToken: "dave"}},
		{as: admin, action: "LIST_USERS"},
		{as: admin, action: "LIST_USERS", body: users.ListInput{Status: "suspended"}},
		{as: admin, action: "LIST_USERS", body: users.ListInput{Email: " BOB@example.com"}},
		{as: admin, action: "LIST_USERS", body: users.ListInput{Email: "bob@example.com", Status: "suspended"}},
		{as: admin, action: "LIST_USERS", body: users.ListInput{Email: "nobody@example.com"}},
		// Update rules.
		{as: alice, action: "UPDATE_USER", id: "bob", body: users.Patch{Name: ptr("X")}},
		{as: alice, action: "UPDATE_USER", id: "alice", body: users.Patch{Status: ptr("active")}},
		{as: alice, action: "UPDATE_USER", id: "alice", body: users.Patch{Email: ptr("Bob@Example.com")}},
		{as: alice, action: "UPDATE_USER", id: "alice", body: users.Patch{Name: ptr(" ")}},
		{as: alice, action: "UPDATE_USER", id: "alice", body: users.Patch{Email: ptr("alice")}},
		{as: admin, action: "UPDATE_USER", id: "alice", body: users.Patch{Status: ptr("gone")}},
		{as: admin, action: "UPDATE_USER", id: "ghost", body: users.Patch{Name: ptr("X")}},
		{as: alice, action: "UPDATE_USER", id: "alice", body: map[string]any{"id": "x"}},
		{as: alice, action: "UPDATE_USER", id: "alice", body: map[string]any{"status": nil, "name": nil}},
		{as: alice, action: "UPDATE_USER", id: "alice", body: users.Patch{Email: ptr("ALICE2@example.com")}},
		{as: alice, action: "UPDATE_USER", id: "alice", body: users.Patch{Name: ptr("Alice B.")}},
		{as: admin, action: "UPDATE_USER", id: "bob", body: users.Patch{Status: ptr("suspended")}},
		{as: admin, action: "UPDATE_USER", id: "", body: users.Patch{Name: ptr("X")}},
		// Purchasable.
		{as: alice, action: "CHECK_PURCHASABLE", id: "alice"},
		{as: admin, action: "CHECK_PURCHASABLE", id: "bob"},
		{as: admin, action: "CHECK_PURCHASABLE", id: "carol"},
		{as: anon, action: "CHECK_PURCHASABLE", id: "alice"},
		{as: alice, action: "CHECK_PURCHASABLE", id: "bob"},
		{as: alice, action: "CHECK_PURCHASABLE", id: "ghost"},
		{as: alice, action: "REQUIRE_PURCHASABLE", id: "alice"},
		{as: admin, action: "REQUIRE_PURCHASABLE", id: "bob"},
		{as: admin, action: "REQUIRE_PURCHASABLE", id: "carol"},
		{as: []string{"carol"}, action: "REQUIRE_PURCHASABLE", id: "carol"},
		{as: alice, action: "REQUIRE_PURCHASABLE", id: "ghost"},
		{as: anon, action: "REQUIRE_PURCHASABLE", id: "alice"},
		{as: alice, action: "REQUIRE_PURCHASABLE", id: "carol"},
		{as: alice, action: "REQUIRE_PURCHASABLE", id: ""},
		// Keyed writes: once per key, replayed; the key with another request is refused.
		{as: admin, key: "h1:CREATE_USER", action: "CREATE_USER", body: users.CreateInput{ID: "kim", Name: "Kim", Email: "kim@example.com"}},
		{as: admin, key: "h1:CREATE_USER", action: "CREATE_USER", body: users.CreateInput{ID: "kim", Name: "Kim", Email: "kim@example.com"}},
		{as: admin, key: "h1:CREATE_USER", action: "CREATE_USER", body: []byte(` {"email":"kim@example.com", "id":"kim","name":"Kim"}`)},
		{as: admin, key: "h1:CREATE_USER", action: "CREATE_USER", body: users.CreateInput{ID: "kim2", Name: "Other", Email: "other@example.com"}},
		{as: admin, key: "h2:UPDATE_USER", action: "UPDATE_USER", id: "kim", body: users.Patch{Name: ptr("Kim B")}},
		{as: admin, action: "UPDATE_USER", id: "kim", body: users.Patch{Name: ptr("Kim C")}},
		{as: admin, key: "h2:UPDATE_USER", action: "UPDATE_USER", id: "kim", body: users.Patch{Name: ptr("Kim B")}},
		{as: admin, action: "GET_USER", id: "kim"},
		{as: admin, key: "h3:DELETE_USER", action: "DELETE_USER", id: "kim"},
		{as: admin, key: "h3:DELETE_USER", action: "DELETE_USER", id: "kim"},
		{as: admin, key: "h4:CREATE_USER", action: "CREATE_USER", body: users.CreateInput{ID: "alice", Name: "X", Email: "x9@example.com"}},
		{as: admin, key: "h4:CREATE_USER", action: "CREATE_USER", body: users.CreateInput{ID: "alice", Name: "X", Email: "x9@example.com"}},
		{as: []string{"ann"}, key: "shared", action: "CREATE_USER", body: users.CreateInput{Name: "Ann", Email: "ann@example.com"}},
		{as: bob, key: "shared", action: "CREATE_USER", body: users.CreateInput{Name: "Bob", Email: "bob2@example.com"}},
		// Delete.
		{as: bob, action: "DELETE_USER", id: "bob"},
		{as: alice, action: "DELETE_USER", id: "bob"},
		{as: admin, action: "DELETE_USER", id: "bob"},
		{as: admin, action: "DELETE_USER", id: "bob"},
		{as: bob, action: "GET_USER", id: "bob"},
		x(bob, users.CreateInput{Name: "Bob", Email: "bob@example.com"}),
		{as: admin, action: "LIST_USERS"},
	}
	// Another user's account answers exactly like a missing one.
	for _, who := range [][]string{alice, anon} {
		for _, id := range []string{"ghost", "bob", "carol"} {
			for _, a := range []call{
				{action: "GET_USER"}, {action: "UPDATE_USER", body: users.Patch{Name: ptr("X")}}, {action: "DELETE_USER"},
				{action: "CHECK_PURCHASABLE"}, {action: "REQUIRE_PURCHASABLE"},
			} {
				a.as, a.id = who, id
				cs = append(cs, a)
			}
		}
	}
	return cs
}

func ptr(s string) *string { return &s }

// TestPythonUsersAnswersAsGo runs the users contract against the Go users
// service and the Python one, each on a store of its own, and requires the
// same answers: codes, messages, details, results and replayed flags.
func TestPythonUsersAnswersAsGo(t *testing.T) {
	for _, store := range []string{"memory", "postgres"} {
		t.Run(store, func(t *testing.T) {
			var goSt users.Store
			pyStore := "memory"
			if store == "memory" {
				goSt = users.NewMemoryStore()
			} else {
				pyStore = sqltest.PostgresDSN(t) // skips without STREAMGATE_TEST_POSTGRES
				st, err := users.NewSQLStore(context.Background(), sqltest.Postgres(t))
				if err != nil {
					t.Fatal(err)
				}
				goSt = st
			}
			py := dialUsers(t, startPythonUsers(t, pyStore))
			gocl := dialUsers(t, startGoUsers(t, goSt))
			for i, c := range usersContract() {
				want, got := c.do(t, gocl), c.do(t, py)
				if c.sameCodeOnly {
					want.Message, got.Message, want.Details, got.Details = "", "", nil, nil
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("call %d: %s %q as %v (key %q) body %s:\n python %+v\n     go %+v", i, c.action, c.id, c.as, c.key, show(c.body), got, want)
				}
			}
			// Describe: the same actions, kinds and docs.
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			want, err := gocl.Describe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got, err := py.Describe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Describe:\n python %+v\n     go %+v", got, want)
			}
		})
	}
}

func show(body any) string {
	if b, ok := body.([]byte); ok {
		return string(b)
	}
	b, _ := json.Marshal(body)
	return string(b)
}

// TestPythonAndGoShareOneDatabase runs a Go and a Python users service on
// one PostgreSQL schema: each reads what the other wrote, emails are
// unique across both, and a keyed write applied by one is replayed by the
// other (the same users_applied_keys rows and fingerprints).
func TestPythonAndGoShareOneDatabase(t *testing.T) {
	dsn := sqltest.PostgresDSN(t)
	py := dialUsers(t, startPythonUsers(t, dsn)) // creates the tables
	db, err := sqldb.Open(context.Background(), sqldb.Postgres, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	st, err := users.NewSQLStore(context.Background(), db) // the Go migration on the Python's tables
	if err != nil {
		t.Fatal(err)
	}
	gocl := dialUsers(t, startGoUsers(t, st))

	create := call{as: admin, key: "k1:CREATE_USER", action: "CREATE_USER", body: users.CreateInput{ID: "ann", Name: "Ann", Email: "ann@example.com"}}
	first := create.do(t, py)
	if first.Code != "" || first.Replayed {
		t.Fatalf("create on Python: %+v", first)
	}
	for _, cl := range []*caller.Client{gocl, py} {
		if again := create.do(t, cl); !again.Replayed || !reflect.DeepEqual(again.Result, first.Result) {
			t.Fatalf("the keyed create again: %+v, want %+v replayed", again, first.Result)
		}
	}
	reused := create
	reused.body = users.CreateInput{ID: "ann2", Name: "Ann", Email: "ann2@example.com"}
	if a := reused.do(t, gocl); a.Code != socket.CodeConflict {
		t.Fatalf("Python's key with another request on Go: %+v, want CONFLICT", a)
	}
	if a := (call{as: admin, action: "CREATE_USER", body: users.CreateInput{ID: "bob", Name: "Bob", Email: "bob@example.com"}}).do(t, gocl); a.Code != "" {
		t.Fatalf("create on Go: %+v", a)
	}
	if a := (call{as: admin, action: "CREATE_USER", body: users.CreateInput{ID: "bo", Name: "Bo", Email: "BOB@example.com"}}).do(t, py); a.Code != socket.CodeAlreadyExists {
		t.Fatalf("Go's email on Python: %+v, want ALREADY_EXISTS", a)
	}
	// Both read the same rows, created_at to the nanosecond.
	for _, c := range []call{
		{as: admin, action: "GET_USER", id: "ann"}, {as: admin, action: "GET_USER", id: "bob"},
		{as: admin, action: "LIST_USERS"}, {as: []string{"bob"}, action: "CHECK_PURCHASABLE", id: "bob"},
	} {
		raw := func(cl *caller.Client) string {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			r, err := cl.Request(caller.ContextWithMeta(ctx, socket.Meta{Principal: socket.Principal{Subject: c.as[0], Roles: c.as[1:]}}), c.action, c.id, nil)
			if err != nil {
				t.Fatalf("%s %s: %v", c.action, c.id, err)
			}
			var v any
			_ = json.Unmarshal(r, &v)
			return fmt.Sprint(v)
		}
		if g, p := raw(gocl), raw(py); g != p {
			t.Errorf("%s %s: Go reads %s, Python %s", c.action, c.id, g, p)
		}
	}
	del := call{as: admin, key: "k2:DELETE_USER", action: "DELETE_USER", id: "bob"}
	if a := del.do(t, gocl); a.Code != "" {
		t.Fatalf("delete on Go: %+v", a)
	}
	if a := del.do(t, py); !a.Replayed {
		t.Fatalf("Go's keyed delete again on Python: %+v, want replayed", a)
	}
}
