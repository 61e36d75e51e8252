// Package natsconns holds the gateway's NATS connections to the servers
// its services on transport nats (and its events) are reached on: one
// connection per server URL, shared and closed once unused; and the
// check that refuses a plaintext nats:// URL leaving the machine.
//
//	var conns natsconns.Conns
//	nc, err := conns.Acquire("nats://127.0.0.1:4222", "streamgate gateway")
//	defer conns.Release("nats://127.0.0.1:4222")
package natsconns

import (
	"fmt"
	"net/url"

	"github.com/nats-io/nats.go"

	"github.com/streamgate/streamgate/internal/tlsfiles"
)

// Conns are NATS connections, one per server URL, shared by their users
// and closed once none uses one. The zero Conns is ready; it is not safe
// for concurrent use (its owner locks).
type Conns struct {
	conns map[string]*nats.Conn
	refs  map[string]int
}

// Acquire returns the connection to the server at url, connecting on
// first use. The connection retries in the background when the server is
// down, so a gateway starts before its NATS server does.
func (n *Conns) Acquire(url, name string) (*nats.Conn, error) {
	if nc := n.conns[url]; nc != nil {
		n.refs[url]++
		return nc, nil
	}
	nc, err := nats.Connect(url, nats.Name(name), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("gateway: NATS at %s: %w", Redacted(url), err)
	}
	if n.conns == nil {
		n.conns, n.refs = map[string]*nats.Conn{}, map[string]int{}
	}
	n.conns[url], n.refs[url] = nc, 1
	return nc, nil
}

// Release drops a user's claim on the connection to url.
func (n *Conns) Release(url string) {
	if url == "" || n.conns[url] == nil {
		return
	}
	if n.refs[url]--; n.refs[url] <= 0 {
		n.conns[url].Close()
		delete(n.conns, url)
		delete(n.refs, url)
	}
}

// CloseAll closes every connection.
func (n *Conns) CloseAll() {
	for _, nc := range n.conns {
		nc.Close()
	}
	n.conns, n.refs = nil, nil
}

// CheckPlaintext refuses a plaintext nats:// URL that leaves the machine,
// unless allowed; what names what the link is for.
func CheckPlaintext(what, raw string, allowed bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme == "tls" || allowed || tlsfiles.LoopbackTarget(u.Host) {
		return nil
	}
	return tlsfiles.PlaintextDialError(what, Redacted(raw),
		"use a tls:// nats_url, or allow it with plaintext: true (or -insecure-plaintext)")
}

// Redacted is a NATS URL without its password, for messages.
func Redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a malformed URL)"
	}
	return u.Redacted()
}
