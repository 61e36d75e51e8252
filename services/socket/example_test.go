package socket_test

import (
	"context"
	"fmt"
	"net"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
)

type user struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// A service with one action, and a caller using it over the socket.
func Example() {
	srv, err := socket.NewServer(socket.Config{Name: "users"}, socket.WithoutAuth())
	if err != nil {
		panic(err)
	}
	err = srv.Handle("UPDATE_USER", socket.Typed(func(ctx context.Context, id string, in user) (user, error) {
		if in.Name == "" {
			return user{}, socket.Errorf(socket.CodeInvalidArgument, "name is required")
		}
		return user{ID: id, Name: in.Name}, nil
	}), socket.Idempotent())
	if err != nil {
		panic(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error)
	go func() { served <- srv.Serve(ctx, lis) }()

	c, err := caller.Dial(lis.Addr().String())
	if err != nil {
		panic(err)
	}
	res, err := c.Request(ctx, "UPDATE_USER", "1", map[string]any{"name": "Oska"})
	fmt.Println(string(res), err)
	_, err = caller.Call[user](ctx, c, "UPDATE_USER", "1", user{})
	fmt.Println(err)

	_ = c.Close()
	stop()
	<-served
	// Output:
	// {"id":"1","name":"Oska"} <nil>
	// INVALID_ARGUMENT: name is required
}
