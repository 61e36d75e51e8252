// Package stack runs the whole example system in one process: every
// example service on its own loopback port, reached over its own real
// socket, and the gateway in front of them, configured by
// gateway/example.yaml.
//
//	err := stack.Run(ctx, stack.Options{ConfigPath: "gateway/example.yaml", HTTPAddr: "127.0.0.1:8080", …, Out: os.Stdout})
package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/services/run"
	"github.com/streamgate/streamgate/services/socket"
)

// services are the services the stack starts, named as in the gateway
// configuration.
func services() []string { return []string{"echo", "notes"} }

// Options say where the stack listens and what it uses.
type Options struct {
	// ConfigPath is the gateway configuration; its service targets are
	// replaced by the ports the services get.
	ConfigPath string
	// HTTPAddr, GRPCAddr and AdminAddr are the gateway's REST, gRPC and
	// admin (/healthz, /readyz) listeners.
	HTTPAddr, GRPCAddr, AdminAddr string
	// AdminKey is the API key with the admin role; random when empty.
	AdminKey string
	// JWTSecret is the HS256 secret of user tokens; random when empty.
	JWTSecret string
	// Out receives the addresses, credentials and then the line "ready".
	Out io.Writer
	// Logger receives the parts' logs; nil discards them.
	Logger *slog.Logger
}

// Run starts the services and the gateway, prints where they are, and
// serves until ctx ends; then it drains the gateway, then the services.
func Run(ctx context.Context, o Options) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	serviceKey := randomKey()
	if o.AdminKey == "" {
		o.AdminKey = randomKey()
	}
	if o.JWTSecret == "" {
		o.JWTSecret = randomKey()
	}
	env := map[string]string{
		"STREAMGATE_SERVICE_KEY": serviceKey,
		"STREAMGATE_ADMIN_KEY":   o.AdminKey,
		"STREAMGATE_JWT_SECRET":  o.JWTSecret,
	}

	// The services outlive the gateway, so it can drain into them.
	svcCtx, stopServices := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		stopServices()
		wg.Wait()
	}()
	failed := make(chan error, len(services()))
	targets := map[string]string{}
	for _, name := range services() {
		ready := make(chan string, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := run.Run(svcCtx, run.Options{
				Service: name, Listen: "127.0.0.1:0", Version: "stack",
				Keys:   []socket.Key{{Name: "gateway", Secret: serviceKey, Delegate: true}},
				Logger: o.Logger.With("service", name),
				Ready:  func(addr string) { ready <- addr },
			})
			if err != nil {
				failed <- fmt.Errorf("service %s: %w", name, err)
			}
		}()
		select {
		case addr := <-ready:
			targets[name] = addr
		case err := <-failed:
			return err
		}
	}
	return gateway.Run(ctx, gateway.RunOptions{
		ConfigPath: o.ConfigPath, HTTPAddr: o.HTTPAddr, GRPCAddr: o.GRPCAddr, AdminAddr: o.AdminAddr,
		Env:     func(k string) string { return env[k] },
		Targets: targets,
		Logger:  o.Logger.With("part", "gateway"),
		Ready: func(a gateway.Addrs) {
			printBanner(o, a, targets)
		},
	})
}

// printBanner tells a person where everything is and how to get in.
func printBanner(o Options, a gateway.Addrs, targets map[string]string) {
	w := o.Out
	fmt.Fprintf(w, "REST      http://%s   (e.g. GET /v1/openapi.json)\n", a.HTTP)
	fmt.Fprintf(w, "gRPC      %s   (streamgate.gateway.v1.GatewayService, reflection on)\n", a.GRPC)
	fmt.Fprintf(w, "admin     http://%s   (/healthz, /readyz)\n", a.Admin)
	for _, name := range services() {
		fmt.Fprintf(w, "service   %-6s %s\n", name, targets[name])
	}
	fmt.Fprintf(w, "admin key %s   (Authorization: Bearer KEY, role admin)\n", o.AdminKey)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "streamgate", "sub": "alice", "roles": []string{"user"}, "exp": time.Now().Add(24 * time.Hour).Unix(),
	}).SignedString([]byte(o.JWTSecret))
	if err == nil {
		fmt.Fprintf(w, "user JWT  %s   (sub alice, 24h)\n", tok)
	}
	fmt.Fprintln(w, "ready")
}

func randomKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
