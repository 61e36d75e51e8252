package users_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/services/users"
	"github.com/streamgate/streamgate/status"
)

// TestOthersLookMissing checks that another user's account answers
// exactly like one that does not exist, for every action on one user:
// the same code, the same message (but for the id) and the same details,
// so no caller can learn which ids exist or whether they are suspended.
func TestOthersLookMissing(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st users.Store) {
		c := serve(t, st)
		admin := sockettest.As(t, "v1", "root", "admin")
		for _, u := range []users.CreateInput{
			{ID: "alice", Name: "Alice", Email: "alice@example.com"},
			{ID: "bob", Name: "Bob", Email: "bob@example.com"},
			{ID: "carol", Name: "Carol", Email: "carol@example.com", Status: users.StatusSuspended},
		} {
			if _, err := c.Request(admin, "CREATE_USER", "", u); err != nil {
				t.Fatal(err)
			}
		}
		// shape is an error with its id taken out of the message.
		shape := func(err error, id string) string {
			e := status.AsError(err)
			if err == nil {
				return "no error"
			}
			return fmt.Sprintf("%s %q %v", e.Code, strings.ReplaceAll(e.Message, id, "ID"), e.Details)
		}
		for _, callerName := range []string{"alice", "anonymous", ""} {
			who := sockettest.As(t, "v1", callerName)
			for _, action := range []struct {
				name string
				body any
			}{
				{"GET_USER", nil},
				{"UPDATE_USER", users.Patch{Name: ptr("X")}},
				{"DELETE_USER", nil},
				{"CHECK_PURCHASABLE", nil},
				{"REQUIRE_PURCHASABLE", nil},
			} {
				_, missing := c.Request(who, action.name, "ghost", action.body)
				if status.CodeOf(missing) != socket.CodeNotFound {
					t.Fatalf("%s of a missing user as %q: %v, want NOT_FOUND", action.name, callerName, missing)
				}
				want := shape(missing, "ghost")
				for _, other := range []string{"bob", "carol"} {
					_, err := c.Request(who, action.name, other, action.body)
					if got := shape(err, other); got != want {
						t.Errorf("%s of %s as %q: %s, but a missing user: %s", action.name, other, callerName, got, want)
					}
				}
			}
		}
		// Unchanged by the refused calls; and allowed to themselves and admins.
		for _, id := range []string{"bob", "carol"} {
			u, err := caller.Call[users.User](admin, c, "GET_USER", id, nil)
			if err != nil || u.Name == "X" {
				t.Fatalf("%s after refused calls: %+v %v", id, u, err)
			}
		}
		if p, err := caller.Call[users.Purchasable](sockettest.As(t, "v1", "carol"), c, "CHECK_PURCHASABLE", "carol", nil); err != nil || p.Purchasable {
			t.Fatalf("carol checks herself: %+v %v", p, err)
		}
		if p, err := caller.Call[users.Purchasable](admin, c, "CHECK_PURCHASABLE", "bob", nil); err != nil || !p.Purchasable {
			t.Fatalf("an admin checks bob: %+v %v", p, err)
		}
	})
}
