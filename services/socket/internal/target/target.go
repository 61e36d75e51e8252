// Package target parses the caller's Dial targets into either a fixed list
// of instance addresses or a gRPC resolver that finds them, and receives
// that resolver's updates as address lists.
//
//	t, err := target.Parse("dns:///users:9000")
//	if t.Static == nil {
//		res, err := t.Builder.Build(resolver.Target{URL: t.URL}, target.Conn{Update: set, Report: fail}, opts)
//	}
package target

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
)

// Target is a parsed Dial target: either a fixed list of instance
// addresses, or a gRPC resolver that finds them.
type Target struct {
	Static  []string         // instance targets, when the list is fixed
	Builder resolver.Builder // otherwise, the resolver that finds instances
	URL     url.URL          // what Builder resolves
}

// Parse understands:
//   - "dns:///users:9000" (and any other registered gRPC resolver scheme):
//     one stream to every address the name resolves to, re-resolved over time;
//   - "static:///127.0.0.1:9001,127.0.0.1:9002" or "host1:9001,host2:9002":
//     a fixed list of instances;
//   - "host:port", "passthrough:///host:port", "unix:///path": one instance.
func Parse(raw string) (Target, error) {
	if raw == "" {
		return Target{}, errors.New("socket: empty target")
	}
	if rest, ok := strings.CutPrefix(raw, "static:///"); ok || (strings.Contains(raw, ",") && !strings.Contains(raw, "://")) {
		if !ok {
			rest = raw
		}
		var list []string
		for _, a := range strings.Split(rest, ",") {
			if a = strings.TrimSpace(a); a != "" {
				list = append(list, "passthrough:///"+a)
			}
		}
		if len(list) == 0 {
			return Target{}, fmt.Errorf("socket: target %q lists no addresses", raw)
		}
		return Target{Static: list}, nil
	}
	u, err := url.Parse(raw)
	if err == nil && u.Scheme != "" && u.Scheme != "passthrough" && !strings.HasPrefix(u.Scheme, "unix") {
		if b := resolver.Get(u.Scheme); b != nil {
			return Target{Builder: b, URL: *u}, nil
		}
		return Target{}, fmt.Errorf("socket: target %q: no resolver for scheme %q", raw, u.Scheme)
	}
	if err == nil && u.Scheme != "" {
		return Target{Static: []string{raw}}, nil
	}
	return Target{Static: []string{"passthrough:///" + raw}}, nil
}

// Conn receives a resolver's updates: Update gets each new list of
// instance targets (sorted, without repeats), Report the resolver's
// errors. It embeds the interface so that methods gRPC adds later compile;
// the resolvers built here only call the methods implemented below.
type Conn struct {
	resolver.ClientConn
	Update func(addrs []string)
	Report func(error)
}

// UpdateState passes the state's addresses to Update.
func (r Conn) UpdateState(s resolver.State) error {
	var addrs []string
	for _, e := range s.Endpoints {
		for _, a := range e.Addresses {
			addrs = append(addrs, "passthrough:///"+a.Addr)
		}
	}
	if len(s.Endpoints) == 0 {
		for _, a := range s.Addresses {
			addrs = append(addrs, "passthrough:///"+a.Addr)
		}
	}
	slices.Sort(addrs)
	r.Update(slices.Compact(addrs))
	return nil
}

// ReportError passes err to Report.
func (r Conn) ReportError(err error) { r.Report(err) }

// NewAddress passes addrs to Update.
func (r Conn) NewAddress(addrs []resolver.Address) {
	_ = r.UpdateState(resolver.State{Addresses: addrs})
}

// ParseServiceConfig refuses service configs: none is used.
func (r Conn) ParseServiceConfig(string) *serviceconfig.ParseResult {
	return &serviceconfig.ParseResult{Err: errors.New("socket: service config is not used")}
}
