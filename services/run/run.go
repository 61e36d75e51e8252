// Package run serves one of streamgate's services by name on a listener;
// it is what `streamgate service NAME` calls.
//
//	err := run.Run(ctx, run.Options{Service: "echo", Listen: "127.0.0.1:9000", Keys: keys})
package run

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"

	"github.com/streamgate/streamgate/services/echo"
	"github.com/streamgate/streamgate/services/notes"
	"github.com/streamgate/streamgate/services/socket"
)

// services maps a service name to the function that registers its actions.
var services = map[string]func(*socket.Server) error{
	"echo":  echo.Register,
	"notes": func(s *socket.Server) error { return notes.Register(s, notes.NewStore()) },
}

// Names lists the services Run knows.
func Names() []string {
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Options say what to serve where.
type Options struct {
	// Service is the service's name, one of Names().
	Service string
	// Listen is the TCP address to serve on, e.g. "127.0.0.1:9000".
	Listen string
	// Keys are the keys callers may present; none means no authentication
	// (local use only).
	Keys []socket.Key
	// Version is reported by Describe.
	Version string
	// Logger receives the runtime's logs; nil discards them.
	Logger *slog.Logger
	// Ready, if set, is called with the bound address once serving.
	Ready func(addr string)
}

// Run serves the service until ctx ends, then drains and returns.
func Run(ctx context.Context, o Options) error {
	register, ok := services[o.Service]
	if !ok {
		return fmt.Errorf("unknown service %q; known: %s", o.Service, strings.Join(Names(), ", "))
	}
	opts := []socket.ServerOption{}
	if o.Logger != nil {
		opts = append(opts, socket.WithLogger(o.Logger))
	}
	if len(o.Keys) == 0 {
		opts = append(opts, socket.WithoutAuth())
	} else {
		keys, err := socket.NewKeyring(o.Keys...)
		if err != nil {
			return err
		}
		opts = append(opts, socket.WithKeys(keys))
	}
	srv, err := socket.NewServer(socket.Config{Name: o.Service, Version: o.Version}, opts...)
	if err != nil {
		return err
	}
	if err := register(srv); err != nil {
		return err
	}
	lis, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	if o.Ready != nil {
		o.Ready(lis.Addr().String())
	}
	return srv.Serve(ctx, lis)
}
