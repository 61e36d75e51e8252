package socket

// task is one admitted request for a worker (see workers.Pool: a worker's
// grown stack is reused instead of a fresh goroutine growing its stack for
// every request). The number of workers is bounded by the server's
// in-flight bound, since each task holds a slot.
type task struct {
	st  *serverStream
	r   *run
	id  uint64
	adm admitted
}

func serveTask(t *task) { t.st.serve(t.r, t.id, &t.adm) }
