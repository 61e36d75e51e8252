//go:build !linux

package stack

import "syscall"

// childAttrs put a service in Node or Python in a process group of its
// own (a terminal's Ctrl-C reaches only the stack, which stops it after
// the gateway has drained). Dying with the stack is Linux's alone.
func childAttrs() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
