package config

import "time"

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
	switch {
	case y.KeyEnv.Set && y.Key.Set:
		l.addf(e.at, "set key_env or key, not both")
	case y.KeyEnv.OK && y.KeyEnv.Set:
		s.Key, _ = l.envVar(y.KeyEnv)
	case y.Key.Set:
		s.Key = y.Key.V
	}
	return s
}
