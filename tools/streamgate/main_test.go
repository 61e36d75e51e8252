package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/internal/envelope"
	"github.com/streamgate/streamgate/services/run"
	"github.com/streamgate/streamgate/services/socket"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCallAgainstARunningService(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addr := make(chan string, 1)
	served := make(chan error, 1)
	serveCtx, stop := context.WithCancel(ctx)
	go func() {
		served <- run.Run(serveCtx, run.Options{
			Service: "echo", Listen: "127.0.0.1:0",
			Keys:  []socket.Key{{Name: "cli", Secret: "k"}},
			Ready: func(a string) { addr <- a },
		})
	}()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()
	target := <-addr

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

func TestServiceRejectsUnknownNames(t *testing.T) {
	var errOut bytes.Buffer
	if status := dispatch(context.Background(), []string{"service", "nope"}, &bytes.Buffer{}, &errOut); status != 2 || !strings.Contains(errOut.String(), "unknown service") {
		t.Fatalf("status %d, stderr %s", status, errOut.String())
	}
}
