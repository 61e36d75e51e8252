// Package polyglottest says whether the tests of a run are against the
// mixed shop (`streamgate stack -services users=python,inventory=node`)
// and skips them when this machine cannot run it.
//
//	if polyglottest.On(t, "../..") { args = append(args, "-services", polyglottest.Services) }
package polyglottest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Env set to 1 runs the stack's tests against the mixed shop; .ci/run
// runs the stack's test packages a second time with it.
const Env = "STREAMGATE_TEST_POLYGLOT"

// Services is the mixed shop's -services flag.
const Services = "users=python,inventory=node"

// Python is the interpreter the Python services run on.
const Python = "/usr/bin/python3"

// On says whether this run is against the mixed shop; when it is, it
// skips t if Node, Debian's Python with grpcio, or the services' code
// under root (the checkout) is missing.
func On(t testing.TB, root string) bool {
	t.Helper()
	if os.Getenv(Env) != "1" {
		return false
	}
	if why := missing(root); why != "" {
		t.Skipf("%s=1, but %s", Env, why)
	}
	return true
}

// GoOnly skips t in a run against the mixed shop: it checks what only
// the Go services do (why says what).
func GoOnly(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(Env) == "1" {
		t.Skipf("%s=1: %s", Env, why)
	}
}

// missing says what the mixed shop needs and this machine lacks, or "".
func missing(root string) string {
	if _, err := exec.LookPath("node"); err != nil {
		return "node is not on PATH (the Node inventory needs Node.js 20)"
	}
	if _, err := os.Stat(filepath.Join(root, "services/node/node_modules/@grpc/grpc-js")); err != nil {
		return "services/node/node_modules is missing (run `npm ci` in services/node)"
	}
	if out, err := exec.Command(Python, "-c", "import grpc, google.protobuf").CombinedOutput(); err != nil {
		return fmt.Sprintf("%s cannot import grpc and google.protobuf (apt-get install python3-grpcio python3-protobuf): %v: %s", Python, err, bytes.TrimSpace(out))
	}
	for _, script := range []string{"services/node/shop/inventory.js", "services/python/shop/users.py"} {
		if _, err := os.Stat(filepath.Join(root, script)); err != nil {
			return script + " is missing"
		}
	}
	return ""
}
