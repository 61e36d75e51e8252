package actions_test

import (
	"context"
	"testing"

	"github.com/streamgate/streamgate/services/internal/actions"
	"github.com/streamgate/streamgate/services/socket"
)

func echo(_ context.Context, id string, _ struct{}) (string, error) { return id, nil }

func TestRegistrar(t *testing.T) {
	t.Parallel()
	srv, err := socket.NewServer(socket.Config{Name: "t"}, socket.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	r := actions.On(srv)
	r.Handle("ONE", socket.Typed(echo), socket.Read())
	if err := r.Err(); err != nil {
		t.Fatalf("first action: %v", err)
	}
	r.Handle("ONE", socket.Typed(echo)) // a second action of that name fails
	first := r.Err()
	if first == nil {
		t.Fatal("registering ONE twice: no error")
	}
	r.Handle("TWO", socket.Typed(echo))
	if r.Err() != first {
		t.Fatalf("Err after a later Handle = %v, want the first error %v", r.Err(), first)
	}
	r2 := actions.On(srv)
	r2.Handle("TWO", socket.Typed(echo))
	if err := r2.Err(); err != nil {
		t.Fatalf("TWO was registered after the error, or cannot be: %v", err)
	}
}
