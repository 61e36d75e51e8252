package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

func TestLoadCommand(t *testing.T) {
	var hits, withKey atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("X-API-Key") == "k" && r.Method == http.MethodPut {
			withKey.Add(1)
		}
		if strings.HasSuffix(r.URL.Path, "/5") {
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer ts.Close()
	dir := t.TempDir()
	jsonPath, svgPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.svg")
	var stdout, stderr bytes.Buffer
	code := dispatch(context.Background(), []string{"load", "-c", "3", "-duration", "1m", "-requests", "20", "-ids", "1-10",
		"-method", "put", "-H", "X-API-Key: k", "-body", `{"n":{id}}`, "-json", jsonPath, "-svg", svgPath, ts.URL + "/v1/users/{id}"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if hits.Load() != 20 || withKey.Load() != 20 {
		t.Fatalf("server saw %d requests, %d with the header and method", hits.Load(), withKey.Load())
	}
	out := stdout.String()
	for _, want := range []string{"PUT ", "20 in", "200: 18", "404: 2 (error)", "p99.9"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\r") {
		t.Errorf("a progress line on a non-terminal:\n%q", out)
	}
	var rep struct {
		Requests int64            `json:"requests"`
		Statuses map[string]int64 `json:"statuses"`
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil || json.Unmarshal(b, &rep) != nil || rep.Requests != 20 || rep.Statuses["404"] != 2 {
		t.Fatalf("json %s (%v)", b, err)
	}
	if b, err := os.ReadFile(svgPath); err != nil || !bytes.Contains(b, []byte("<polyline")) {
		t.Fatalf("svg %s (%v)", b, err)
	}
}

func TestLoadCommandRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no url", []string{"load"}, "want one URL"},
		{"ids", []string{"load", "-ids", "x", "http://127.0.0.1:1/"}, "ids"},
		{"rate", []string{"load", "-rate", "fast", "http://127.0.0.1:1/"}, "rate"},
		{"header", []string{"load", "-H", "nocolon", "http://127.0.0.1:1/"}, "Name: value"},
		{"remote", []string{"load", "http://192.0.2.7/"}, "loopback"},
		{"both bodies", []string{"load", "-body", "x", "-body-file", "f", "http://127.0.0.1:1/"}, "exclusive"},
		{"bench without subcommand", []string{"bench"}, "want compare"},
		{"bench unknown system", []string{"bench", "compare", "-systems", "direct,nginx"}, `unknown system "nginx"`},
		// The warn systems are known: the refusal is the later flag's.
		{"bench warn systems known", []string{"bench", "compare", "-systems", "streamgate-warn,streamgate-cache-warn", "-fixed-rate", "half"}, "-fixed-rate half needs direct among -systems"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := dispatch(context.Background(), tc.args, &stdout, &stderr)
			if code == 0 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want an error saying %q", code, stderr.String(), tc.want)
			}
		})
	}
}
