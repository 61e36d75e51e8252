package eventlog

// SetPendingLimit sets how many live events a watcher of l holds while
// it catches up (maxPending by default), so a test can overflow it.
func SetPendingLimit(l *Log, n int) { l.pendingLimit = n }
