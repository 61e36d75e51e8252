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
	for wait := time.Now().Add(5 * time.Second); sb.Charges() == 0; {
		if time.Now().After(wait) {
			t.Fatal("the charge never reached the sandbox")
		}
		time.Sleep(time.Millisecond) // polls a counter the sandbox exposes
	}
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
