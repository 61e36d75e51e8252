package run_test

import (
	"context"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/services/run"
)

// TestPlaintextRefused: a service does not listen, nor call another
// service, in plaintext off loopback unless told it may.
func TestPlaintextRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    run.Options
		want string
	}{
		{"listen", run.Options{Service: "echo", Listen: "0.0.0.0:0"},
			"refusing to serve service echo in plaintext on 0.0.0.0:0 (not loopback): set -tls-cert and -tls-key, or allow it with -insecure-plaintext"},
		{"call", run.Options{Service: "orders", Listen: "127.0.0.1:0", Inventory: "dns:///inventory:9000", Store: run.StoreMemory},
			"refusing to reach service inventory in plaintext at dns:///inventory:9000 (not loopback)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.WithoutAuth = true
			err := run.Run(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Run = %v; want one line with %q", err, tc.want)
			}
		})
	}
}
