// Package node_test checks the Node.js runtime (services/node) from Go:
// the real request library dials the Node conformance fixture.
package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/status"
)

const interopKey = "interop-key"

// startFixture runs examples/conformance.js on a free port and returns its
// address; the process is stopped (SIGTERM, then waited for) at cleanup.
func startFixture(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH: the Node runtime's interop test needs Node.js 20")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "@grpc", "grpc-js")); err != nil {
		t.Skip("services/node/node_modules is missing: run `npm ci` in services/node")
	}
	cmd := exec.Command(node, "examples/conformance.js", "-addr", "127.0.0.1:0", "-key", interopKey)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" {
				addr <- line.Addr
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("the fixture exited with %v after SIGTERM", err)
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("the fixture did not exit within 20s of SIGTERM")
		}
	})
	select {
	case a := <-addr:
		return a
	case err := <-exited:
		t.Fatalf("the fixture exited before serving: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the fixture did not start serving within 30s")
	}
	return ""
}

func TestGoClientAgainstNodeFixture(t *testing.T) {
	addr := startFixture(t)
	c, err := caller.Dial(addr, caller.WithKey(interopKey))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("ECHO", func(t *testing.T) {
		mctx := caller.ContextWithMeta(ctx, socket.Meta{APIVersion: "v2", Principal: socket.Principal{Subject: "u1", Roles: []string{"admin"}}, RequestID: "r-1"})
		var got struct {
			ID   string         `json:"id"`
			Body map[string]any `json:"body"`
			Meta struct {
				APIVersion string   `json:"api_version"`
				Subject    string   `json:"subject"`
				Roles      []string `json:"roles"`
				RequestID  string   `json:"request_id"`
			} `json:"meta"`
		}
		res, err := c.Request(mctx, "ECHO", "7", map[string]any{"a": 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(res, &got); err != nil {
			t.Fatal(err)
		}
		if got.ID != "7" || got.Body["a"] != float64(1) || got.Meta.APIVersion != "v2" || got.Meta.Subject != "u1" ||
			len(got.Meta.Roles) != 1 || got.Meta.RequestID != "r-1" {
			t.Fatalf("ECHO answered %s", res)
		}
	})

	t.Run("errors", func(t *testing.T) {
		_, err := c.Request(ctx, "FAIL", "", map[string]any{"code": "FAILED_PRECONDITION", "message": "no", "reason": "card_declined"})
		var se *status.Error
		if !errors.As(err, &se) || se.Code != socket.CodeFailedPrecondition || se.Details["reason"] != "card_declined" {
			t.Fatalf("FAIL answered %v", err)
		}
		_, err = c.Request(ctx, "NO_SUCH_ACTION", "", nil)
		if status.CodeOf(err) != socket.CodeNotFound {
			t.Fatalf("an unknown action answered %v", err)
		}
	})

	t.Run("COUNT keyed", func(t *testing.T) {
		kctx := caller.ContextWithMeta(ctx, socket.Meta{IdempotencyKey: "interop-1"})
		first, err := c.Do(kctx, "COUNT", "", map[string]any{"name": "interop"})
		if err != nil {
			t.Fatal(err)
		}
		again, err := c.Do(kctx, "COUNT", "", map[string]any{"name": "interop"})
		if err != nil {
			t.Fatal(err)
		}
		if string(first.Result) != `{"name":"interop","value":1}` || first.Replayed ||
			string(again.Result) != string(first.Result) || !again.Replayed {
			t.Fatalf("COUNT answered %s (replayed %v), then %s (replayed %v)", first.Result, first.Replayed, again.Result, again.Replayed)
		}
	})

	t.Run("PEEK coalesced", func(t *testing.T) {
		const n = 10
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := c.Request(ctx, "PEEK", "interop-peek", map[string]any{"ms": 300})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		var stats struct {
			Runs map[string]int `json:"runs"`
		}
		res, err := c.Request(ctx, "STATS", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(res, &stats); err != nil {
			t.Fatal(err)
		}
		runs := stats.Runs["interop-peek"]
		t.Logf("%d identical concurrent PEEKs from the Go client: %d handler runs", n, runs)
		if runs < 1 || runs >= n {
			t.Fatalf("%d identical concurrent PEEKs ran %d times", n, runs)
		}
	})

	t.Run("PUBLISH and Subscribe", func(t *testing.T) {
		events := make(chan caller.Event, 16)
		stop, err := c.Subscribe(ctx, "interop/*", func(e caller.Event) { events <- e })
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		if _, err := c.Request(ctx, "PUBLISH", "", map[string]any{"topic": "interop/1", "count": 3, "data": "x", "visibility": map[string]any{"public": true}}); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 3; i++ {
			select {
			case e := <-events:
				want := `{"i":` + string(rune('0'+i)) + `,"data":"x"}`
				if e.Topic != "interop/1" || e.Seq != uint64(i) || e.Gap || strings.ReplaceAll(string(e.Data), " ", "") != want || !e.Visibility.Public {
					t.Fatalf("event %d: %+v (data %s)", i, e, e.Data)
				}
			case <-ctx.Done():
				t.Fatalf("event %d did not come", i)
			}
		}
	})
}
