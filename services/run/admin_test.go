package run_test

import (
	"context"
	"testing"
	"time"

	"github.com/streamgate/streamgate/internal/promtest"
	"github.com/streamgate/streamgate/services/run"
	"github.com/streamgate/streamgate/services/socket/caller"
)

// A service with an admin listener serves its metrics at /metrics, under
// its service label, with the Go runtime's.
func TestAdminServesMetrics(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready, admin := make(chan string, 1), make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run.Run(ctx, run.Options{
			Service: "echo", Listen: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", WithoutAuth: true,
			Ready:      func(addr string) { ready <- addr },
			AdminReady: func(addr string) { admin <- addr },
		})
	}()
	var addr, adminAddr string
	for addr == "" || adminAddr == "" {
		select {
		case addr = <-ready:
		case adminAddr = <-admin:
		case err := <-done:
			t.Fatal(err)
		}
	}
	c, err := caller.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	if _, err := c.Request(rctx, "ECHO", "1", []byte(`{"text":"hi"}`)); err != nil {
		t.Fatal(err)
	}
	m := promtest.Scrape(t, "http://"+adminAddr+"/metrics")
	if got := m.Value("streamgate_service_frames_total", "service", "echo", "action", "ECHO", "code", "OK"); got != 1 {
		t.Errorf("ECHO frames = %v, want 1", got)
	}
	if !m.Has("go_goroutines") {
		t.Error("no Go runtime metrics")
	}
	_ = c.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
