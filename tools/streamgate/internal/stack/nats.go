package stack

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/streamgate/streamgate/internal/tlsfiles"
)

// NATSEmbedded is the Options.NATS value that starts a NATS server inside
// the stack.
const NATSEmbedded = "embedded"

// natsServer is the stack's NATS server: one it embeds, or one it was
// given by URL (then stop does nothing).
type natsServer struct {
	url      string // what the services and the gateways connect to
	embedded *server.Server
	storeDir string // the embedded server's JetStream store, removed by stop
}

// startNATS starts the embedded NATS server (with JetStream, its store in
// a temporary directory, on loopback at a free port) when spec is
// NATSEmbedded, or checks spec as the URL of a server to use: a
// plaintext nats:// URL off loopback only with insecurePlaintext.
func startNATS(spec string, insecurePlaintext bool) (*natsServer, error) {
	if spec != NATSEmbedded {
		u, err := url.Parse(spec)
		if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
			return nil, errors.New(`-nats: expected embedded or a URL such as "nats://127.0.0.1:4222"`)
		}
		if u.Scheme == "nats" && !insecurePlaintext && !tlsfiles.LoopbackTarget(u.Host) {
			return nil, fmt.Errorf("-nats: refusing plaintext NATS at %s (not loopback): use a tls:// URL, or allow it with -insecure-plaintext", u.Redacted())
		}
		return &natsServer{url: spec}, nil
	}
	dir, err := os.MkdirTemp("", "streamgate-stack-jetstream-")
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "streamgate-stack", Host: "127.0.0.1", Port: server.RANDOM_PORT,
		JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	ns.Start()
	n := &natsServer{url: ns.ClientURL(), embedded: ns, storeDir: dir}
	if !ns.ReadyForConnections(10 * time.Second) {
		n.stop()
		return nil, errors.New("embedded NATS: not ready within 10s")
	}
	return n, nil
}

// stop shuts the embedded server down and removes its store.
func (n *natsServer) stop() {
	if n == nil || n.embedded == nil {
		return
	}
	n.embedded.Shutdown()
	n.embedded.WaitForShutdown()
	_ = os.RemoveAll(n.storeDir)
}

// describe is the banner's note on the server.
func (n *natsServer) describe() string {
	if n.embedded != nil {
		return n.url + "   (embedded, JetStream; its store is removed at exit)"
	}
	return redacted(n.url)
}

// redacted is a URL without its password, for the banner.
func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a URL that does not parse)"
	}
	return u.Redacted()
}
