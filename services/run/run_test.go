package run_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/run"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Payments settles on its own while it serves: a charge whose answer was
// lost is refunded by the periodic pass, which stops when Run's context
// ends.
func TestPaymentsSettleLoop(t *testing.T) {
	t.Parallel()
	sb := payments.NewSandbox("A", 0)
	url, err := sb.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logged := make(chan slog.Record, 64)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run.Run(ctx, run.Options{
			Service: "payments", Listen: "127.0.0.1:0", Store: run.StoreMemory, WithoutAuth: true,
			Gateways: map[string]string{"A": url}, ProviderTimeout: 100 * time.Millisecond,
			SettleInterval: 5 * time.Millisecond, SettleOlderThan: time.Hour,
			Logger: slog.New(recordHandler(logged)),
			Ready:  func(addr string) { ready <- addr },
		})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	c, err := caller.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rctx, rcancel := context.WithTimeout(caller.ContextWithMeta(ctx, socket.Meta{APIVersion: "v2", Principal: socket.Principal{Subject: "alice"}}), 30*time.Second)
	defer rcancel()
	_, err = caller.Call[payments.Payment](rctx, c, "PAY", "", payments.PayInput{OrderID: "ord_1", AmountCents: 300, Gateway: "A", Card: "4000000000000259"})
	if status.CodeOf(err) != socket.CodeDeadlineExceeded {
		t.Fatalf("PAY: %v", err)
	}
	timeout := time.After(30 * time.Second)
	for settled := false; !settled; {
		select {
		case r := <-logged:
			settled = r.Message == "settled payment"
		case <-timeout:
			t.Fatal("the settle loop did not settle the lost charge")
		}
	}
	if len(sb.Taken()) != 0 || sb.Refunds() != 1 {
		t.Fatalf("taken %v, %d refunds", sb.Taken(), sb.Refunds())
	}
	_ = c.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// recordHandler is a slog.Handler that sends every record to ch, dropping
// those it has no room for.
type recordHandler chan<- slog.Record

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h <- r:
	default:
	}
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }

// TestRunRefusesNoKeys: a service without keys would let any caller act
// for any principal; Run serves that only when told so explicitly.
func TestRunRefusesNoKeys(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for name, o := range map[string]run.Options{
		"no keys":          {Service: "echo", Listen: "127.0.0.1:0"},
		"keys and no auth": {Service: "echo", Listen: "127.0.0.1:0", WithoutAuth: true, Keys: []keyring.Key{{Name: "k", Secret: "s"}}},
	} {
		if err := run.Run(ctx, o); err == nil {
			t.Errorf("%s: Run served", name)
		}
	}
}
