package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	fixture "github.com/streamgate/streamgate/services/conformance"
	"github.com/streamgate/streamgate/services/run"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/tools/streamgate/internal/conformance"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testKey = "conformance-test-key"

// serveFixture serves the Go fixture the way `streamgate service
// conformance` does (services/run), on loopback, and returns its address
// and a channel that receives Run's error once the service has exited.
func serveFixture(t *testing.T) (string, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	exited := make(chan error, 1)
	go func() {
		exited <- run.Run(ctx, run.Options{
			Service: fixture.Name,
			Listen:  "127.0.0.1:0",
			Keys:    []keyring.Key{{Name: "conformance", Secret: testKey, Delegate: true}},
			Ready:   func(addr string) { ready <- addr },
		})
	}()
	t.Cleanup(cancel)
	select {
	case addr := <-ready:
		return addr, exited
	case err := <-exited:
		t.Fatalf("the fixture did not start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the fixture did not start in 20s")
	}
	return "", nil
}

// TestGoFixtureConforms runs the whole kit against the Go runtime's
// fixture: every case passes, and DRAIN (the last case) makes the
// service exit cleanly.
func TestGoFixtureConforms(t *testing.T) {
	addr, exited := serveFixture(t)
	rep := conformance.Run(context.Background(), conformance.Options{Addr: addr, Key: testKey})
	var out bytes.Buffer
	rep.Print(&out)
	t.Logf("\n%s", out.String())
	if rep.Failed > 0 || rep.Passed != len(conformance.Cases()) {
		t.Fatalf("want all %d cases to pass, got %d passed, %d failed", len(conformance.Cases()), rep.Passed, rep.Failed)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("after DRAIN the service exited with %v, want nil (exit status 0)", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the service did not exit within 15s of DRAIN")
	}
	// The report as JSON says the same.
	var js bytes.Buffer
	if err := rep.JSON(&js); err != nil {
		t.Fatal(err)
	}
	var back conformance.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Passed != rep.Passed || len(back.Cases) != len(rep.Cases) {
		t.Fatalf("the JSON report does not round-trip: %v", err)
	}
}

// TestKitFailsABrokenFixture serves a fixture whose COUNT acts twice
// (once ignoring its idempotency key) and whose runtime does not coalesce
// reads: the cases that check those rules fail, and only they.
func TestKitFailsABrokenFixture(t *testing.T) {
	keys, err := keyring.New(keyring.Key{Name: "conformance", Secret: testKey, Delegate: true})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := socket.NewServer(socket.Config{Name: fixture.Name}, socket.WithKeys(keys), socket.WithoutCoalescing())
	if err != nil {
		t.Fatal(err)
	}
	f := fixture.New(func() {})
	f.Bind(srv)
	for _, a := range f.Actions() {
		h := a.Handler
		if a.Name == "COUNT" {
			h = twice(h)
		}
		if err := srv.Handle(a.Name, h, a.Options...); err != nil {
			t.Fatal(err)
		}
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	rep := conformance.Run(context.Background(), conformance.Options{
		Addr: lis.Addr().String(), Key: testKey,
		Run: regexp.MustCompile(`^(keyed-write|key-reused|identical-reads|writes-never|request-response|describe-catalogue)`),
	})
	var out bytes.Buffer
	rep.Print(&out)
	t.Logf("\n%s", out.String())
	wantFail := map[string]bool{"keyed-write-runs-once": true, "key-reused-with-other-body": true,
		"identical-reads-coalesced": true, "writes-never-merged": true}
	if len(rep.Cases) != 6 {
		t.Fatalf("want 6 cases run, got %d", len(rep.Cases))
	}
	for _, c := range rep.Cases {
		if c.Pass == wantFail[c.Name] {
			t.Errorf("%s: pass=%v, want %v (%s)", c.Name, c.Pass, !wantFail[c.Name], c.Why)
		}
	}
	if !strings.HasPrefix(rep.Summary(), "FAIL") {
		t.Errorf("summary %q does not say FAIL", rep.Summary())
	}
}

// twice runs a write twice: once as if its idempotency key were not
// there, then as sent.
func twice(h socket.Handler) socket.Handler {
	return socket.HandlerFunc(func(ctx context.Context, req *socket.Request) (json.RawMessage, error) {
		first := *req
		first.Meta.IdempotencyKey = ""
		m := socket.MetaFrom(ctx)
		m.IdempotencyKey = ""
		if _, err := h.ServeAction(caller.ContextWithMeta(ctx, m), &first); err != nil {
			return nil, err
		}
		return h.ServeAction(ctx, req)
	})
}
