package socketio

import (
	"context"
	"sync"
	"time"
)

// mailbox is one connection's queue of jobs. Its jobs run one at a time, in
// the order they were submitted, on the pool's goroutines. Holds nothing
// while idle.
type mailbox struct {
	mu        sync.Mutex
	jobs      []func()
	scheduled bool // queued in the pool, or being run
}

// workerPool runs mailboxes on at most max goroutines, started on demand
// and ended after idle time without work. A mailbox with jobs is queued
// once; a worker runs a batch of its jobs, then puts it back at the end of the
// queue if more came, so one busy connection cannot starve the others.
type workerPool struct {
	max   int
	limit int // jobs a mailbox may hold (bounded submissions)
	idle  time.Duration
	onRun func(func()) // runs one job (recovering panics); nil: call it

	mu      sync.Mutex
	queue   []*mailbox
	head    int
	running int
	waiting int           // workers parked in wake
	wake    chan struct{} // one token per parked worker to wake
	busy    int           // mailboxes being run
}

func newWorkerPool(max, limit int, idle time.Duration, onRun func(func())) *workerPool {
	return &workerPool{max: max, limit: limit, idle: idle, onRun: onRun, wake: make(chan struct{}, max)}
}

// submit adds fn to mb. A bounded submission fails (false) when mb already
// holds limit jobs; an unbounded one (disconnects, acks) always succeeds.
func (p *workerPool) submit(mb *mailbox, fn func(), bounded bool) bool {
	mb.mu.Lock()
	if bounded && len(mb.jobs) >= p.limit {
		mb.mu.Unlock()
		return false
	}
	mb.jobs = append(mb.jobs, fn)
	if mb.scheduled {
		mb.mu.Unlock()
		return true
	}
	mb.scheduled = true
	mb.mu.Unlock()
	p.schedule(mb)
	return true
}

func (p *workerPool) schedule(mb *mailbox) {
	p.mu.Lock()
	p.queue = append(p.queue, mb)
	switch {
	case p.waiting > 0:
		p.waiting--
		p.wake <- struct{}{} // never blocks: capacity max ≥ parked workers
	case p.running < p.max:
		p.running++
		go p.worker()
	}
	p.mu.Unlock()
}

func (p *workerPool) popLocked() *mailbox {
	if p.head == len(p.queue) {
		if p.head > 0 {
			p.queue, p.head = p.queue[:0], 0
		}
		return nil
	}
	mb := p.queue[p.head]
	p.queue[p.head] = nil
	p.head++
	return mb
}

func (p *workerPool) worker() {
	var t *time.Timer
	for {
		p.mu.Lock()
		if mb := p.popLocked(); mb != nil {
			p.busy++
			p.mu.Unlock()
			p.run(mb)
			continue
		}
		p.waiting++
		p.mu.Unlock()
		if t == nil {
			t = time.NewTimer(p.idle)
		} else {
			t.Reset(p.idle)
		}
		select {
		case <-p.wake:
			continue
		case <-t.C:
		}
		p.mu.Lock()
		select {
		case <-p.wake: // a token was sent for a parked worker: take the work
			p.mu.Unlock()
			continue
		default:
		}
		p.waiting--
		p.running--
		p.mu.Unlock()
		return
	}
}

// maxBatch bounds the jobs run from one mailbox before it yields.
const maxBatch = 32

func (p *workerPool) run(mb *mailbox) {
	mb.mu.Lock()
	batch := mb.jobs
	if len(batch) > maxBatch {
		mb.jobs = append([]func(){}, batch[maxBatch:]...)
		batch = batch[:maxBatch]
	} else {
		mb.jobs = nil
	}
	mb.mu.Unlock()
	for i, fn := range batch {
		batch[i] = nil
		if p.onRun != nil {
			p.onRun(fn)
		} else {
			fn()
		}
	}
	mb.mu.Lock()
	more := len(mb.jobs) > 0
	if !more {
		mb.scheduled = false
	}
	mb.mu.Unlock()
	p.mu.Lock()
	p.busy--
	p.mu.Unlock()
	if more {
		p.schedule(mb)
	}
}

// wait returns once no job is queued or running, or ctx ends.
func (p *workerPool) wait(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		p.mu.Lock()
		done := p.head == len(p.queue) && p.busy == 0
		p.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// workers is the number of goroutines the pool runs now.
func (p *workerPool) workers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running
}
