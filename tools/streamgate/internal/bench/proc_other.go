//go:build !linux

package bench

import "syscall"

// dieWithParent has no portable equivalent outside Linux.
func dieWithParent() *syscall.SysProcAttr { return nil }

// allowedCPUs is unknown outside Linux: no pinning.
func allowedCPUs() []int { return nil }
