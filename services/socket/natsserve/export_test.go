package natsserve

// WithEventQueue sets how many events wait to be stored (default 4096),
// for tests that fill the queue.
func WithEventQueue(n int) Option {
	return func(l *Listener) { l.eventQueue = n }
}
