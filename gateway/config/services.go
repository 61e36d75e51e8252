package config

import (
	"net"
	"strings"

	"gopkg.in/yaml.v3"
)

// services reads the services the gateway reaches.
func (l *loader) services(n *yaml.Node, path string) map[string]*Service {
	out := map[string]*Service{}
	l.pairs(n, path, func(k, v *yaml.Node, p string) {
		if !isSegment(k.Value) {
			l.addf(k.Line, p, "service name must be %s", segmentRule)
		}
		// A service with problems is still listed, so that routes naming
		// it are not reported as naming an unknown service too.
		out[k.Value] = l.service(k, v, p)
	})
	return out
}

// service reads one service.
func (l *loader) service(k, n *yaml.Node, path string) *Service {
	s := &Service{Name: k.Value, Line: k.Line}
	if isNull(n) {
		l.addf(k.Line, path, "target is required")
		return s
	}
	f := l.fields(n, path, "target", "key_env", "key", "timeout")
	if f == nil {
		return s
	}
	if v := f["target"]; v != nil {
		s.Target = l.target(v, join(path, "target"))
	} else {
		l.addf(k.Line, path, "target is required")
	}
	switch env, key := f["key_env"], f["key"]; {
	case env != nil && key != nil:
		l.addf(k.Line, path, "set key_env or key, not both")
	case env != nil:
		s.Key, _ = l.envVar(env, join(path, "key_env"))
	case key != nil:
		s.Key, _ = l.name(key, join(path, "key"))
	}
	if v := f["timeout"]; v != nil {
		s.Timeout, _ = l.duration(v, join(path, "timeout"), true)
	}
	return s
}

// target reads a socket.Dial target: a string as it is, or a list of
// "host:port" addresses as "static:///a,b".
func (l *loader) target(n *yaml.Node, path string) string {
	if deref(n).Kind != yaml.SequenceNode {
		s, _ := l.name(n, path)
		return s
	}
	var addrs []string
	l.items(n, path, func(_ int, v *yaml.Node, p string) {
		a, ok := l.name(v, p)
		if !ok {
			return
		}
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" || strings.ContainsAny(a, ", \t") {
			l.addf(deref(v).Line, p, `expected an address such as "users:9000", got %q`, a)
			return
		}
		addrs = append(addrs, a)
	})
	if len(deref(n).Content) == 0 {
		l.addf(deref(n).Line, path, "lists no addresses")
	}
	if len(addrs) == 0 {
		return ""
	}
	return "static:///" + strings.Join(addrs, ",")
}
