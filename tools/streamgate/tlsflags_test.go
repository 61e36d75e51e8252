package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/streamgate/streamgate/internal/tlsfiles"
	"github.com/streamgate/streamgate/internal/tlsfiles/tlstest"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/status"
)

// lines is a writer that hands each complete line to a function.
type lines struct {
	mu   sync.Mutex // guards buf and serializes calls to line
	buf  []byte
	line func(string)
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.line(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
}

// TestPlaintextRefusedInOneLine: off loopback without TLS, each command
// says why in one line (no usage) and exits 1; so does a TLS file that
// does not load.
func TestPlaintextRefusedInOneLine(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	yaml := "services: {echo: {target: \"127.0.0.1:1\"}}\nversions: {v1: {resources: {echoes: {service: echo, access: anonymous}}}}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STREAMGATE_SERVICE_KEY", "k")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"gateway", []string{"gateway", "-config", cfg, "-http", "0.0.0.0:0", "-grpc", "127.0.0.1:0"},
			"streamgate: gateway: refusing to serve REST in plaintext on 0.0.0.0:0 (not loopback): "},
		{"service", []string{"service", "echo", "-listen", ":0"},
			"streamgate: service: refusing to serve service echo in plaintext on :0 (not loopback): set -tls-cert and -tls-key, or allow it with -insecure-plaintext"},
		{"service call", []string{"service", "orders", "-store", "memory", "-inventory", "dns:///inventory:9000"},
			"streamgate: service: service orders: refusing to reach service inventory in plaintext at dns:///inventory:9000 (not loopback): "},
		{"stack", []string{"stack", "-http", "0.0.0.0:0", "-grpc", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-service-ports=false", "-store", "memory"},
			"streamgate: stack: refusing to serve REST in plaintext on 0.0.0.0:0 (not loopback): "},
		{"missing key file", []string{"gateway", "-config", cfg, "-tls-cert", cfg},
			"streamgate: gateway: -tls-cert, -tls-key, -tls-client-ca: TLS needs both a certificate and a key file"},
		{"bad CA file", []string{"service", "echo", "-service-tls-ca", cfg},
			"streamgate: service: -service-tls-*: " + cfg + ": no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if status := dispatch(context.Background(), tc.args, &out, &errOut); status != 1 {
				t.Fatalf("status %d, want 1; stderr %s", status, errOut.String())
			}
			// The stack's services log that they start (and drain) at the
			// default level before the gateway refuses: the error itself
			// is one line.
			var errLines []string
			for _, l := range strings.SplitAfter(errOut.String(), "\n") {
				if l != "" && !strings.HasPrefix(l, "time=") {
					errLines = append(errLines, l)
				}
			}
			if got := strings.Join(errLines, ""); !strings.HasPrefix(got, tc.want) || len(errLines) != 1 {
				t.Fatalf("stderr:\n%s\nwant one line starting %q", got, tc.want)
			}
		})
	}
}

// TestServiceFlagsMutualTLS: `service -tls-cert -tls-key -tls-client-ca`
// serves its socket over mutual TLS, on every interface without
// -insecure-plaintext; a client whose certificate another CA signed gets
// no stream.
func TestServiceFlagsMutualTLS(t *testing.T) {
	ca, other := tlstest.NewCA(t, "ca"), tlstest.NewCA(t, "other")
	cert, key := ca.Issue(t, "echo", "127.0.0.1")
	goodCert, goodKey := ca.Issue(t, "client")
	badCert, badKey := other.Issue(t, "intruder")
	t.Setenv("STREAMGATE_SERVICE_KEY", "k")
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	stderr := &lines{line: func(l string) {
		if _, rest, ok := strings.Cut(l, " addr="); ok && strings.Contains(l, `msg="service serving"`) {
			addrc <- strings.Fields(rest)[0]
		}
	}}
	done := make(chan int, 1)
	go func() {
		done <- dispatch(ctx, []string{"service", "echo", "-listen", "0.0.0.0:0", "-tls-cert", cert, "-tls-key", key, "-tls-client-ca", ca.File(t)}, &bytes.Buffer{}, stderr)
	}()
	var addr string
	select {
	case addr = <-addrc:
	case status := <-done:
		t.Fatalf("service exited %d", status)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("the service never said it was serving")
	}
	defer func() {
		cancel()
		if status := <-done; status != 0 {
			t.Errorf("service exited %d after its context ended", status)
		}
	}()
	addr = "127.0.0.1" + addr[strings.LastIndex(addr, ":"):]
	for _, tc := range []struct {
		name       string
		cert, key  string
		wantResult bool
	}{
		{"client signed by the CA", goodCert, goodKey, true},
		{"client signed by another CA", badCert, badKey, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tlsfiles.Client{CAFile: ca.File(t), CertFile: tc.cert, KeyFile: tc.key}.Config()
			if err != nil {
				t.Fatal(err)
			}
			c, err := caller.Dial(addr, caller.WithKey("k"), caller.WithGRPCDialOptions(grpc.WithTransportCredentials(credentials.NewTLS(cfg))))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			defer rcancel()
			res, err := c.Request(rctx, "ECHO", "1", map[string]string{"text": "over mTLS"})
			if tc.wantResult && (err != nil || !strings.Contains(string(res), "over mTLS")) {
				t.Fatalf("ECHO = %s, %v", res, err)
			}
			if !tc.wantResult && status.CodeOf(err) != socket.CodeUnavailable {
				t.Fatalf("ECHO = %s, %v; want UNAVAILABLE", res, err)
			}
		})
	}
}

// TestStackFromAnyDirectory: without -config and away from a checkout,
// the stack runs on the configuration built into the binary.
func TestStackFromAnyDirectory(t *testing.T) {
	t.Chdir(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	restc := make(chan string, 1)
	stdout := &lines{line: func(l string) {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "REST" {
			restc <- f[1]
		}
	}}
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- dispatch(ctx, []string{"stack", "-http", "127.0.0.1:0", "-grpc", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-service-ports=false", "-store", "memory"}, stdout, &stderr)
	}()
	var rest string
	select {
	case rest = <-restc:
	case status := <-done:
		t.Fatalf("stack exited %d: %s", status, stderr.String())
	}
	res, err := http.Get(rest + "/v1/items/nothing")
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		OK    bool
		Error struct{ Code string }
	}
	err = json.NewDecoder(res.Body).Decode(&env)
	res.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if err != nil || res.StatusCode != http.StatusNotFound || env.Error.Code != "NOT_FOUND" {
		t.Fatalf("GET /v1/items/nothing: %d %+v %v", res.StatusCode, env, err)
	}
	cancel()
	if status := <-done; status != 0 {
		t.Fatalf("stack exited %d: %s", status, stderr.String())
	}
}
