package socket_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/metadata"

	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testDeadline = 20 * time.Second

func withMetadata(ctx context.Context, k, v string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, k, v)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// awaitReady waits until a client of one instance has a ready stream.
func awaitReady(t *testing.T, c *caller.Client) {
	t.Helper()
	ctx := sockettest.Context(t)
	for c.State() != connectivity.Ready {
		select {
		case <-ctx.Done():
			t.Fatalf("the client never became ready: %v", c.State())
		case <-time.After(5 * time.Millisecond):
		}
	}
}
