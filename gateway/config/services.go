package config

import (
	"net/url"
	"time"
)

// services checks the services the gateway reaches.
func (l *loader) services(es entries[yamlService], tlsDef *yamlLinkTLS) map[string]*Service {
	out := map[string]*Service{}
	def := l.files.linkTLS(tlsDef, &yamlLinkTLS{})
	for _, e := range es {
		if !isSegment(e.Key) {
			l.addf(e.at, "service name must be %s", segmentRule)
		}
		// A service with problems is still listed, so that routes naming
		// it are not reported as naming an unknown service too.
		out[e.Key] = l.service(e, tlsDef, def)
	}
	return out
}

// service checks one service; def is service_tls as written and as
// loaded.
func (l *loader) service(e entry[yamlService], tlsDef *yamlLinkTLS, def *LinkTLS) *Service {
	y := e.V
	s := &Service{Name: e.Key, Line: e.line(), Target: string(y.Target.V), Timeout: time.Duration(y.Timeout.V), Plaintext: y.Plaintext.V}
	switch {
	case y.KeyEnv.Set && y.Key.Set:
		l.addf(e.at, "set key_env or key, not both")
	case y.KeyEnv.OK && y.KeyEnv.Set:
		s.Key, _ = l.envVar(y.KeyEnv)
	case y.Key.Set:
		s.Key = y.Key.V
	}
	if l.transport(s, y) {
		return s
	}
	switch {
	case y.Plaintext.V && y.TLS.At.found():
		l.addf(y.Plaintext.at, "set tls or plaintext: true, not both")
	case y.Plaintext.V:
	case y.TLS.At.found():
		s.TLS = l.files.linkTLS(tlsDef, &y.TLS)
	default:
		s.TLS = def
	}
	if e.Null || (y.At.found() && !y.Target.Set) {
		l.addf(e.at, "target is required")
	}
	return s
}

// transport checks a service's transport and nats_url, and reports
// whether it is reached over NATS (which takes no TLS files: a tls://
// URL).
func (l *loader) transport(s *Service, y yamlService) bool {
	switch {
	case !y.Transport.Set || y.Transport.V == TransportStream:
		if y.NATSURL.Set {
			l.addf(y.NATSURL.at, "nats_url needs transport: %s", TransportNATS)
		}
		return false
	case y.Transport.V != TransportNATS:
		l.addf(y.Transport.at, "expected %s or %s, got %q", TransportStream, TransportNATS, y.Transport.V)
		return false
	}
	s.Transport = TransportNATS
	if s.Target == "" {
		s.Target = s.Name
	}
	if y.TLS.At.found() {
		l.addf(y.TLS.At, "a service on NATS takes TLS from nats_url (tls://)")
	}
	if !y.NATSURL.Set {
		l.addf(y.Transport.at, "transport: %s needs nats_url", TransportNATS)
		return true
	}
	s.NATSURL = natsURL(l.problems, y.NATSURL)
	return true
}

// natsURL checks a NATS server's URL (nats:// or tls://); "" when it is
// not one.
func natsURL(ps *problems, v val[string]) string {
	u, err := url.Parse(v.V)
	if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
		// The URL may hold a password: the message does not repeat it.
		ps.addf(v.at, `expected a URL such as "nats://127.0.0.1:4222"`)
		return ""
	}
	return v.V
}
