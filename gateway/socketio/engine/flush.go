package engine

import "sync"

// flushQueue holds the sessions with frames to write and the goroutines
// that write them. A session is queued once however many frames it gets;
// frames queued while its flush is under way leave together in the next
// write, so a busy connection costs one syscall per round, not per frame.
type flushQueue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	q       []*Session
	head    int
	held    int // holds not yet released: the flushers wait (hold)
	stopped bool
	wg      sync.WaitGroup
}

func newFlushQueue(workers int) *flushQueue {
	f := &flushQueue{}
	f.cond = sync.NewCond(&f.mu)
	f.wg.Add(workers)
	for range workers {
		go f.run()
	}
	return f
}

// push queues s; the caller has set s.queued under s.mu.
func (f *flushQueue) push(s *Session) {
	f.mu.Lock()
	f.q = append(f.q, s)
	f.mu.Unlock()
	f.cond.Signal()
}

func (f *flushQueue) pop() *Session {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.head == len(f.q) || (f.held > 0 && !f.stopped) {
		if f.head == len(f.q) {
			if f.stopped {
				return nil
			}
			f.q, f.head = f.q[:0], 0
		}
		f.cond.Wait()
	}
	s := f.q[f.head]
	f.q[f.head] = nil
	f.head++
	return s
}

// hold keeps the flushers from starting on a session until release: what
// a burst of broadcasts queues for one connection then leaves in one write
// instead of racing the flushers frame by frame. Flushes under way finish.
func (f *flushQueue) hold() {
	f.mu.Lock()
	f.held++
	f.mu.Unlock()
}

func (f *flushQueue) release() {
	f.mu.Lock()
	f.held--
	wake := f.held == 0 && f.head < len(f.q)
	f.mu.Unlock()
	if wake {
		f.cond.Broadcast()
	}
}

func (f *flushQueue) stop() {
	f.mu.Lock()
	f.stopped = true
	f.mu.Unlock()
	f.cond.Broadcast()
	f.wg.Wait()
}

func (f *flushQueue) run() {
	defer f.wg.Done()
	for {
		s := f.pop()
		if s == nil {
			return
		}
		s.flush(f)
	}
}

// maxFlushRounds bounds how long one flusher stays on one session before
// it goes back to the end of the queue.
const maxFlushRounds = 8

// flush writes the session's queued frames to its WebSocket, round after
// round while more arrive.
func (s *Session) flush(f *flushQueue) {
	for range maxFlushRounds {
		s.mu.Lock()
		ws := s.ws
		if ws == nil || s.queuedBytesLocked() == 0 {
			s.queued = false
			s.mu.Unlock()
			if ws != nil {
				ws.maybeFinish()
			}
			return
		}
		buf, shared := s.pending, s.shared
		s.pending, s.shared, s.sharedBytes = nil, nil, 0
		s.mu.Unlock()
		if len(shared) > 0 {
			// pending, if any, was queued before the shared messages (what
			// comes after them spills them into pending first).
			if buf == nil {
				buf = getBuf()
			}
			buf = appendShared(buf, shared)
			putShared(shared)
		}
		ws.write(buf)
		putBuf(buf)
	}
	f.push(s) // still queued: another round later
}
