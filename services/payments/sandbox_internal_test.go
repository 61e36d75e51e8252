package payments

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// The sandbox stops sitting on a hanging charge as soon as the caller
// gives up, not only when it closes.
func TestSandboxHangEndsWithTheRequest(t *testing.T) {
	t.Parallel()
	sb := NewSandbox("A", 0)
	url, err := sb.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	prov := NewHTTPProvider(url, 50*time.Millisecond, &http.Client{Transport: tr})
	if _, err := prov.Charge(context.Background(), Charge{AmountCents: 1, Card: cardHangs, Reference: "pay_1"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	// The sandbox still waiting after the caller gave up fails the test.
	AwaitSandboxWaiting(t, sb, func(waiting int) bool { return waiting == 0 })
}
