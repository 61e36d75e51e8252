package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStackCommand runs README's first command as a subprocess (built
// once, on free ports), waits for "ready", calls the gateway, and stops it
// with Ctrl-C.
func TestStackCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "streamgate")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "stack", "-http", "127.0.0.1:0", "-grpc", "127.0.0.1:0", "-admin", "127.0.0.1:0",
		"-config", filepath.Join("..", "..", "gateway", "example.yaml"))
	cmd.Env = append(os.Environ(), "STREAMGATE_ADMIN_KEY=stack-admin-key")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	var rest, admin string
	for lines.Scan() {
		line := lines.Text()
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "REST" {
			rest = f[1]
		}
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "admin" && strings.HasPrefix(f[1], "http") {
			admin = f[1]
		}
		if line == "ready" {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if rest == "" || admin == "" {
		t.Fatalf("no addresses before ready (REST %q, admin %q)", rest, admin)
	}
	req, _ := http.NewRequest("POST", rest+"/v1/notes", strings.NewReader(`{"text":"from the stack"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer stack-admin-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		OK     bool           `json:"ok"`
		Result map[string]any `json:"result"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&env)
	resp.Body.Close()
	if resp.StatusCode != 201 || !env.OK || env.Result["text"] != "from the stack" {
		t.Fatalf("create through the stack: %d %+v", resp.StatusCode, env)
	}
	if r, err := http.Get(admin + "/readyz"); err != nil || r.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", r, err)
	} else {
		r.Body.Close()
	}
	http.DefaultClient.CloseIdleConnections()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("stack did not exit 0 after Ctrl-C: %v", err)
	}
}
