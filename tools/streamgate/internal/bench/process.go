package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/streamgate/streamgate/tools/internal/childproc"
)

// readyTimeout bounds how long a server may take to start listening.
const readyTimeout = 30 * time.Second

// stopTimeout bounds a server's drain after SIGTERM; then it is killed.
const stopTimeout = 10 * time.Second

// process is one running server.
type process struct {
	role string // "gateway", "service" or "server"
	cmd  *exec.Cmd
	addr string
	in   io.WriteCloser // its stdin (bench fanout's server reads commands there)
	out  *lineWatcher
	errs *tail
	done chan struct{} // closed when the process has exited
	err  error         // how it exited; read after done
}

// startProcess runs command plus args with env added and waits for its
// "ready ADDR" line.
func startProcess(command []string, env []string, role string, args ...string) (*process, error) {
	cmd := exec.Command(command[0], append(append([]string(nil), command[1:]...), args...)...)
	cmd.Env = append(os.Environ(), env...)
	p := &process{role: role, cmd: cmd, out: newLineWatcher("ready "), errs: &tail{max: 4096}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.errs
	cmd.SysProcAttr = dieWithParent()
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	p.in = in
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case addr := <-p.out.found:
		p.addr = addr
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s %s exited before it was ready (%w): %s", role, strings.Join(args, " "), p.err, p.errs)
	case <-timer.C:
		_ = p.stop()
		return nil, fmt.Errorf("%s %s was not ready within %v: %s", role, strings.Join(args, " "), readyTimeout, p.errs)
	}
}

// stop ends the process with SIGTERM (SIGKILL after stopTimeout) and
// reports an unclean exit.
func (p *process) stop() error {
	_ = p.in.Close()
	if childproc.Stop(p.cmd.Process, p.done, stopTimeout) {
		return fmt.Errorf("%s did not stop within %v after SIGTERM", p.role, stopTimeout)
	}
	if p.err != nil {
		return fmt.Errorf("%s exited: %w: %s", p.role, p.err, p.errs)
	}
	return nil
}

// cpuTime is the user and system CPU time the process has used so far.
func (p *process) cpuTime() (time.Duration, error) {
	return processCPU(p.cmd.Process.Pid)
}

// clockTicks is Linux's USER_HZ, the unit of /proc/PID/stat's times.
const clockTicks = 100

// processCPU reads utime + stime from /proc/PID/stat.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("CPU time: %w (the comparison needs Linux's /proc)", err)
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from the last ')'. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("CPU time: unreadable /proc stat")
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 13 {
		return 0, errors.New("CPU time: short /proc stat")
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("CPU time: unreadable /proc stat")
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// lineWatcher is a process's stdout: it sends what follows prefix on the
// first line that starts with it, and drops the rest.
type lineWatcher struct {
	prefix string
	found  chan string
	mu     sync.Mutex
	line   []byte // guarded by mu: the line being read
	sent   bool   // guarded by mu
}

func newLineWatcher(prefix string) *lineWatcher {
	return &lineWatcher{prefix: prefix, found: make(chan string, 1)}
}

func (w *lineWatcher) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range b {
		if w.sent {
			break
		}
		if c != '\n' {
			if len(w.line) < 1024 {
				w.line = append(w.line, c)
			}
			continue
		}
		if rest, ok := strings.CutPrefix(string(w.line), w.prefix); ok {
			w.found <- strings.TrimSpace(rest)
			w.sent = true
		}
		w.line = w.line[:0]
	}
	return len(b), nil
}

// tail keeps the last max bytes written, for error messages.
type tail struct {
	max int
	mu  sync.Mutex
	b   []byte // guarded by mu
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, b...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
