package eventlog_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/streamgate/streamgate/internal/eventlog"
)

// ciNATS names the environment variable holding the URL of a NATS server
// with JetStream (CI's, at 127.0.0.1:4222) the tests also run against.
const ciNATS = "STREAMGATE_TEST_NATS"

// onNATS runs a test against an embedded NATS server with JetStream
// (its store in a temporary directory), then against the server named by
// STREAMGATE_TEST_NATS when it is set.
func onNATS(t *testing.T, test func(t *testing.T, url string)) {
	t.Run("embedded", func(t *testing.T) { test(t, embeddedNATS(t)) })
	t.Run("ci", func(t *testing.T) {
		url := os.Getenv(ciNATS)
		if url == "" {
			t.Skip(ciNATS + " is not set: no NATS server of CI's to test against")
		}
		test(t, url)
	})
}

// embeddedNATS starts a NATS server with JetStream in the test's process,
// stopped when the test ends, and returns its URL.
func embeddedNATS(t testing.TB) string {
	t.Helper()
	url, _ := restartableNATS(t)
	return url
}

// restartableNATS starts an embedded NATS server with JetStream and
// returns its URL and a function that stops it and starts it again on
// the same port and store (as a NATS server restarting).
func restartableNATS(t testing.TB) (url string, restart func()) {
	t.Helper()
	opts := &server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}
	s := startNATS(t, opts)
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	opts.Port = s.Addr().(*net.TCPAddr).Port
	return s.ClientURL(), func() {
		s.Shutdown()
		s.WaitForShutdown()
		s = startNATS(t, opts)
	}
}

func startNATS(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("the embedded NATS server is not ready")
	}
	return s
}

// gateway is one reader and writer of the log, as a gateway would hold
// it: its own connection.
type gateway struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	log *eventlog.Log
}

// openGateway connects to url and opens a log over windows under root,
// closed when the test ends.
func openGateway(t testing.TB, url, root string, windows ...eventlog.Window) *gateway {
	t.Helper()
	nc, err := nats.Connect(url, nats.ReconnectWait(50*time.Millisecond), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	l, err := eventlog.Open(t.Context(), js, windows, eventlog.WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	return &gateway{nc: nc, js: js, log: l}
}

// testRoot returns a subject root of the test's own, and deletes its
// streams when the test ends (a shared server keeps them otherwise).
func testRoot(t testing.TB, url string) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	root := "sgtest" + hex.EncodeToString(b) + ".events"
	t.Cleanup(func() {
		nc, err := nats.Connect(url)
		if err != nil {
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		names := js.StreamNames(ctx)
		for name := range names.Name() {
			if strings.HasPrefix(name, strings.ToUpper(strings.ReplaceAll(root, ".", "_"))) {
				_ = js.DeleteStream(ctx, name)
			}
		}
	})
	return root
}

// consumers returns how many consumers a log's stream has.
func consumers(t testing.TB, g *gateway, stream string) int {
	t.Helper()
	s, err := g.js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Consumers
}
