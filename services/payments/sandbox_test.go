package payments_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/payments"
)

func TestSandboxCards(t *testing.T) {
	t.Parallel()
	sb, prov := startSandbox(t, "A", 5*time.Millisecond, providerTimeout, testHTTPClient(t))
	tests := []struct {
		name       string
		card       string
		wantReason string // "" approved
		timeout    bool
	}{
		{"approved", cardOK, "", false},
		{"declined", cardDeclined, "card_declined", false},
		{"unknown card", cardUnknown, "invalid_card", false},
		{"short card", "4242", "invalid_card", false},
		{"hangs", cardHangs, "", true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			ref, err := prov.Charge(context.Background(), payments.Charge{AmountCents: 500, Card: tt.card, Reference: fmt.Sprintf("pay_%d", i)})
			var decline *payments.DeclineError
			switch {
			case tt.timeout:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("got %v, want a deadline error", err)
				}
				if d := time.Since(start); d > 10*providerTimeout {
					t.Fatalf("timed out after %v; the provider timeout is %v", d, providerTimeout)
				}
			case tt.wantReason != "":
				if !errors.As(err, &decline) || decline.Reason != tt.wantReason {
					t.Fatalf("got %v, want a decline %s", err, tt.wantReason)
				}
			default:
				if err != nil || !strings.HasPrefix(ref, "ch_a_") {
					t.Fatalf("got %q %v", ref, err)
				}
			}
		})
	}
	if got := sb.Charges(); got != int64(len(tests)) {
		t.Fatalf("Charges() = %d, want %d", got, len(tests))
	}
}

func TestSandboxRefunds(t *testing.T) {
	t.Parallel()
	sb, prov := startSandbox(t, "B", time.Millisecond, providerTimeout, testHTTPClient(t))
	ctx := context.Background()
	ref, err := prov.Charge(ctx, payments.Charge{AmountCents: 500, Card: cardOK, Reference: "pay_1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, ref  string
		amount     int64
		wantReason string
	}{
		{"unknown charge", "ch_nope", 500, "unknown_charge"},
		{"too much", ref, 501, "invalid_amount"},
		{"refunded", ref, 500, ""},
		{"twice", ref, 500, "already_refunded"},
	}
	for _, tt := range tests {
		err := prov.Refund(ctx, tt.ref, tt.amount)
		var decline *payments.DeclineError
		if tt.wantReason == "" && err != nil || tt.wantReason != "" && (!errors.As(err, &decline) || decline.Reason != tt.wantReason) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.wantReason)
		}
	}
	if sb.Refunds() != 1 {
		t.Fatalf("Refunds() = %d, want 1", sb.Refunds())
	}
}

// A charge left hanging ends when the sandbox closes, however long the
// caller was willing to wait.
func TestSandboxCloseEndsHangingCharges(t *testing.T) {
	t.Parallel()
	sb := payments.NewSandbox("C", 0)
	url, err := sb.Start()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Start(); err == nil {
		t.Fatal("a sandbox starts once")
	}
	prov := payments.NewHTTPProvider(url, time.Minute, testHTTPClient(t))
	done := make(chan error, 1)
	go func() {
		_, err := prov.Charge(context.Background(), payments.Charge{AmountCents: 1, Card: cardHangs, Reference: "pay_1"})
		done <- err
	}()
	// The charge never reaching the sandbox (to hang there) fails the test.
	payments.AwaitSandboxWaiting(t, sb, func(waiting int) bool { return waiting > 0 })
	start := time.Now()
	sb.Close()
	if err := <-done; err == nil {
		t.Fatal("the hanging charge succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v", d)
	}
	sb.Close() // twice is fine
}

// The caller's deadline, when shorter than the provider's timeout, wins.
func TestProviderTimeoutIsBounded(t *testing.T) {
	t.Parallel()
	_, prov := startSandbox(t, "A", 0, 50*time.Millisecond, testHTTPClient(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := prov.Charge(ctx, payments.Charge{AmountCents: 1, Card: cardHangs, Reference: "pay_1"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the caller's shorter deadline was not kept: %v", d)
	}
}

// A charge's reference is its idempotency key: the same charge again is
// the same charge, another one under the reference is refused, and the
// gateway answers what became of it.
func TestSandboxChargeByReference(t *testing.T) {
	t.Parallel()
	sb, prov := startSandbox(t, "A", time.Millisecond, providerTimeout, testHTTPClient(t))
	ctx := context.Background()
	first, err := prov.Charge(ctx, payments.Charge{AmountCents: 500, Card: cardOK, Reference: "pay_idem"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := prov.Charge(ctx, payments.Charge{AmountCents: 500, Card: cardOK, Reference: "pay_idem"})
	if err != nil || again != first {
		t.Fatalf("second charge: %q %v, want %q", again, err, first)
	}
	for _, c := range []payments.Charge{
		{AmountCents: 501, Card: cardOK, Reference: "pay_idem"},
		{AmountCents: 500, Card: cardDeclined, Reference: "pay_idem"},
	} {
		_, err := prov.Charge(ctx, c)
		var decline *payments.DeclineError
		if !errors.As(err, &decline) || decline.Reason != "idempotency_key_reused" {
			t.Fatalf("%+v: got %v, want idempotency_key_reused", c, err)
		}
	}
	if got := sb.Taken(); len(got) != 1 || got["pay_idem"] != 500 {
		t.Fatalf("Taken() = %v, want one charge of 500", got)
	}

	st, err := prov.Lookup(ctx, "pay_idem")
	if err != nil || st != (payments.ChargeStatus{Ref: first, AmountCents: 500}) {
		t.Fatalf("Lookup: %+v %v", st, err)
	}
	// A declined charge is no charge, and leaves its reference free.
	if _, err := prov.Charge(ctx, payments.Charge{AmountCents: 300, Card: cardDeclined, Reference: "pay_declined"}); err == nil {
		t.Fatal("declined card charged")
	}
	if _, err := prov.Lookup(ctx, "pay_declined"); !errors.Is(err, payments.ErrNoCharge) {
		t.Fatalf("Lookup of a declined charge: %v, want ErrNoCharge", err)
	}
	if _, err := prov.Lookup(ctx, "pay_never"); !errors.Is(err, payments.ErrNoCharge) {
		t.Fatalf("Lookup of no charge: %v, want ErrNoCharge", err)
	}
	if _, err := prov.Charge(ctx, payments.Charge{AmountCents: 300, Card: cardOK, Reference: "pay_declined"}); err != nil {
		t.Fatalf("charge after a decline: %v", err)
	}

	if err := prov.Refund(ctx, first, 500); err != nil {
		t.Fatal(err)
	}
	st, err = prov.Lookup(ctx, "pay_idem")
	if err != nil || !st.Refunded || st.Ref != first {
		t.Fatalf("Lookup after refund: %+v %v", st, err)
	}
	if got := sb.Taken(); len(got) != 1 || got["pay_declined"] != 300 {
		t.Fatalf("Taken() = %v, want only pay_declined", got)
	}
	if sb.Charges() != 6 {
		t.Fatalf("Charges() = %d, want 6 requests", sb.Charges())
	}
}

// Concurrent charges with one reference make one charge.
func TestSandboxConcurrentChargesByReference(t *testing.T) {
	t.Parallel()
	// Not a test of timeouts: 16 charges at once may take a while on a
	// busy machine.
	sb, prov := startSandbox(t, "B", time.Millisecond, 10*time.Second, testHTTPClient(t))
	const n = 16
	refs := make(chan string, n)
	errs := make(chan error, n)
	for range n {
		go func() {
			ref, err := prov.Charge(context.Background(), payments.Charge{AmountCents: 900, Card: cardOK, Reference: "pay_race"})
			refs <- ref
			errs <- err
		}()
	}
	seen := map[string]bool{}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		seen[<-refs] = true
	}
	if len(seen) != 1 || len(sb.Taken()) != 1 {
		t.Fatalf("refs %v, taken %v: want one charge", seen, sb.Taken())
	}
}

// Card 4000000000000259 takes the money and loses the answer: the caller
// times out, Lookup finds the charge, and a retry with the reference gets
// its ref without a second charge.
func TestSandboxLostAnswer(t *testing.T) {
	t.Parallel()
	sb, prov := startSandbox(t, "C", 0, providerTimeout, testHTTPClient(t))
	ctx := context.Background()
	_, err := prov.Charge(ctx, payments.Charge{AmountCents: 1234, Card: cardLost, Reference: "pay_lost"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
	if strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("error %q names the gateway's address", err)
	}
	st, err := prov.Lookup(ctx, "pay_lost")
	if err != nil || st.AmountCents != 1234 || st.Refunded || st.Ref == "" {
		t.Fatalf("Lookup: %+v %v", st, err)
	}
	ref, err := prov.Charge(ctx, payments.Charge{AmountCents: 1234, Card: cardLost, Reference: "pay_lost"})
	if err != nil || ref != st.Ref {
		t.Fatalf("retry: %q %v, want %q", ref, err, st.Ref)
	}
	if got := sb.Taken(); len(got) != 1 || got["pay_lost"] != 1234 {
		t.Fatalf("Taken() = %v", got)
	}
}

// A gateway that cannot be reached is an error that does not name it.
func TestProviderErrorsHideTheAddress(t *testing.T) {
	t.Parallel()
	sb := payments.NewSandbox("A", 0)
	url, err := sb.Start()
	if err != nil {
		t.Fatal(err)
	}
	sb.Close()
	prov := payments.NewHTTPProvider(url, providerTimeout, testHTTPClient(t))
	host := strings.TrimPrefix(url, "http://")
	_, cerr := prov.Charge(context.Background(), payments.Charge{AmountCents: 1, Card: cardOK, Reference: "pay_1"})
	_, lerr := prov.Lookup(context.Background(), "pay_1")
	rerr := prov.Refund(context.Background(), "ch_1", 1)
	for _, err := range []error{cerr, lerr, rerr} {
		if err == nil || strings.Contains(err.Error(), host) || strings.Contains(err.Error(), "127.0.0.1") {
			t.Fatalf("error %v: want one that does not name %s", err, host)
		}
	}
}
