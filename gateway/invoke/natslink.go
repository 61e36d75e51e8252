package invoke

import (
	"fmt"
	"net/url"

	"github.com/nats-io/nats.go"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/internal/tlsfiles"
)

// natsConns are the NATS connections of the services on transport nats,
// one per server URL, shared by their clients and closed once no client
// uses one. Callers hold resources.mu.
type natsConns struct {
	conns map[string]*nats.Conn
	refs  map[string]int
}

// acquire returns the connection to the server at url, connecting on
// first use. The connection retries in the background when the server is
// down, so a gateway starts before its NATS server does.
func (n *natsConns) acquire(url, name string) (*nats.Conn, error) {
	if nc := n.conns[url]; nc != nil {
		n.refs[url]++
		return nc, nil
	}
	nc, err := nats.Connect(url, nats.Name(name), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("gateway: NATS at %s: %w", redactedURL(url), err)
	}
	if n.conns == nil {
		n.conns, n.refs = map[string]*nats.Conn{}, map[string]int{}
	}
	n.conns[url], n.refs[url] = nc, 1
	return nc, nil
}

// release drops a client's claim on the connection to url.
func (n *natsConns) release(url string) {
	if url == "" || n.conns[url] == nil {
		return
	}
	if n.refs[url]--; n.refs[url] <= 0 {
		n.conns[url].Close()
		delete(n.conns, url)
		delete(n.refs, url)
	}
}

// closeAll closes every connection.
func (n *natsConns) closeAll() {
	for _, nc := range n.conns {
		nc.Close()
	}
	n.conns, n.refs = nil, nil
}

// natsLink checks the link to a service on NATS: a plaintext nats:// URL
// that leaves the machine is refused as a plaintext stream target is.
func (rs *resources) natsLink(cfg *config.Config, svc *config.Service) error {
	return checkNATSPlaintext(svc.Name, svc.NATSURL, svc.Plaintext || cfg.Plaintext || rs.opts.InsecurePlaintext)
}

// checkNATSPlaintext refuses a plaintext nats:// URL that leaves the
// machine, unless allowed; what names what the link is for.
func checkNATSPlaintext(what, raw string, allowed bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme == "tls" || allowed || tlsfiles.LoopbackTarget(u.Host) {
		return nil
	}
	return tlsfiles.PlaintextDialError(what, redactedURL(raw),
		"use a tls:// nats_url, or allow it with plaintext: true (or -insecure-plaintext)")
}

// redactedURL is a NATS URL without its password, for messages.
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a malformed URL)"
	}
	return u.Redacted()
}
