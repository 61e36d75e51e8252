// Package workers runs tasks on goroutines that live on after their task,
// so the stack a task grew is reused by the next one instead of every task
// growing a fresh goroutine's stack (runtime.newstack and copystack, a
// sixth of the CPU of a socket round trip when each request had its own
// goroutine).
//
//	p := workers.New(func(t *task) { t.run() }, stop)
//	p.Go(t)   // on an idle worker, or a new one
//	...
//	close(stop); p.Wait()
package workers

import (
	"sync"
	"time"
)

// Idle is how long a worker waits for another task before it exits.
const Idle = 10 * time.Second

// Pool runs tasks of type T with one function. The zero value is not
// usable; see New.
type Pool[T any] struct {
	run   func(*T)        // given the worker's own copy, which it reuses
	tasks chan T          // hands tasks to idle workers
	stop  <-chan struct{} // closed: idle workers exit
	wg    sync.WaitGroup  // the workers
}

// New returns a pool that runs each task with run. Idle workers exit after
// Idle, or at once when stop is closed.
func New[T any](run func(*T), stop <-chan struct{}) *Pool[T] {
	return &Pool[T]{run: run, tasks: make(chan T), stop: stop}
}

// Go runs t on an idle worker, or on a new one. It never waits for a
// worker; the number of workers is the number of tasks running at once.
func (p *Pool[T]) Go(t T) {
	select {
	case p.tasks <- t:
	default:
		p.wg.Add(1)
		go p.work(t)
	}
}

// Wait returns once every worker has exited: after stop is closed, when
// their tasks end.
func (p *Pool[T]) Wait() { p.wg.Wait() }

func (p *Pool[T]) work(t T) {
	defer p.wg.Done()
	idle := time.NewTimer(Idle)
	defer idle.Stop()
	var zero T
	for {
		p.run(&t)
		t = zero // let the task's memory go while idle
		idle.Reset(Idle)
		select {
		case t = <-p.tasks:
		case <-idle.C:
			return
		case <-p.stop:
			return
		}
	}
}
