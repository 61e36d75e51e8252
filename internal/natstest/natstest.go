// Package natstest gives tests a NATS server: an embedded one on a fresh
// loopback port (always there), or the CI server named by
// STREAMGATE_TEST_NATS (the test is skipped, saying so, when it is unset).
package natstest

import (
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EnvURL names the NATS server the CI runs, e.g. nats://127.0.0.1:4222.
const EnvURL = "STREAMGATE_TEST_NATS"

// Embedded starts a NATS server inside the test process on a fresh
// loopback port, shut down at cleanup, and returns its URL.
func Embedded(t testing.TB) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		t.Fatal("natstest: the embedded NATS server did not start")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns.ClientURL()
}

// External returns the URL of the NATS server in STREAMGATE_TEST_NATS, or
// skips the test when it is unset.
func External(t testing.TB) string {
	t.Helper()
	url := os.Getenv(EnvURL)
	if url == "" {
		t.Skipf("%s is not set: no external NATS server to test against", EnvURL)
	}
	return url
}

// Connect connects to the server at url, closed at cleanup.
func Connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name(t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
