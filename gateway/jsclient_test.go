package gateway_test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestJSClientResumes runs the JavaScript client's resume tests
// (gateway/client/js/test/jetstream) against two gateways reading events
// from JetStream, in front of one service on NATS.
func TestJSClientResumes(t *testing.T) {
	bin, flags := nodeBinary(t)
	windows := "  windows:\n    - {prefix: orders/tiny, max_bytes: 1024}\n    - {prefix: orders/j1}\n"
	shop := startEventsShop(t, eventsNATS(t), windows)
	shop.yaml = strings.Replace(shop.yaml, "crud: [get]}", "crud: [get, update]}", 1)
	_, ts1 := shop.gateway(t)
	_, ts2 := shop.gateway(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(flags, "--test", "--test-reporter=spec", "test/jetstream/resume.test.js")...)
	cmd.Dir = "client/js"
	cmd.Env = append(os.Environ(),
		"STREAMGATE_EVENTS_URL="+ts1.URL,
		"STREAMGATE_EVENTS_URL2="+ts2.URL,
		"STREAMGATE_ADMIN_KEY="+adminKey,
		"NO_COLOR=1",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	if m := regexp.MustCompile(`(?m)^ℹ pass (\d+)`).FindSubmatch(out); m == nil || string(m[1]) != "2" || regexp.MustCompile(`(?m)^ℹ skipped [1-9]`).Match(out) {
		t.Fatalf("want 2 tests passed, none skipped:\n%s", out)
	}
}

// nodeBinary returns node (≥ 20) and the flags it needs for a global
// WebSocket, or skips the test.
func nodeBinary(t *testing.T) (string, []string) {
	t.Helper()
	bin, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH: the JavaScript client's tests need node ≥ 20")
	}
	out, err := exec.Command(bin, "-p", "process.versions.node.split('.')[0] + ' ' + typeof WebSocket").Output()
	if err != nil {
		t.Fatalf("node -p: %v", err)
	}
	f := strings.Fields(string(out))
	if major, _ := strconv.Atoi(f[0]); major < 20 {
		t.Skipf("node %s is older than 20", f[0])
	}
	if len(f) > 1 && f[1] == "function" {
		return bin, nil
	}
	return bin, []string{"--experimental-websocket"}
}
