package childproc_test

import (
	"os/exec"
	"testing"
	"time"

	"github.com/streamgate/streamgate/tools/internal/childproc"
)

// start runs a shell script that prints "ready" once it is set up, and
// returns it then, with a channel closed when it has exited.
func start(t *testing.T, script string) (*exec.Cmd, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("no shell: %v", err)
	}
	if _, err := out.Read(make([]byte, len("ready"))); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return cmd, done
}

func TestAChildThatDrainsIsNotKilled(t *testing.T) {
	cmd, done := start(t, "echo ready; exec sleep 30")
	if childproc.Stop(cmd.Process, done, 10*time.Second) {
		t.Fatal("killed a child that exits on SIGTERM")
	}
}

func TestAChildThatIgnoresSIGTERMIsKilled(t *testing.T) {
	cmd, done := start(t, `trap "" TERM; echo ready; while :; do sleep 1; done`)
	if !childproc.Stop(cmd.Process, done, 200*time.Millisecond) {
		t.Fatal("a child that ignores SIGTERM was not killed")
	}
}
