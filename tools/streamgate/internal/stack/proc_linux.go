package stack

import "syscall"

// childAttrs put a service in Node or Python in a process group of its
// own, so a terminal's Ctrl-C reaches only the stack, which drains the
// gateway before it stops the service, and make it die with the stack, so
// none outlives a stack that was killed.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
