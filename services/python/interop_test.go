// Package python_test checks the Python runtime (services/python) from Go:
// it starts the Python conformance fixture with Debian's /usr/bin/python3
// and calls it with the real request library (caller.Dial). It skips when
// that Python or its grpcio is missing.
package python_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/status"
)

const (
	python  = "/usr/bin/python3"
	fixture = "examples/conformance.py"
	key     = "interop-key"
	wait    = 30 * time.Second // bounds the fixture's start and each step
)

// startFixture starts the Python fixture on a port of its choosing and
// returns its address; the process is stopped when the test ends.
func startFixture(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Skipf("the Python runtime needs %s (Debian's python3): %v", python, err)
	}
	if out, err := exec.Command(python, "-c", "import grpc, google.protobuf").CombinedOutput(); err != nil {
		t.Skipf("the Python runtime needs python3-grpcio and python3-protobuf: %v: %s", err, out)
	}
	cmd := exec.Command(python, fixture, "--addr", "127.0.0.1:0", "--key", key)
	cmd.Stderr = os.Stderr // its log lines, for a failing test
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				addr <- a
			}
		}
	}()
	select {
	case a := <-addr:
		return a
	case <-time.After(wait):
		t.Fatalf("the Python fixture did not say where it listens within %v", wait)
		return ""
	}
}

func dial(t *testing.T, addr string) *caller.Client {
	t.Helper()
	// The client's own coalescing is off: the service's is under test.
	c, err := caller.Dial(addr, caller.WithKey(key), caller.WithoutCoalescing(), caller.WithServiceName("conformance"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func decode[T any](t *testing.T, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return v
}

type stats struct {
	Runs      map[string]int `json:"runs"`
	Counters  map[string]int `json:"counters"`
	Cancelled int            `json:"cancelled"`
}

func TestGoClientCallsThePythonFixture(t *testing.T) {
	addr := startFixture(t)
	c := dial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	t.Run("ECHO", func(t *testing.T) {
		mctx := caller.ContextWithMeta(ctx, socket.Meta{APIVersion: "v2", RequestID: "req-1",
			Principal: socket.Principal{Subject: "u_1", Roles: []string{"admin"}}})
		res, err := c.Request(mctx, "ECHO", "7", map[string]any{"a": 1})
		if err != nil {
			t.Fatal(err)
		}
		type echo struct {
			ID   string         `json:"id"`
			Body map[string]int `json:"body"`
			Meta struct {
				APIVersion string   `json:"api_version"`
				Subject    string   `json:"subject"`
				Roles      []string `json:"roles"`
				RequestID  string   `json:"request_id"`
			} `json:"meta"`
		}
		got := decode[echo](t, res)
		if got.ID != "7" || got.Body["a"] != 1 || got.Meta.APIVersion != "v2" || got.Meta.Subject != "u_1" ||
			fmt.Sprint(got.Meta.Roles) != "[admin]" || got.Meta.RequestID != "req-1" {
			t.Fatalf("ECHO = %s", res)
		}
	})

	t.Run("unknown action", func(t *testing.T) {
		_, err := c.Request(ctx, "NOPE", "", nil)
		if status.CodeOf(err) != socket.CodeNotFound {
			t.Fatalf("NOPE: %v, want NOT_FOUND", err)
		}
	})

	t.Run("COUNT with a key twice is replayed", func(t *testing.T) {
		kctx := caller.ContextWithMeta(ctx, socket.Meta{IdempotencyKey: "interop-1"})
		first, err := c.Do(kctx, "COUNT", "", map[string]string{"name": "interop"})
		if err != nil {
			t.Fatal(err)
		}
		second, err := c.Do(kctx, "COUNT", "", map[string]string{"name": "interop"})
		if err != nil {
			t.Fatal(err)
		}
		if first.Replayed || !second.Replayed || string(first.Result) != string(second.Result) {
			t.Fatalf("first %s (replayed %v), second %s (replayed %v)", first.Result, first.Replayed, second.Result, second.Replayed)
		}
		_, err = c.Do(kctx, "COUNT", "", map[string]string{"name": "other"})
		if e := status.AsError(err); e.Code != socket.CodeConflict || e.Details[socket.DetailReason] != "idempotency_key_reused" {
			t.Fatalf("the key with another body: %v", err)
		}
		res, err := c.Request(ctx, "STATS", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := decode[stats](t, res).Counters["interop"]; n != 1 {
			t.Fatalf("counter interop = %d after a request and its replay, want 1", n)
		}
	})

	t.Run("PEEK coalescing", func(t *testing.T) {
		const n = 10
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				_, err := c.Request(ctx, "PEEK", "interop-peek", map[string]int{"ms": 300})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		res, err := c.Request(ctx, "STATS", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		runs := decode[stats](t, res).Runs["interop-peek"]
		t.Logf("%d identical concurrent PEEKs from Go: %d handler run(s) in Python", n, runs)
		if runs < 1 || runs >= n {
			t.Fatalf("%d identical concurrent PEEKs ran the handler %d times, want fewer than %d", n, runs, n)
		}
	})

	t.Run("PUBLISH and Subscribe", func(t *testing.T) {
		events := make(chan caller.Event, 16)
		stop, err := c.Subscribe(ctx, "interop/*", func(e caller.Event) { events <- e })
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		body := map[string]any{"topic": "interop/1", "count": 3, "data": "x", "visibility": map[string]bool{"public": true}}
		if _, err := c.Request(ctx, "PUBLISH", "", body); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 3; i++ {
			select {
			case e := <-events:
				want := fmt.Sprintf(`{"i":%d,"data":"x"}`, i)
				if e.Gap || e.Topic != "interop/1" || e.Seq != uint64(i) || string(e.Data) != want || !e.Visibility.Public {
					t.Fatalf("event %d = %+v (data %s), want seq %d data %s", i, e, e.Data, i, want)
				}
			case <-ctx.Done():
				t.Fatalf("event %d did not come", i)
			}
		}
	})
}
