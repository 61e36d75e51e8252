package caller

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
)

// target is a parsed Dial target: either a fixed list of instance
// addresses, or a gRPC resolver that finds them.
type target struct {
	static  []string         // instance targets, when the list is fixed
	builder resolver.Builder // otherwise, the resolver that finds instances
	url     url.URL
}

// parseTarget understands:
//   - "dns:///users:9000" (and any other registered gRPC resolver scheme):
//     one stream to every address the name resolves to, re-resolved over time;
//   - "static:///127.0.0.1:9001,127.0.0.1:9002" or "host1:9001,host2:9002":
//     a fixed list of instances;
//   - "host:port", "passthrough:///host:port", "unix:///path": one instance.
func parseTarget(raw string) (target, error) {
	if raw == "" {
		return target{}, errors.New("socket: empty target")
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
			return target{}, fmt.Errorf("socket: target %q lists no addresses", raw)
		}
		return target{static: list}, nil
	}
	u, err := url.Parse(raw)
	if err == nil && u.Scheme != "" && u.Scheme != "passthrough" && !strings.HasPrefix(u.Scheme, "unix") {
		if b := resolver.Get(u.Scheme); b != nil {
			return target{builder: b, url: *u}, nil
		}
		return target{}, fmt.Errorf("socket: target %q: no resolver for scheme %q", raw, u.Scheme)
	}
	if err == nil && u.Scheme != "" {
		return target{static: []string{raw}}, nil
	}
	return target{static: []string{"passthrough:///" + raw}}, nil
}

// resolverConn receives a resolver's updates. It embeds the interface so
// that methods gRPC adds later compile; the resolvers built here only call
// the methods implemented below.
type resolverConn struct {
	resolver.ClientConn
	update func(addrs []string)
	report func(error)
}

func (r resolverConn) UpdateState(s resolver.State) error {
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
	r.update(slices.Compact(addrs))
	return nil
}

func (r resolverConn) ReportError(err error) { r.report(err) }

func (r resolverConn) NewAddress(addrs []resolver.Address) {
	_ = r.UpdateState(resolver.State{Addresses: addrs})
}

func (r resolverConn) ParseServiceConfig(string) *serviceconfig.ParseResult {
	return &serviceconfig.ParseResult{Err: errors.New("socket: service config is not used")}
}
