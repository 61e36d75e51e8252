package payments

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/streamgate/streamgate/services/socket"
)

func TestProviderDownKeepsTheCauseOutOfTheMessage(t *testing.T) {
	t.Parallel()
	cause := fmt.Errorf(`gateway http://127.0.0.1:1/charges: Post "http://127.0.0.1:1/charges": dial tcp 127.0.0.1:1: connect: %w`, syscall.ECONNREFUSED)
	reason, e := failure("A", "charge", cause)
	if reason != "provider_error" || e.Code != socket.CodeUnavailable {
		t.Fatalf("failure = %s, %v", reason, e)
	}
	if e.Message != "gateway A is unavailable" || strings.Contains(e.Error(), "127.0.0.1") {
		t.Fatalf("the client-facing message carries the cause: %q", e.Message)
	}
	if !errors.Is(e, syscall.ECONNREFUSED) {
		t.Fatal("the cause is lost for logs")
	}
}
