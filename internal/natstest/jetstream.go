package natstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedJetStream is Embedded with JetStream on, its store in a
// temporary directory of the test's.
func EmbeddedJetStream(t testing.TB) string {
	t.Helper()
	return start(t, &server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
}
