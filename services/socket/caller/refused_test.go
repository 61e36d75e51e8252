package caller_test

import (
	"testing"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

// TestRefusedKeyIsAlwaysUnauthenticated checks that a client whose key
// the service refuses learns so on its first request, every time: the
// refusal lands while the request decides whether to wait for a ready
// stream, and must never be reported as "no ready instance" instead.
func TestRefusedKeyIsAlwaysUnauthenticated(t *testing.T) {
	t.Parallel()
	ts := sockettest.StartServer(t, sockettest.Spec{})
	for i := range 200 {
		// The default backoff: the next attempt is too far off to wait for.
		c, err := caller.Dial(ts.Addr, caller.WithKey("not-the-key"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Request(sockettest.Context(t), "ECHO", "", nil)
		if status.CodeOf(err) != socket.CodeUnauthenticated {
			t.Fatalf("request %d with a refused key: %v, want UNAUTHENTICATED", i, err)
		}
		_ = c.Close()
	}
}
