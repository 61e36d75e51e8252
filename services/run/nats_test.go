package run_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/internal/natstest"
	"github.com/streamgate/streamgate/services/run"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/keyring"
)

// With NATS and no listen address, a service serves over NATS alone.
func TestRunServesOverNATS(t *testing.T) {
	url := natstest.Embedded(t)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run.Run(ctx, run.Options{Service: "echo", NATS: url, Keys: []keyring.Key{{Name: "k", Secret: "s"}}, Ready: func(addr string) { ready <- addr }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	select {
	case addr := <-ready:
		if addr != url {
			t.Errorf("Ready(%q); want the NATS URL %q", addr, url)
		}
	case err := <-done:
		t.Fatalf("Run returned before serving: %v", err)
	}
	nc := natstest.Connect(t, url)
	natstest.WaitService(t, nc, "echo", 1, 2)
	c, err := caller.Dial("echo", caller.WithNATS(nc), caller.WithKey("s"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	res, err := c.Request(rctx, "ECHO", "1", map[string]string{"text": "hi"})
	if err != nil || !strings.Contains(string(res), `"hi"`) {
		t.Fatalf("ECHO over NATS: %s, %v", res, err)
	}
}

func TestRunRefusesPlaintextNATSOffLoopback(t *testing.T) {
	err := run.Run(context.Background(), run.Options{Service: "echo", NATS: "nats://nats.example:4222", WithoutAuth: true})
	if err == nil || !strings.Contains(err.Error(), "refusing to serve") {
		t.Fatalf("Run with a plaintext NATS server off loopback: %v; want a refusal", err)
	}
}
