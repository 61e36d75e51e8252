package stack

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/streamgate/streamgate/services/run"
	"github.com/streamgate/streamgate/tools/internal/childproc"
)

// The languages a service of the stack can run in.
const (
	RuntimeGo     = "go"
	RuntimeNode   = "node"
	RuntimePython = "python"
)

// The shop's services, in the order the stack starts them.
var shopServices = []string{"users", "inventory", "orders", "payments"}

// Python is the interpreter of the Python services: Debian's, which has
// python3-grpcio and python3-protobuf (docs/protocol.md §13).
const Python = "/usr/bin/python3"

// polyglot is how each service that does not run in Go is started, by
// "service=runtime": the script under the repository's root, its flag
// spelling, and how it says where it listens (a stdout line; see
// services/node/README.md and services/python/README.md).
var polyglot = map[string]childSpec{
	"inventory=" + RuntimeNode: {
		script: "services/node/shop/inventory.js", flag: "-",
		serving: func(line string) string {
			var l struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "serving" {
				return l.Addr
			}
			return ""
		},
	},
	"users=" + RuntimePython: {
		script: "services/python/shop/users.py", flag: "--",
		serving: func(line string) string {
			addr, _ := strings.CutPrefix(line, "listening on ")
			return strings.TrimSpace(addr)
		},
	},
}

// childSpec says how to start one service in Node or Python.
type childSpec struct {
	script  string                   // under Options.Root
	flag    string                   // "-" (Node) or "--" (Python) before addr, key, store
	serving func(line string) string // the address a stdout line announces, or ""
}

// ParseRuntimes reads the -services flag, "users=python,inventory=node":
// each named service runs in that language, the others in Go. Only
// users=python and inventory=node (and go for any service) exist.
func ParseRuntimes(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, pair := range strings.Split(s, ",") {
		name, lang, ok := strings.Cut(strings.TrimSpace(pair), "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("-services: want SERVICE=go|node|python, not %q", pair)
		case !slices.Contains(shopServices, name):
			return nil, fmt.Errorf("-services: unknown service %q (the services are %s)", name, strings.Join(shopServices, ", "))
		case lang != RuntimeGo && lang != RuntimeNode && lang != RuntimePython:
			return nil, fmt.Errorf("-services: %s=%s: want go, node or python", name, lang)
		case out[name] != "":
			return nil, fmt.Errorf("-services: %s is named twice", name)
		}
		if _, exists := polyglot[name+"="+lang]; lang != RuntimeGo && !exists {
			return nil, fmt.Errorf("-services: there is no %s service in %s (there are users=python and inventory=node; any service may be go)", name, lang)
		}
		out[name] = lang
	}
	return out, nil
}

// childStore is the -store argument of a Node or Python service: they
// keep data in memory or in the stack's PostgreSQL. They have no SQLite
// store, and a stack that kept orders in SQLite but items in memory would
// lose half its data on a restart, so SQLite is refused.
func childStore(o Options) (string, error) {
	switch o.Store {
	case run.StoreMemory:
		return "memory", nil
	case run.StorePostgres:
		return o.DSN, nil
	}
	return "", fmt.Errorf("services in Node or Python keep data in memory or PostgreSQL only: use -store memory or -store postgres, not %s", o.Store)
}

// childReadyTimeout bounds a child's start (Node and Python load their
// gRPC libraries first).
const childReadyTimeout = 30 * time.Second

// childDrainTimeout is how long a child may drain after SIGTERM before it
// is killed: the gateway's own drain timeout.
const childDrainTimeout = 15 * time.Second

// child is a service running as a process of its own.
type child struct {
	name, lang string
	cmd        *exec.Cmd
	done       chan struct{} // closed when the process has exited
	err        error         // how it exited; read after done
	logs       sync.WaitGroup

	mu   sync.Mutex // guards last
	last string     // the last line it wrote to stderr, for its exit error
}

// startChild runs the service name in lang with the stack's key and
// store, forwards its stderr to log (service=NAME on every line), and
// returns once it has printed its address.
func startChild(name, lang, addr, key, store string, o Options) (*child, string, error) {
	spec := polyglot[name+"="+lang]
	script := filepath.Join(o.Root, spec.script)
	if _, err := os.Stat(script); err != nil {
		return nil, "", fmt.Errorf("service %s (%s): %s is missing: run the stack from a checkout of streamgate", name, lang, script)
	}
	bin := Python
	if lang == RuntimeNode {
		node, err := exec.LookPath("node")
		if err != nil {
			return nil, "", fmt.Errorf("service %s (node): node (Node.js ≥ 20) is not on PATH", name)
		}
		bin = node
	}
	f := spec.flag
	cmd := exec.Command(bin, script, f+"addr", addr, f+"key", key, f+"store", store)
	cmd.SysProcAttr = childAttrs()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("service %s (%s): %w", name, lang, err)
	}
	c := &child{name: name, lang: lang, cmd: cmd, done: make(chan struct{})}
	log := o.Logger.With("service", name, "runtime", lang)
	serving := make(chan string, 1)
	c.logs.Add(2)
	go func() {
		defer c.logs.Done()
		c.forward(stderr, log)
	}()
	go func() {
		defer c.logs.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 4096), 1<<20)
		announced := false
		for sc.Scan() {
			if !announced {
				if a := spec.serving(sc.Text()); a != "" {
					announced = true
					serving <- a
					continue
				}
			}
			forwardLine(log, sc.Text())
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		c.logs.Wait() // Wait closes the pipes: read them to the end first
		c.err = cmd.Wait()
		close(c.done)
	}()
	timer := time.NewTimer(childReadyTimeout)
	defer timer.Stop()
	select {
	case a := <-serving:
		return c, a, nil
	case <-c.done:
		return nil, "", c.exitError()
	case <-timer.C:
		_ = c.stop()
		return nil, "", fmt.Errorf("service %s (%s) did not print its address within %v", name, lang, childReadyTimeout)
	}
}

// forward logs each line of r.
func (c *child) forward(r io.Reader, log *slog.Logger) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		c.mu.Lock()
		c.last = line
		c.mu.Unlock()
		forwardLine(log, line)
	}
	_, _ = io.Copy(io.Discard, r)
}

// pythonLine is a line of Python's logging as the Python services write
// it: "2006-01-02 15:04:05,000 LEVEL rest".
var pythonLine = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) (.*)$`)

// pythonLevels are Python's logging levels as slog's.
var pythonLevels = map[string]slog.Level{"DEBUG": slog.LevelDebug, "INFO": slog.LevelInfo, "WARNING": slog.LevelWarn, "ERROR": slog.LevelError, "CRITICAL": slog.LevelError}

// forwardLine logs one line a child wrote: a JSON log line with its
// level, message and fields; a line of Python's logging with its level;
// any other line as the message.
func forwardLine(log *slog.Logger, line string) {
	var fields map[string]any
	if json.Unmarshal([]byte(line), &fields) != nil || fields == nil {
		if m := pythonLine.FindStringSubmatch(line); m != nil {
			log.Log(context.Background(), pythonLevels[m[1]], m[2])
			return
		}
		log.Info(line)
		return
	}
	msg, _ := fields["msg"].(string)
	level := slog.LevelInfo
	if s, ok := fields["level"].(string); ok {
		_ = level.UnmarshalText([]byte(strings.ToUpper(s)))
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		switch k {
		case "msg", "level", "time", "ts", "service":
		default:
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, fields[k])
	}
	log.Log(context.Background(), level, msg, args...)
}

// exitError says in one line that the child exited, and its last words.
func (c *child) exitError() error {
	c.mu.Lock()
	last := c.last
	c.mu.Unlock()
	how := "exited"
	if c.err != nil {
		how = "exited: " + c.err.Error()
	}
	if last != "" {
		const max = 300
		if len(last) > max {
			last = last[:max] + "…"
		}
		return fmt.Errorf("service %s (%s) %s (last log line: %s)", c.name, c.lang, how, last)
	}
	return fmt.Errorf("service %s (%s) %s", c.name, c.lang, how)
}

// stop drains the child (SIGTERM), kills it after childDrainTimeout, and
// reports an exit other than a clean one.
func (c *child) stop() error {
	select {
	case <-c.done:
		return c.exitError() // it had already gone
	default:
	}
	if childproc.Stop(c.cmd.Process, c.done, childDrainTimeout) {
		return fmt.Errorf("service %s (%s) did not exit within %v of SIGTERM: killed", c.name, c.lang, childDrainTimeout)
	}
	if c.err != nil {
		return c.exitError()
	}
	return nil
}

// stopChildren stops every child, the last started first, and joins what
// went wrong.
func stopChildren(children []*child) error {
	var errs []error
	for _, c := range slices.Backward(children) {
		errs = append(errs, c.stop())
	}
	return errors.Join(errs...)
}
