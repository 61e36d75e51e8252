// Package childproc stops the child processes the tools start (services,
// gateways) the way a deployment would: SIGTERM, so the child drains, and
// SIGKILL once a grace period is over.
//
//	if childproc.Stop(cmd.Process, done, 10*time.Second) {
//		return errors.New("killed: it did not exit within 10s of SIGTERM")
//	}
package childproc

import (
	"os"
	"syscall"
	"time"
)

// Stop sends p SIGTERM and waits until exited is closed (by whoever
// waits for p); when grace passes first it kills p, waits again and
// reports that it had to.
func Stop(p *os.Process, exited <-chan struct{}, grace time.Duration) (killed bool) {
	_ = p.Signal(syscall.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-exited:
		return false
	case <-timer.C:
		_ = p.Kill()
		<-exited
		return true
	}
}
