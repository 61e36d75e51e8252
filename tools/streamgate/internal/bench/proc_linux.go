package bench

import "syscall"

// dieWithParent makes a server die with the process that started it, so
// none outlives an interrupted comparison.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
