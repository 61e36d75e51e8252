package socket

import "time"

// task is one admitted request for a worker.
type task struct {
	st  *serverStream
	r   *run
	id  uint64
	adm admitted
}

// workerIdle is how long an idle worker waits for another task before it
// exits.
const workerIdle = 10 * time.Second

// dispatch runs a task on an idle worker, or on a new one. Workers live on
// after their task, so their grown stacks are reused instead of a fresh
// goroutine growing its stack for every request. The number of workers is
// bounded by the server's in-flight bound, since each task holds a slot.
func (s *Server) dispatch(t task) {
	select {
	case s.tasks <- t:
	default:
		s.workers.Add(1)
		go s.work(t)
	}
}

func (s *Server) work(t task) {
	defer s.workers.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		t.st.serve(t.r, t.id, &t.adm)
		t = task{}
		idle.Reset(workerIdle)
		select {
		case t = <-s.tasks:
		case <-idle.C:
			return
		case <-s.hardStop:
			return
		}
	}
}
