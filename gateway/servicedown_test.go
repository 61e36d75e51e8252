package gateway_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/gateway"
)

// When a service is down, its 503 names it (never its address), /readyz
// names it, and the gateway's log says at warn why its stream fails, with
// the address and the dial error.
func TestServiceDownIsNamed(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close() // nothing listens there now
	logs := newLogCapture()
	failing := logs.seen("socket: cannot open a stream to the service")
	gw := runGateway(t, healthYAML, map[string]*fakeService{"users": {Addr: dead}}, gateway.RunOptions{Logger: logs.Logger()})

	select {
	case <-failing:
	case <-time.After(20 * time.Second):
		t.Fatalf("no log line about the failing stream; log:\n%s", logs.String())
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "cannot open a stream") {
			line = l
			break
		}
	}
	for _, want := range []string{`"level":"WARN"`, `"service":"users"`, dead + `"`, `"error":`, "connection refused"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %s lacks %s", line, want)
		}
	}

	resp, err := http.Get("http://" + gw.addrs.HTTP + "/v1/users/1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "service users has no ready instance") {
		t.Errorf("GET with users down: %d %s; want 503 naming service users", resp.StatusCode, body)
	}
	_, port, _ := net.SplitHostPort(dead)
	if strings.Contains(string(body), dead) || strings.Contains(string(body), port) || strings.Contains(string(body), "dial") {
		t.Errorf("the answer carries an internal cause: %s", body)
	}

	resp, err = http.Get("http://" + gw.addrs.Admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"unready_services":["users"]`) || !strings.Contains(string(body), "no ready stream to users") {
		t.Errorf("/readyz with users down: %d %s; want 503 naming users", resp.StatusCode, body)
	}
}
