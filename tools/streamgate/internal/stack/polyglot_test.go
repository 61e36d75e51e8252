package stack_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/streamgate/streamgate/services/run"
	"github.com/streamgate/streamgate/tools/streamgate/internal/stack"
)

func TestParseRuntimes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     map[string]string
		err      string
	}{
		{"empty: all in Go", "", map[string]string{}, ""},
		{"the mixed shop", "users=python,inventory=node", map[string]string{"users": "python", "inventory": "node"}, ""},
		{"go is always there", "orders=go, payments=go", map[string]string{"orders": "go", "payments": "go"}, ""},
		{"no such service in that language", "users=node", nil, "there is no users service in node (there are users=python and inventory=node"},
		{"orders in Python does not exist", "orders=python", nil, "there is no orders service in python"},
		{"unknown language", "users=rust", nil, "users=rust: want go, node or python"},
		{"unknown service", "carts=node", nil, `unknown service "carts"`},
		{"no =", "users", nil, `want SERVICE=go|node|python, not "users"`},
		{"twice", "users=python,users=go", nil, "users is named twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := stack.ParseRuntimes(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("ParseRuntimes(%q) = %v, %v; want the one-line error %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("ParseRuntimes(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("ParseRuntimes(%q) = %v; want %v", tc.in, got, tc.want)
				}
			}
		})
	}
}

// The Node and Python services have no SQLite store: a mixed stack on
// SQLite is refused before anything starts.
func TestMixedStackRefusesSQLite(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	err := stack.Run(ctx, stack.Options{ConfigPath: configPath, Store: run.StoreSQLite, DataDir: t.TempDir(),
		Runtimes: map[string]string{"inventory": stack.RuntimeNode}, Root: repoRoot})
	if err == nil || !strings.Contains(err.Error(), "use -store memory or -store postgres") {
		t.Fatalf("stack.Run = %v, want the refusal of SQLite", err)
	}
}

// syncBuffer is a log destination the stack's goroutines write to.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A service in Node that exits on its own stops the stack, which says so
// in one line with the service's last log line; what it logged on stderr
// is in the stack's log, named service=inventory.
func TestChildExitStopsTheStack(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not on PATH")
	}
	root := t.TempDir()
	script := filepath.Join(root, "services/node/shop/inventory.js")
	if err := os.MkdirAll(filepath.Dir(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// It serves (a socket that accepts and says nothing), logs, and dies
	// when the stack has connected to it.
	const dies = `import net from "node:net";
const srv = net.createServer((c) => {
  console.error(JSON.stringify({ level: "error", msg: "store lost", store: process.argv[7] }));
  process.exit(3);
});
srv.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ msg: "serving", addr: "127.0.0.1:" + srv.address().port })));
`
	if err := os.WriteFile(script, []byte(dies), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	err := stack.Run(ctx, stack.Options{
		ConfigPath: configPath, Store: run.StoreMemory, Root: root,
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		Runtimes: map[string]string{"inventory": stack.RuntimeNode},
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if ctx.Err() != nil {
		t.Fatalf("the stack ran on after its inventory exited: %v", err)
	}
	if err == nil || strings.Contains(err.Error(), "\n") ||
		!strings.HasPrefix(err.Error(), "service inventory (node) exited: exit status 3 (last log line: ") ||
		!strings.Contains(err.Error(), "store lost") {
		t.Fatalf("stack.Run = %v; want one line naming the service, its exit and its last words", err)
	}
	if want := `level=ERROR msg="store lost" service=inventory runtime=node store=memory`; !strings.Contains(logs.String(), want) {
		t.Fatalf("the stack's log has no %q:\n%s", want, logs.String())
	}
}
