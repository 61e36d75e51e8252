package tlsfiles

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// LoopbackAddr reports whether a listen or dial address ("host:port")
// stays on this machine: a loopback IP or "localhost". An empty host
// (":8080") listens on every interface and is not loopback.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// LoopbackTarget reports whether every address of a caller.Dial target
// ("dns:///host:port", "static:///a:1,b:2", "a:1,b:2", "host:port",
// "unix:///path") stays on this machine.
func LoopbackTarget(target string) bool {
	rest := target
	if strings.Contains(target, "://") {
		u, err := url.Parse(target)
		if err != nil {
			return false
		}
		if strings.HasPrefix(u.Scheme, "unix") {
			return true
		}
		rest = strings.TrimPrefix(u.Path, "/")
		if u.Opaque != "" {
			rest = u.Opaque
		}
	} else if strings.HasPrefix(target, "unix:") {
		return true
	}
	if rest == "" {
		return false
	}
	for _, a := range strings.Split(rest, ",") {
		if !LoopbackAddr(strings.TrimSpace(a)) {
			return false
		}
	}
	return true
}

// PlaintextListenError is the one-line refusal to serve plaintext on an
// address other than loopback; how says what would allow it.
func PlaintextListenError(what, addr, how string) error {
	return fmt.Errorf("refusing to serve %s in plaintext on %s (not loopback): %s", what, addr, how)
}

// PlaintextDialError is the one-line refusal to reach a service in
// plaintext at a target other than loopback; how says what would allow
// it.
func PlaintextDialError(service, target, how string) error {
	return fmt.Errorf("refusing to reach service %s in plaintext at %s (not loopback): %s", service, target, how)
}

// ForTarget is cfg for dialling a caller.Dial target: when cfg names no
// server, a resolver target's host ("users" of "dns:///users:9000"), so
// that every address the name resolves to is checked against the name
// and not its IP. cfg itself is not changed.
func ForTarget(cfg *tls.Config, target string) *tls.Config {
	if cfg == nil || cfg.ServerName != "" || !strings.Contains(target, "://") {
		return cfg
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "static" || u.Scheme == "passthrough" || strings.HasPrefix(u.Scheme, "unix") {
		return cfg
	}
	host, _, err := net.SplitHostPort(strings.TrimPrefix(u.Path, "/"))
	if err != nil || host == "" {
		return cfg
	}
	cfg = cfg.Clone()
	cfg.ServerName = host
	return cfg
}
