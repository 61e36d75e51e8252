package users_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/services/users"
	"github.com/streamgate/streamgate/status"
)

// serve starts a users server on st over a real socket and returns a
// client; both stop at cleanup.
func serve(t *testing.T, st users.Store) *caller.Client {
	t.Helper()
	srv, err := socket.NewServer(socket.Config{Name: "users"}, socket.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	if err := users.Register(srv, st); err != nil {
		t.Fatal(err)
	}
	return sockettest.Start(t, srv)
}

func wantCode(t *testing.T, what string, err error, code status.Code) {
	t.Helper()
	if got := status.CodeOf(err); got != code {
		t.Fatalf("%s: %v, want %s", what, err, code)
	}
}

func TestService(t *testing.T) {
	t.Parallel()
	forEachStore(t, testService)
}

func testService(t *testing.T, st users.Store) {
	c := serve(t, st)
	admin, alice, bob, anon := sockettest.As(t, "v1", "root", "admin"), sockettest.As(t, "v1", "alice"), sockettest.As(t, "v1", "bob"), sockettest.As(t, "v1", "anonymous")
	call := func(ctx context.Context, action, id string, body any) (users.User, error) {
		return caller.Call[users.User](ctx, c, action, id, body)
	}
	must := func(ctx context.Context, action, id string, body any) users.User {
		t.Helper()
		u, err := call(ctx, action, id, body)
		if err != nil {
			t.Fatalf("%s %s: %v", action, id, err)
		}
		return u
	}

	// Signing up: the caller's own id, email in lower case, active.
	before := time.Now()
	a := must(alice, "CREATE_USER", "", map[string]any{"name": "  Alice  ", "email": " Alice@Example.COM "})
	if a.ID != "alice" || a.Name != "Alice" || a.Email != "alice@example.com" || a.Status != users.StatusActive || a.CreatedAt.Before(before.Add(-time.Second)) {
		t.Fatalf("alice = %+v", a)
	}
	if got := must(alice, "GET_USER", "alice", nil); !got.CreatedAt.Equal(a.CreatedAt) || got.Email != a.Email {
		t.Fatalf("alice read back = %+v, created %+v", got, a)
	}
	b := must(bob, "CREATE_USER", "", users.CreateInput{ID: "bob", Name: "Bob", Email: "bob@example.com", Status: users.StatusActive})
	if b.ID != "bob" {
		t.Fatalf("bob = %+v", b)
	}
	g := must(admin, "CREATE_USER", "", users.CreateInput{Name: "Generated", Email: "gen@example.com"})
	if !regexp.MustCompile(`^usr_[0-9a-f]{12}$`).MatchString(g.ID) {
		t.Fatalf("generated id %q", g.ID)
	}
	must(admin, "CREATE_USER", "", users.CreateInput{ID: "carol", Name: "Carol", Email: "carol@example.com", Status: users.StatusSuspended})

	t.Run("create rules", func(t *testing.T) {
		long := strings.Repeat("é", 201)
		for _, tc := range []struct {
			name string
			ctx  context.Context
			body any
			code status.Code
		}{
			{"anonymous", anon, users.CreateInput{Name: "X", Email: "x@example.com"}, socket.CodeUnauthenticated},
			{"no subject", sockettest.As(t, "v1", ""), users.CreateInput{Name: "X", Email: "x@example.com"}, socket.CodeUnauthenticated},
			{"someone else's id", bob, users.CreateInput{ID: "dave", Name: "X", Email: "x@example.com"}, socket.CodePermissionDenied},
			{"suspended by a user", sockettest.As(t, "v1", "dave"), users.CreateInput{Name: "X", Email: "x@example.com", Status: users.StatusSuspended}, socket.CodePermissionDenied},
			{"id taken", bob, users.CreateInput{Name: "X", Email: "x@example.com"}, socket.CodeAlreadyExists},
			{"id taken by admin", admin, users.CreateInput{ID: "alice", Name: "X", Email: "x@example.com"}, socket.CodeAlreadyExists},
			{"email taken in other case", admin, users.CreateInput{Name: "X", Email: "ALICE@example.com"}, socket.CodeAlreadyExists},
			{"no name", sockettest.As(t, "v1", "dave"), users.CreateInput{Email: "x@example.com"}, socket.CodeInvalidArgument},
			{"blank name", sockettest.As(t, "v1", "dave"), users.CreateInput{Name: "   ", Email: "x@example.com"}, socket.CodeInvalidArgument},
			{"long name", sockettest.As(t, "v1", "dave"), users.CreateInput{Name: long, Email: "x@example.com"}, socket.CodeInvalidArgument},
			{"no email", sockettest.As(t, "v1", "dave"), users.CreateInput{Name: "X"}, socket.CodeInvalidArgument},
			{"email without @", sockettest.As(t, "v1", "dave"), users.CreateInput{Name: "X", Email: "example.com"}, socket.CodeInvalidArgument},
			{"email without local part", sockettest.As(t, "v1", "dave"), users.CreateInput{Name: "X", Email: "@example.com"}, socket.CodeInvalidArgument},
			{"email without domain", sockettest.As(t, "v1", "dave"), users.CreateInput{Name: "X", Email: "x@"}, socket.CodeInvalidArgument},
			{"bad status", admin, users.CreateInput{Name: "X", Email: "x@example.com", Status: "banned"}, socket.CodeInvalidArgument},
			{"id with a space", admin, users.CreateInput{ID: "a b", Name: "X", Email: "x@example.com"}, socket.CodeInvalidArgument},
			{"unknown field", sockettest.As(t, "v1", "dave"), map[string]any{"name": "X", "email": "x@example.com", "role": "admin"}, socket.CodeInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := call(tc.ctx, "CREATE_USER", "", tc.body)
				wantCode(t, "create", err, tc.code)
			})
		}
		_, err := call(admin, "CREATE_USER", "", users.CreateInput{Name: "X", Email: "ALICE@example.com"})
		if se := status.AsError(err); !strings.Contains(se.Message, `"alice@example.com"`) || se.Details["field"] != "email" {
			t.Fatalf("email clash should name the email: %+v", se)
		}
		// 200 characters is fine; the failed attempts left nothing behind.
		d := must(sockettest.As(t, "v1", "dave"), "CREATE_USER", "", users.CreateInput{Name: long[2:], Email: "x@example.com"})
		if d.ID != "dave" {
			t.Fatalf("dave = %+v", d)
		}
	})

	t.Run("get rules", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			ctx  context.Context
			id   string
			code status.Code
		}{
			{"own", alice, "alice", ""},
			{"admin any", admin, "bob", ""},
			{"someone else looks missing", alice, "bob", socket.CodeNotFound},
			{"missing for a user", alice, "ghost", socket.CodeNotFound},
			{"missing for admin", admin, "ghost", socket.CodeNotFound},
			{"anonymous as anonymous", anon, "anonymous", socket.CodeNotFound},
			{"no id", admin, "", socket.CodeInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				u, err := call(tc.ctx, "GET_USER", tc.id, nil)
				wantCode(t, "get", err, tc.code)
				if err == nil && u.ID != tc.id {
					t.Fatalf("got %+v", u)
				}
			})
		}
	})

	t.Run("list", func(t *testing.T) {
		list := func(in users.ListInput) (users.Page, error) {
			return caller.Call[users.Page](admin, c, "LIST_USERS", "", in)
		}
		_, err := caller.Call[users.Page](alice, c, "LIST_USERS", "", nil)
		wantCode(t, "list as a user", err, socket.CodePermissionDenied)
		_, err = list(users.ListInput{PageSize: 1001})
		wantCode(t, "page_size 1001", err, socket.CodeInvalidArgument)
		_, err = list(users.ListInput{Status: "gone"})
		wantCode(t, "bad status filter", err, socket.CodeInvalidArgument)

		var all []string
		token := ""
		for pages := 0; ; pages++ {
			p, err := list(users.ListInput{PageSize: 2, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Items) > 2 || pages > 5 {
				t.Fatalf("page %d: %+v", pages, p)
			}
			all = append(all, ids(p.Items)...)
			if token = p.NextPageToken; token == "" {
				break
			}
		}
		want := []string{"alice", "bob", "carol", "dave", g.ID}
		slices.Sort(want)
		if !slices.Equal(all, want) {
			t.Fatalf("paged ids = %v, want %v", all, want)
		}
		p, err := list(users.ListInput{})
		if err != nil || len(p.Items) != 5 || p.NextPageToken != "" {
			t.Fatalf("default page: %v %+v", err, p)
		}
		for _, tc := range []struct {
			in   users.ListInput
			want []string
		}{
			{users.ListInput{Status: users.StatusSuspended}, []string{"carol"}},
			{users.ListInput{Email: " BOB@example.com"}, []string{"bob"}},
			{users.ListInput{Email: "bob@example.com", Status: users.StatusSuspended}, []string{}},
		} {
			p, err := list(tc.in)
			if err != nil || !slices.Equal(ids(p.Items), tc.want) {
				t.Fatalf("list %+v = %+v %v, want %v", tc.in, p, err, tc.want)
			}
		}
		raw, err := c.Request(admin, "LIST_USERS", "", users.ListInput{Email: "nobody@example.com"})
		if err != nil || !strings.Contains(string(raw), `"items":[]`) {
			t.Fatalf("empty list = %s %v", raw, err)
		}
	})

	t.Run("update rules", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			ctx  context.Context
			id   string
			body any
			code status.Code
		}{
			{"someone else looks missing", alice, "bob", users.Patch{Name: ptr("X")}, socket.CodeNotFound},
			{"own status", alice, "alice", users.Patch{Status: ptr(users.StatusActive)}, socket.CodePermissionDenied},
			{"email taken", alice, "alice", users.Patch{Email: ptr("Bob@Example.com")}, socket.CodeAlreadyExists},
			{"blank name", alice, "alice", users.Patch{Name: ptr(" ")}, socket.CodeInvalidArgument},
			{"bad email", alice, "alice", users.Patch{Email: ptr("alice")}, socket.CodeInvalidArgument},
			{"bad status", admin, "alice", users.Patch{Status: ptr("gone")}, socket.CodeInvalidArgument},
			{"missing", admin, "ghost", users.Patch{Name: ptr("X")}, socket.CodeNotFound},
			{"unknown field", alice, "alice", map[string]any{"id": "x"}, socket.CodeInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := call(tc.ctx, "UPDATE_USER", tc.id, tc.body)
				wantCode(t, "update", err, tc.code)
			})
		}
		u := must(alice, "UPDATE_USER", "alice", users.Patch{Email: ptr("ALICE2@example.com")})
		if u.Name != "Alice" || u.Email != "alice2@example.com" || u.Status != users.StatusActive {
			t.Fatalf("alice after email change: %+v", u)
		}
		u = must(alice, "UPDATE_USER", "alice", users.Patch{Name: ptr("Alice B.")})
		if u.Name != "Alice B." || u.Email != "alice2@example.com" {
			t.Fatalf("alice after rename: %+v", u)
		}
		u = must(admin, "UPDATE_USER", "bob", users.Patch{Status: ptr(users.StatusSuspended)})
		if u.Status != users.StatusSuspended || u.Name != "Bob" {
			t.Fatalf("bob suspended: %+v", u)
		}
	})

	t.Run("check purchasable", func(t *testing.T) {
		for _, tc := range []struct {
			ctx  context.Context
			id   string
			want string
			code status.Code
		}{
			{alice, "alice", `{"purchasable":true,"reason":""}`, ""},
			{admin, "bob", `{"purchasable":false,"reason":"suspended"}`, ""},
			{admin, "carol", `{"purchasable":false,"reason":"suspended"}`, ""},
			{anon, "alice", "", socket.CodeNotFound},
			{alice, "bob", "", socket.CodeNotFound},
			{alice, "ghost", "", socket.CodeNotFound},
		} {
			raw, err := c.Request(tc.ctx, "CHECK_PURCHASABLE", tc.id, nil)
			wantCode(t, "check "+tc.id, err, tc.code)
			if err == nil {
				var got, want any
				_ = json.Unmarshal(raw, &got)
				_ = json.Unmarshal([]byte(tc.want), &want)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("check %s = %s, want %s", tc.id, raw, tc.want)
				}
			}
		}
	})

	t.Run("require purchasable", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			ctx  context.Context
			id   string
			code status.Code
		}{
			{"active, herself", alice, "alice", ""},
			{"suspended", admin, "bob", socket.CodeFailedPrecondition},
			{"suspended at creation", admin, "carol", socket.CodeFailedPrecondition},
			{"unknown", alice, "ghost", socket.CodeNotFound},
			{"anonymous caller", anon, "alice", socket.CodeNotFound},
			{"another user", alice, "carol", socket.CodeNotFound},
			{"no id", alice, "", socket.CodeInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				raw, err := c.Request(tc.ctx, "REQUIRE_PURCHASABLE", tc.id, nil)
				wantCode(t, "require "+tc.id, err, tc.code)
				switch tc.code {
				case "":
					// The same result as CHECK_PURCHASABLE.
					check, err := c.Request(tc.ctx, "CHECK_PURCHASABLE", tc.id, nil)
					if err != nil || string(raw) != string(check) {
						t.Fatalf("require %s = %s, check = %s %v", tc.id, raw, check, err)
					}
					got, err := caller.Call[users.Purchasable](tc.ctx, c, "REQUIRE_PURCHASABLE", tc.id, nil)
					if err != nil || got != (users.Purchasable{Purchasable: true}) {
						t.Fatalf("require %s = %+v %v", tc.id, got, err)
					}
				case socket.CodeFailedPrecondition:
					se := status.AsError(err)
					want := map[string]any{"reason": "user_suspended", "user_id": tc.id}
					if se.Message != fmt.Sprintf("user %q cannot purchase: suspended", tc.id) || fmt.Sprint(se.Details) != fmt.Sprint(want) {
						t.Fatalf("require %s: message %q, details %v", tc.id, se.Message, se.Details)
					}
				case socket.CodeNotFound:
					if se := status.AsError(err); se.Message != fmt.Sprintf("user %q not found", tc.id) {
						t.Fatalf("not found should name the user: %q", se.Message)
					}
				}
			})
		}
	})

	t.Run("delete", func(t *testing.T) {
		_, err := call(bob, "DELETE_USER", "bob", nil)
		wantCode(t, "delete as a user", err, socket.CodePermissionDenied)
		u := must(admin, "DELETE_USER", "bob", nil)
		if u.ID != "bob" || u.Email != "bob@example.com" {
			t.Fatalf("deleted = %+v", u)
		}
		_, err = call(admin, "DELETE_USER", "bob", nil)
		wantCode(t, "delete again", err, socket.CodeNotFound)
		_, err = call(bob, "GET_USER", "bob", nil)
		wantCode(t, "get deleted", err, socket.CodeNotFound)
		// The email is free again: bob signs up anew.
		must(bob, "CREATE_USER", "", users.CreateInput{Name: "Bob", Email: "bob@example.com"})
	})
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	c := serve(t, users.NewMemoryStore())
	d, err := c.Describe(sockettest.As(t, "v1", "root", "admin"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ // name → kind
		"GET_USER": "read", "LIST_USERS": "read", "CHECK_PURCHASABLE": "read", "REQUIRE_PURCHASABLE": "read",
		"CREATE_USER": "write", "UPDATE_USER": "idempotent write", "DELETE_USER": "idempotent write",
	}
	got := map[string]string{}
	for name, a := range d {
		kind := "write"
		switch {
		case a.Read && a.Public:
			kind = "public read"
		case a.Read:
			kind = "read"
		case a.Idempotent:
			kind = "idempotent write"
		}
		if a.Doc == "" {
			t.Errorf("%s has no doc", name)
		}
		got[name] = kind
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("actions = %v, want %v", got, want)
	}
}

// TestServiceConcurrentSignUp signs up 20 callers with one email at once,
// over the socket: exactly one gets the user, the others ALREADY_EXISTS.
func TestServiceConcurrentSignUp(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st users.Store) {
		c := serve(t, st)
		const n = 20
		codes := make([]status.Code, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			ctx := sockettest.As(t, "v1", fmt.Sprintf("jwt-%02d", i))
			wg.Go(func() {
				<-start
				_, err := c.Request(ctx, "CREATE_USER", "", users.CreateInput{Name: "Same", Email: "Same@Example.com"})
				codes[i] = status.CodeOf(err)
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for i, code := range codes {
			switch code {
			case "":
				won++
			case socket.CodeAlreadyExists:
			default:
				t.Errorf("caller %d: %s", i, code)
			}
		}
		if won != 1 {
			t.Fatalf("%d sign-ups won, want 1 (codes %v)", won, codes)
		}
		p, err := caller.Call[users.Page](sockettest.As(t, "v1", "root", "admin"), c, "LIST_USERS", "", users.ListInput{Email: "same@example.com"})
		if err != nil || len(p.Items) != 1 {
			t.Fatalf("users with the email: %+v %v", p, err)
		}
	})
}
