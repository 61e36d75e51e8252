package stack

import (
	"os"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/gateway/config"
)

// The stack's configuration on NATS: every service on the server, its
// stream settings gone, redis set in place of redis_env; what else the
// file says stays, comments too.
func TestRewriteConfig(t *testing.T) {
	stackYAML, err := os.ReadFile("../../../../gateway/stack.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in := append(append([]byte{}, stackYAML...), "\nredis_env: SOMEWHERE\n"...)
	out, err := rewriteConfig(in, shared{natsURL: "nats://127.0.0.1:4222", redisURL: "redis://127.0.0.1:6379/3"})
	if err != nil {
		t.Fatal(err)
	}
	env := func(string) string { return "x" }
	cfg, err := config.Parse("stack.yaml", out, env)
	if err != nil {
		t.Fatalf("the rewritten configuration does not load: %v\n%s", err, out)
	}
	for name, svc := range cfg.Services {
		if svc.Transport != config.TransportNATS || svc.NATSURL != "nats://127.0.0.1:4222" || svc.Target != name {
			t.Errorf("service %s: transport %q at %q, target %q", name, svc.Transport, svc.NATSURL, svc.Target)
		}
	}
	if len(cfg.Services) != 4 {
		t.Errorf("%d services, want the shop's 4", len(cfg.Services))
	}
	if cfg.Events == nil || cfg.Events.NATSURL != "nats://127.0.0.1:4222" || len(cfg.Events.Windows) == 0 {
		t.Errorf("events %+v; want them read from the stack's NATS, a window per resource", cfg.Events)
	}
	if cfg.Redis != "redis://127.0.0.1:6379/3" || strings.Contains(string(out), "redis_env") {
		t.Errorf("redis %q; redis_env left: %v", cfg.Redis, strings.Contains(string(out), "redis_env"))
	}
	orig, err := config.Parse("stack.yaml", stackYAML, env)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Versions) != len(orig.Versions) || !strings.Contains(string(out), "# A purchase (POST /vN/orders/{id}/pay)") {
		t.Error("the versions or the comments did not stay")
	}

	for _, bad := range []string{"- a list\n", "services: [users]\n", "services:\n  users: users\n"} {
		if _, err := rewriteConfig([]byte(bad), shared{natsURL: "nats://127.0.0.1:4222"}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestShiftPort(t *testing.T) {
	for _, tc := range []struct {
		addr string
		k    int
		want string
		err  bool
	}{
		{"127.0.0.1:8080", 0, "127.0.0.1:8080", false},
		{"127.0.0.1:8080", 1, "127.0.0.1:8180", false},
		{"127.0.0.1:9090", 3, "127.0.0.1:9390", false},
		{"127.0.0.1:0", 2, "127.0.0.1:0", false},
		{"", 1, "", false},
		{"[::1]:8081", 1, "[::1]:8181", false},
		{"127.0.0.1:65500", 1, "", true},
		{"localhost", 1, "", true},
	} {
		got, err := shiftPort(tc.addr, tc.k)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("shiftPort(%q, %d) = %q, %v; want %q, error %v", tc.addr, tc.k, got, err, tc.want, tc.err)
		}
	}
}
