package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/internal/envelope"
	"github.com/streamgate/streamgate/services/run"
	"github.com/streamgate/streamgate/services/socket/keyring"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCallAgainstARunningService(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	target := runService(t, ctx, run.Options{Service: "echo", Keys: []keyring.Key{{Name: "cli", Secret: "k"}}})

	cases := []struct {
		name   string
		args   []string
		status int
		want   string // in stdout
	}{
		{"ok", []string{"call", "-addr", target, "-key", "k", "-version", "v2", "echo", "ECHO", "7", `{"text":"Oska"}`}, 0, `"text": "Oska"`},
		{"bad key", []string{"call", "-addr", target, "-key", "nope", "echo", "ECHO"}, 1, `"code": "UNAUTHENTICATED"`},
		{"unknown action", []string{"call", "-addr", target, "-key", "k", "echo", "NOPE"}, 1, `"code": "NOT_FOUND"`},
		{"invalid JSON", []string{"call", "-addr", target, "-key", "k", "echo", "ECHO", "1", `{"text":`}, 2, ``},
		{"missing action", []string{"call", "-addr", target, "echo"}, 2, ``},
		{"unknown command", []string{"frobnicate"}, 2, ``},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			status := dispatch(ctx, tc.args, &out, &errOut)
			if status != tc.status {
				t.Fatalf("status %d, want %d; stdout %s stderr %s", status, tc.status, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Fatalf("stdout %s lacks %s", out.String(), tc.want)
			}
			if tc.status != 2 {
				var env envelope.Envelope
				if err := json.Unmarshal(out.Bytes(), &env); err != nil || env.OK != (tc.status == 0) {
					t.Fatalf("restAnswer %s: %v", out.String(), err)
				}
			}
		})
	}
}

// runService serves o on a fresh loopback port until the test ends and
// returns its address.
func runService(t *testing.T, ctx context.Context, o run.Options) string {
	t.Helper()
	addr := make(chan string, 1)
	served := make(chan error, 1)
	serveCtx, stop := context.WithCancel(ctx)
	o.Listen, o.Ready = "127.0.0.1:0", func(a string) { addr <- a }
	go func() { served <- run.Run(serveCtx, o) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	select {
	case a := <-addr:
		return a
	case err := <-served:
		served <- nil // for the cleanup
		t.Fatalf("%s did not start: %v", o.Service, err)
		return ""
	}
}

func TestServiceRejectsUnknownNames(t *testing.T) {
	var errOut bytes.Buffer
	if status := dispatch(context.Background(), []string{"service", "nope"}, &bytes.Buffer{}, &errOut); status != 2 || !strings.Contains(errOut.String(), "unknown service") {
		t.Fatalf("status %d, stderr %s", status, errOut.String())
	}
}

// A person asking for help gets the usage on stdout and exit status 0.
func TestHelp(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string // in stdout
	}{
		{"-h", []string{"-h"}, "streamgate stack"},
		{"--help", []string{"--help"}, "streamgate reconcile"},
		{"help", []string{"help"}, "streamgate gateway"},
		{"help stack", []string{"help", "stack"}, "-log-format"},
		{"stack -h", []string{"stack", "-h"}, "-pprof"},
		{"gateway --help", []string{"gateway", "--help"}, "-log-level"},
		{"gateway -h has -demo", []string{"gateway", "-h"}, "serve the live demo page at /demo/"},
		{"service -h", []string{"service", "-h"}, "-admin"},
		{"token -h", []string{"token", "-h"}, "-roles"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if status := dispatch(context.Background(), tc.args, &out, &errOut); status != 0 {
				t.Fatalf("status %d; stderr %s", status, errOut.String())
			}
			if !strings.Contains(out.String(), tc.want) || errOut.Len() != 0 {
				t.Fatalf("stdout lacks %q: %s; stderr %s", tc.want, out.String(), errOut.String())
			}
		})
	}
}

// Bad flags and values are one line on stderr and exit status 2; a port
// in use is one line and exit status 1, never the usage.
func TestOneLineErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, k := range []string{"STREAMGATE_ADMIN_KEY", "STREAMGATE_JWT_SECRET", "STREAMGATE_SERVICE_KEY"} {
		t.Setenv(k, "k")
	}
	config := filepath.Join("..", "..", "gateway", "example.yaml")
	cases := []struct {
		name   string
		args   []string
		status int
		want   string
	}{
		{"bad log format", []string{"gateway", "-config", config, "-log-format", "xml"}, 2, `invalid value "xml" for flag -log-format: want text or json`},
		{"bad log level", []string{"service", "echo", "-log-level", "loud"}, 2, `want debug, info, warn or error, not "loud"`},
		{"unknown flag", []string{"stack", "-nope"}, 2, "flag provided but not defined: -nope"},
		{"pprof without admin", []string{"service", "echo", "-pprof"}, 2, "-pprof needs -admin"},
		{"port in use", []string{"gateway", "-config", config, "-http", busy.Addr().String(), "-grpc", "127.0.0.1:0"}, 1,
			"streamgate: gateway: listen tcp " + busy.Addr().String() + ": bind: address already in use"},
		{"service port in use", []string{"service", "echo", "-listen", busy.Addr().String()}, 1, "address already in use"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			status := dispatch(context.Background(), tc.args, &out, &errOut)
			if status != tc.status {
				t.Fatalf("status %d, want %d; stderr %s", status, tc.status, errOut.String())
			}
			if lines := strings.Count(strings.TrimSpace(errOut.String()), "\n") + 1; lines != 1 || !strings.Contains(errOut.String(), tc.want) {
				t.Fatalf("stderr is not one line with %q: %s", tc.want, errOut.String())
			}
		})
	}
}

// lineSink passes what a command writes on, line by line.
type lineSink struct {
	mu    sync.Mutex // guards part
	part  string
	lines chan string
}

func (s *lineSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.part += string(p)
	for {
		line, rest, ok := strings.Cut(s.part, "\n")
		if !ok {
			return len(p), nil
		}
		s.lines <- line
		s.part = rest
	}
}

// waitLine returns the first line containing want.
func waitLine(t *testing.T, lines <-chan string, want string) string {
	t.Helper()
	for line := range lines {
		if strings.Contains(line, want) {
			return line
		}
	}
	t.Fatalf("no line with %q", want)
	return ""
}

// `streamgate service -admin` serves /healthz and /readyz (200 while
// serving), JSON logs with -log-format json, and no pprof without -pprof.
func TestServiceAdmin(t *testing.T) {
	t.Setenv("STREAMGATE_SERVICE_KEY", "svc-secret-key")
	out, errOut := &lineSink{lines: make(chan string, 100)}, &lineSink{lines: make(chan string, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- dispatch(ctx, []string{"service", "echo", "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-log-format", "json"}, out, errOut)
	}()
	admin := strings.Fields(waitLine(t, out.lines, "admin http://"))[1]
	serving := waitLine(t, errOut.lines, "service serving")
	var line map[string]any
	if err := json.Unmarshal([]byte(serving), &line); err != nil || line["service"] != "echo" {
		t.Fatalf("not a JSON log line: %s (%v)", serving, err)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/debug/pprof/": 404} {
		resp, err := http.Get(admin + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	waitLine(t, errOut.lines, "service drained")
	if status := <-done; status != 0 {
		t.Fatalf("status %d", status)
	}
}
