// Package natstest gives tests a NATS server: an embedded one on a fresh
// loopback port (always there), or the CI server named by
// STREAMGATE_TEST_NATS (the test is skipped, saying so, when it is unset).
package natstest

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
)

// EnvURL names the NATS server the CI runs, e.g. nats://127.0.0.1:4222.
const EnvURL = "STREAMGATE_TEST_NATS"

// Embedded starts a NATS server inside the test process on a fresh
// loopback port, shut down at cleanup, and returns its URL.
func Embedded(t testing.TB) string {
	t.Helper()
	return start(t, &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
}

// start starts an embedded server with opts, shut down at cleanup, and
// returns its URL.
func start(t testing.TB, opts *server.Options) string {
	t.Helper()
	ns := launch(t, opts)
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns.ClientURL()
}

// launch starts a server with opts and waits until it takes connections.
func launch(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		t.Fatal("natstest: the embedded NATS server did not start")
	}
	return ns
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

// UniqueName is prefix with a random suffix: a service name of the test's
// own, so tests sharing one NATS server do not answer each other.
func UniqueName(prefix string) string {
	return prefix + "-" + nuid.Next()
}

// WaitService waits until instances instances of the micro service
// called name each list at least endpoints endpoints in their INFO (micro
// answers PING and INFO before the endpoints are added). Each round asks
// every instance and takes their answers for a moment; 20 seconds bound
// the wait.
func WaitService(t testing.TB, nc *nats.Conn, name string, instances, endpoints int) {
	t.Helper()
	subject, err := micro.ControlSubject(micro.InfoVerb, name, "")
	if err != nil {
		t.Fatal(err)
	}
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		if err := nc.PublishRequest(subject, inbox, nil); err != nil {
			t.Fatal(err)
		}
		ready := map[string]bool{}
		for {
			m, err := sub.NextMsg(200 * time.Millisecond)
			if err != nil {
				break // this round's answers are in
			}
			var info micro.Info
			if json.Unmarshal(m.Data, &info) == nil && len(info.Endpoints) >= endpoints {
				ready[info.ID] = true
			}
			if len(ready) >= instances {
				return
			}
		}
	}
	t.Fatalf("natstest: %d instances of %s never listed %d endpoints", instances, name, endpoints)
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
