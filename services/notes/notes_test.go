package notes_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/services/notes"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNotesCRUDOverTheSocket(t *testing.T) {
	srv, err := socket.NewServer(socket.Config{Name: "notes"}, socket.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	if err := notes.Register(srv, notes.NewStore()); err != nil {
		t.Fatal(err)
	}
	c := sockettest.Start(t, srv)
	alice, bob, admin := sockettest.As(t, "", "alice"), sockettest.As(t, "", "bob"), sockettest.As(t, "", "root", "admin")

	for i := range 3 {
		if _, err := caller.Call[notes.Item](alice, c, "CREATE_NOTE", "", notes.Input{Text: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := caller.Call[notes.Item](bob, c, "CREATE_NOTE", "", notes.Input{Text: "bob's"})
	if err != nil || n.ID != "4" || n.Owner != "bob" {
		t.Fatalf("create: %+v %v", n, err)
	}
	if _, err := c.Request(alice, "CREATE_NOTE", "", notes.Input{}); status.CodeOf(err) != socket.CodeInvalidArgument {
		t.Fatalf("empty text: %v", err)
	}
	p, err := caller.Call[notes.Page](alice, c, "LIST_NOTES", "", notes.ListInput{Owner: "alice", PageSize: 2})
	if err != nil || len(p.Items) != 2 || p.NextPageToken != "2" {
		t.Fatalf("page 1: %+v %v", p, err)
	}
	p, err = caller.Call[notes.Page](alice, c, "LIST_NOTES", "", notes.ListInput{Owner: "alice", PageSize: 2, PageToken: p.NextPageToken})
	if err != nil || len(p.Items) != 1 || p.Items[0].ID != "3" || p.NextPageToken != "" {
		t.Fatalf("page 2: %+v %v", p, err)
	}
	if _, err := c.Request(alice, "UPDATE_NOTE", "4", notes.Input{Text: "mine now"}); status.CodeOf(err) != socket.CodePermissionDenied {
		t.Fatalf("alice updating bob's note: %v", err)
	}
	if _, err := c.Request(admin, "DELETE_NOTE", "4", nil); err != nil {
		t.Fatalf("admin delete: %v", err)
	}
	if _, err := c.Request(bob, "GET_NOTE", "4", nil); status.CodeOf(err) != socket.CodeNotFound {
		t.Fatalf("deleted note: %v", err)
	}
	if _, err := c.Request(alice, "GET_TAG", "1", nil); status.CodeOf(err) != socket.CodeNotFound {
		t.Fatalf("tags are a separate collection: %v", err)
	}
}
