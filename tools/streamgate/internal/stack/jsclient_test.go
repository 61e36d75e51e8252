package stack_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/tools/streamgate/internal/stack"
)

// jsClientDir is the JavaScript client's directory.
const jsClientDir = "../../../../gateway/client/js"

// nodeTimeout bounds one run of the JavaScript client's tests.
const nodeTimeout = 3 * time.Minute

// node returns the node binary and the flags it needs for a global
// WebSocket, or skips the test.
func node(t *testing.T) (string, []string) {
	t.Helper()
	bin, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH: the JavaScript client's tests (gateway/client/js) need node ≥ 20")
	}
	out, err := exec.Command(bin, "-p", "process.versions.node.split('.')[0] + ' ' + typeof WebSocket").Output()
	if err != nil {
		t.Fatalf("node -p: %v", err)
	}
	f := strings.Fields(string(out))
	if major, _ := strconv.Atoi(f[0]); major < 20 {
		t.Skipf("node %s is older than 20: the JavaScript client needs node ≥ 20", f[0])
	}
	if len(f) > 1 && f[1] == "function" {
		return bin, nil
	}
	return bin, []string{"--experimental-websocket"} // node 20: WebSocket behind a flag
}

// TestJSClient runs the JavaScript client's tests (node's test runner)
// against a real stack: the gateway's WebSocket endpoint and the shop.
func TestJSClient(t *testing.T) {
	bin, flags := node(t)
	files, err := filepath.Glob(filepath.Join(jsClientDir, "test", "*.test.js"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no tests under %s/test: %v", jsClientDir, err)
	}
	for i, f := range files {
		files[i] = filepath.Join("test", filepath.Base(f))
	}
	s := startStack(t, stack.Options{})

	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(append(flags, "--test", "--test-reporter=spec"), files...)...)
	cmd.Dir = jsClientDir
	cmd.Env = append(os.Environ(),
		"STREAMGATE_URL="+s.rest.Base,
		"STREAMGATE_ADMIN_KEY="+admin(),
		"STREAMGATE_USER=js-alice",
		"STREAMGATE_USER_TOKEN="+as(t, "js-alice"),
		"STREAMGATE_OTHER_TOKEN="+as(t, "js-bob"),
		"NO_COLOR=1",
	)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("node --test did not finish within %v:\n%s", nodeTimeout, out)
	}
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	t.Logf("node --test:\n%s", out)
	if m := passed.FindSubmatch(out); m == nil || string(m[1]) == "0" || skipped.Match(out) {
		t.Fatalf("node passed no test, or skipped some:\n%s", out)
	}
}

// passed and skipped find node's summary lines (spec reporter).
var (
	passed  = regexp.MustCompile(`(?m)^\S*\s*pass (\d+)\s*$`)
	skipped = regexp.MustCompile(`(?m)^\S*\s*skipped [1-9]\d*\s*$`)
)
