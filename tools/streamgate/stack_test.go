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
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streamgate/streamgate/tools/internal/polyglottest"
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
	// From the repository's root, as README says, with its defaults
	// (gateway/stack.yaml, SQLite) but free ports and a fresh data dir.
	args := []string{"stack", "-http", "127.0.0.1:0", "-grpc", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-data", t.TempDir()}
	if polyglottest.On(t, filepath.Join("..", "..")) {
		// The mixed shop, as README's paragraph on it says (memory: the
		// Node and Python services have no SQLite store).
		args = append(args, "-services", polyglottest.Services, "-store", "memory")
	}
	// On NATS as README's "On NATS" says, when the stack's tests run there.
	natsSpec := os.Getenv("STREAMGATE_TEST_STACK_NATS")
	if natsSpec != "" && os.Getenv(polyglottest.Env) != "1" {
		args = append(args, "-nats", natsSpec)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = filepath.Join("..", "..")
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
	var rest, admin, tryURL, secret, natsLine string
	for lines.Scan() {
		line := lines.Text()
		if strings.HasPrefix(line, "NATS ") {
			natsLine = line
		}
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "REST" {
			rest = f[1]
			for i, w := range f[:len(f)-1] {
				if w == "(try" {
					tryURL = strings.TrimSuffix(f[i+1], ":")
				}
			}
		}
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "JWT" && f[1] == "secret" {
			secret = f[2]
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
	if slices.Contains(args, "-nats") && natsLine == "" {
		t.Fatalf("-nats %s: no NATS line before ready", natsSpec)
	}
	// The admin creates an item; anyone reads it back.
	req, err := http.NewRequest("POST", rest+"/v1/items", strings.NewReader(`{"id":"cli-widget","name":"widget","price_cents":1250,"stock":3}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer stack-admin-key")
	if status, env := send(t, req); status != http.StatusCreated || !env.OK || env.Result["id"] != "cli-widget" {
		t.Fatalf("create an item through the stack: %d %+v", status, env)
	}
	req, err = http.NewRequest("GET", rest+"/v1/items/cli-widget", nil)
	if err != nil {
		t.Fatal(err)
	}
	if status, env := send(t, req); status != http.StatusOK || !env.OK || env.Result["name"] != "widget" || env.Result["price_cents"] != 1250.0 {
		t.Fatalf("read the item anonymously: %d %+v", status, env)
	}
	// The banner's suggested URL answers without a key.
	if r, err := http.Get(tryURL); err != nil || r.StatusCode != 200 {
		t.Fatalf("the banner's URL %q: %v %v", tryURL, r, err)
	} else {
		r.Body.Close()
	}
	// The JWT secret it printed mints tokens the stack accepts.
	tokenCmd := exec.CommandContext(ctx, bin, "token", "bob")
	tokenCmd.Env = append(os.Environ(), "STREAMGATE_JWT_SECRET="+secret)
	tok, err := tokenCmd.Output()
	if err != nil || secret == "" {
		t.Fatalf("token with the printed secret %q: %v", secret, err)
	}
	req, err = http.NewRequest("GET", rest+"/v1/orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	if status, env := send(t, req); status != http.StatusOK || !env.OK {
		t.Fatalf("bob's orders with a token minted from the printed secret: %d %+v", status, env)
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

// restAnswer is the REST edge's answer.
type restAnswer struct {
	OK     bool           `json:"ok"`
	Result map[string]any `json:"result"`
	Error  map[string]any `json:"error"`
}

// send does req and decodes the restAnswer.
func send(t *testing.T, req *http.Request) (int, restAnswer) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env restAnswer
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("%s %s: %d, not an restAnswer: %v", req.Method, req.URL, resp.StatusCode, err)
	}
	return resp.StatusCode, env
}
