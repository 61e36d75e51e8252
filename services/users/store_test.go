package users_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/services/internal/sqldb"
	"github.com/streamgate/streamgate/services/internal/sqldb/sqltest"
	"github.com/streamgate/streamgate/services/users"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// stores opens each Store implementation afresh for a test.
var stores = []struct {
	name string
	open func(t *testing.T) users.Store
}{
	{"memory", func(*testing.T) users.Store { return users.NewMemoryStore() }},
	{"sqlite", func(t *testing.T) users.Store { return sqlStore(t, sqltest.SQLite(t)) }},
	{"postgres", func(t *testing.T) users.Store { return sqlStore(t, sqltest.Postgres(t)) }},
}

func sqlStore(t *testing.T, db *sqldb.DB) users.Store {
	t.Helper()
	ctx := context.Background()
	if _, err := users.NewSQLStore(ctx, db); err != nil {
		t.Fatal(err)
	}
	st, err := users.NewSQLStore(ctx, db) // migrating twice is harmless
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// forEachStore runs test against every store, in parallel.
func forEachStore(t *testing.T, test func(t *testing.T, st users.Store)) {
	t.Helper()
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			test(t, s.open(t))
		})
	}
}

var created = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

func user(id, email, status string) users.User {
	return users.User{ID: id, Name: "Name " + id, Email: email, Status: status, CreatedAt: created}
}

func ptr(s string) *string { return &s }

func ids(us []users.User) []string {
	out := []string{}
	for _, u := range us {
		out = append(out, u.ID)
	}
	return out
}

func sameUser(t *testing.T, got, want users.User) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.Email != want.Email || got.Status != want.Status || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("user = %+v, want %+v", got, want)
	}
}

func TestStoreCreateGet(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st users.Store) {
		ctx := context.Background()
		a := user("a", "a@x.io", users.StatusActive)
		if err := st.Create(ctx, a); err != nil {
			t.Fatal(err)
		}
		got, err := st.Get(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		sameUser(t, got, a)
		if _, err := st.Get(ctx, "ghost"); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("get ghost: %v", err)
		}
		if err := st.Create(ctx, user("b", "b@x.io", users.StatusSuspended)); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			u    users.User
			want error
		}{
			{"id taken", user("a", "new@x.io", users.StatusActive), users.ErrIDTaken},
			{"email taken", user("c", "a@x.io", users.StatusActive), users.ErrEmailTaken},
			{"both taken reports the id", user("a", "b@x.io", users.StatusActive), users.ErrIDTaken},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if err := st.Create(ctx, tc.u); !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
			})
		}
		if got, err := st.Get(ctx, "a"); err != nil || got.Email != "a@x.io" {
			t.Fatalf("a after clashes: %+v %v", got, err)
		}
	})
}

func TestStoreList(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st users.Store) {
		ctx := context.Background()
		// Inserted out of order; "B" sorts before "a" byte-wise.
		for _, u := range []users.User{
			user("c", "c@x.io", users.StatusActive),
			user("a", "a@x.io", users.StatusSuspended),
			user("e", "e@x.io", users.StatusActive),
			user("B", "b@x.io", users.StatusActive),
			user("d", "d@x.io", users.StatusSuspended),
		} {
			if err := st.Create(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			name string
			q    users.Query
			want []string
		}{
			{"all", users.Query{Limit: 10}, []string{"B", "a", "c", "d", "e"}},
			{"limit", users.Query{Limit: 2}, []string{"B", "a"}},
			{"after", users.Query{After: "a", Limit: 2}, []string{"c", "d"}},
			{"after the last", users.Query{After: "e", Limit: 2}, []string{}},
			{"status", users.Query{Status: users.StatusSuspended, Limit: 10}, []string{"a", "d"}},
			{"status after", users.Query{Status: users.StatusActive, After: "B", Limit: 10}, []string{"c", "e"}},
			{"email", users.Query{Email: "d@x.io", Limit: 10}, []string{"d"}},
			{"email and other status", users.Query{Email: "d@x.io", Status: users.StatusActive, Limit: 10}, []string{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := st.List(ctx, tc.q)
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(ids(got)) != fmt.Sprint(tc.want) {
					t.Fatalf("ids = %v, want %v", ids(got), tc.want)
				}
			})
		}
		got, err := st.List(ctx, users.Query{Email: "c@x.io", Limit: 1})
		if err != nil || len(got) != 1 {
			t.Fatalf("list c: %v %v", got, err)
		}
		sameUser(t, got[0], user("c", "c@x.io", users.StatusActive))
	})
}

func TestStoreUpdateDelete(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st users.Store) {
		ctx := context.Background()
		for _, u := range []users.User{user("a", "a@x.io", users.StatusActive), user("b", "b@x.io", users.StatusActive)} {
			if err := st.Create(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		want := user("a", "a@x.io", users.StatusActive)
		got, err := st.Update(ctx, "a", users.Patch{})
		if err != nil {
			t.Fatal(err)
		}
		sameUser(t, got, want)

		want.Name = "Ann"
		if got, err = st.Update(ctx, "a", users.Patch{Name: ptr("Ann")}); err != nil {
			t.Fatal(err)
		}
		sameUser(t, got, want)

		if _, err := st.Update(ctx, "a", users.Patch{Name: ptr("Lost"), Email: ptr("b@x.io")}); !errors.Is(err, users.ErrEmailTaken) {
			t.Fatalf("email clash: %v", err)
		}
		if got, _ := st.Get(ctx, "a"); got.Name != "Ann" || got.Email != "a@x.io" {
			t.Fatalf("a failed update changed it: %+v", got)
		}

		want.Email, want.Status = "a2@x.io", users.StatusSuspended
		if got, err = st.Update(ctx, "a", users.Patch{Email: ptr("a2@x.io"), Status: ptr(users.StatusSuspended)}); err != nil {
			t.Fatal(err)
		}
		sameUser(t, got, want)
		if got, _ := st.Get(ctx, "a"); got.Email != "a2@x.io" || got.Status != users.StatusSuspended {
			t.Fatalf("a after update: %+v", got)
		}
		if got, err := st.Update(ctx, "a", users.Patch{Email: ptr("a2@x.io")}); err != nil || got.Email != "a2@x.io" {
			t.Fatalf("setting the same email: %+v %v", got, err)
		}
		// The old email is free again.
		if err := st.Create(ctx, user("c", "a@x.io", users.StatusActive)); err != nil {
			t.Fatalf("reusing a's old email: %v", err)
		}
		if _, err := st.Update(ctx, "ghost", users.Patch{Name: ptr("x")}); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("update ghost: %v", err)
		}
		if _, err := st.Update(ctx, "ghost", users.Patch{}); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("empty update of ghost: %v", err)
		}

		got, err = st.Delete(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		sameUser(t, got, want)
		if _, err := st.Delete(ctx, "a"); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if _, err := st.Get(ctx, "a"); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("get deleted: %v", err)
		}
		if err := st.Create(ctx, user("a", "a2@x.io", users.StatusActive)); err != nil {
			t.Fatalf("recreating a with its email: %v", err)
		}
	})
}

// TestStoreConcurrentUniqueness races writers for one email or one id:
// exactly one wins on every store.
func TestStoreConcurrentUniqueness(t *testing.T) {
	t.Parallel()
	const n = 20
	race := func(t *testing.T, try func(i int) error, lost error) {
		t.Helper()
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = try(i)
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, lost):
				t.Errorf("writer %d: %v, want nil or %v", i, err, lost)
			}
		}
		if won != 1 {
			t.Fatalf("%d writers won, want 1", won)
		}
	}
	forEachStore(t, func(t *testing.T, st users.Store) {
		ctx := context.Background()
		t.Run("create with one email", func(t *testing.T) {
			race(t, func(i int) error {
				return st.Create(ctx, user(fmt.Sprintf("e%02d", i), "same@x.io", users.StatusActive))
			}, users.ErrEmailTaken)
			got, err := st.List(ctx, users.Query{Email: "same@x.io", Limit: 100})
			if err != nil || len(got) != 1 {
				t.Fatalf("users with the email: %v %v", ids(got), err)
			}
		})
		t.Run("create with one id", func(t *testing.T) {
			race(t, func(i int) error {
				return st.Create(ctx, user("one", fmt.Sprintf("one%02d@x.io", i), users.StatusActive))
			}, users.ErrIDTaken)
		})
		t.Run("update to one email", func(t *testing.T) {
			for i := range n {
				if err := st.Create(ctx, user(fmt.Sprintf("u%02d", i), fmt.Sprintf("u%02d@x.io", i), users.StatusActive)); err != nil {
					t.Fatal(err)
				}
			}
			race(t, func(i int) error {
				_, err := st.Update(ctx, fmt.Sprintf("u%02d", i), users.Patch{Email: ptr("target@x.io")})
				return err
			}, users.ErrEmailTaken)
			got, err := st.List(ctx, users.Query{Email: "target@x.io", Limit: 100})
			if err != nil || len(got) != 1 {
				t.Fatalf("users with the email: %v %v", ids(got), err)
			}
		})
	})
}
