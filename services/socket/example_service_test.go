package socket_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/keyring"
)

// A whole service: a key, a server with one typed action, serving on a
// loopback port until its context ends; then one request with the
// request library. docs/writing-services.md ("Go") shows this body, and
// TestDocsServiceExample keeps the two equal.
func Example_service() {
	keys, err := keyring.New(keyring.Key{Name: "gateway", Secret: "dev-key"})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := socket.NewServer(socket.Config{Name: "greeter", Version: "1.0.0"}, socket.WithKeys(keys))
	if err != nil {
		log.Fatal(err)
	}
	greet := func(ctx context.Context, id string, in struct{ Greeting string }) (string, error) {
		return in.Greeting + ", " + id, nil
	}
	if err := srv.Handle("GREET", socket.Typed(greet), socket.Read()); err != nil {
		log.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }() // until ctx ends; then drains

	c, err := caller.Dial(lis.Addr().String(), caller.WithKey("dev-key"))
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Request(ctx, "GREET", "Oska", map[string]string{"greeting": "hello"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(res))
	if err := c.Close(); err != nil {
		log.Fatal(err)
	}
	stop()
	if err := <-served; err != nil {
		log.Fatal(err)
	}
	// Output: "hello, Oska"
}
