package engine

import (
	"sync"
	"time"
)

// Wheel is a hashed timing wheel: one goroutine and one ticker serve every
// timer of a server (heartbeats, connect and upgrade timeouts, the
// application's AfterFunc), so an idle connection holds no goroutine and no
// runtime timer, only a Timer of a few words linked into a slot.
//
// A timer fires on the first tick at or after its deadline rounded down to the
// resolution, so at most one resolution early and, on a busy machine, a little
// late. Callbacks run on the wheel's goroutine one after another: they must
// not block (hand real work to a goroutine or a queue).
type Wheel struct {
	res   time.Duration
	start time.Time

	mu    sync.Mutex
	slots []*Timer // doubly linked lists, one per slot
	tick  int64    // the next tick to process
	n     int      // armed timers

	stop chan struct{}
	done chan struct{}
}

// Timer is one timer on a Wheel. A zero Timer is ready to use with Reset; it
// may be embedded in a larger struct so that arming it allocates nothing.
type Timer struct {
	w          *Wheel
	f          func()
	next, prev *Timer
	at         int64 // tick at which it fires
	slot       int32 // -1 when not armed
	armed      bool
}

// NewWheel starts a wheel that ticks every resolution and keeps slots
// slots (a timer further away than slots×resolution goes round more than once).
func NewWheel(resolution time.Duration, slots int) *Wheel {
	if resolution <= 0 {
		resolution = 10 * time.Millisecond
	}
	if slots <= 0 {
		slots = 4096
	}
	w := &Wheel{
		res:   resolution,
		start: time.Now(),
		slots: make([]*Timer, slots),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go w.run()
	return w
}

// Resolution is the wheel's tick.
func (w *Wheel) Resolution() time.Duration { return w.res }

// Stop ends the wheel's goroutine. Armed timers never fire afterwards.
func (w *Wheel) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// Len is the number of armed timers.
func (w *Wheel) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// AfterFunc arms a new timer that calls f on the wheel's goroutine after d.
func (w *Wheel) AfterFunc(d time.Duration, f func()) *Timer {
	t := &Timer{}
	t.Init(w, f)
	t.Reset(d)
	return t
}

// Init binds a zero Timer to a wheel and a callback without arming it.
func (t *Timer) Init(w *Wheel, f func()) {
	t.w, t.f = w, f
}

// Reset (re)arms the timer to fire after d; it reports whether it was armed.
func (t *Timer) Reset(d time.Duration) bool {
	w := t.w
	w.mu.Lock()
	was := t.armed
	if was {
		w.unlink(t)
	}
	// Ticks since start at which the deadline falls, rounded down; never
	// before the next tick, so that a timer armed inside a callback fires later.
	at := int64(time.Since(w.start)+d) / int64(w.res)
	if at < w.tick {
		at = w.tick
	}
	t.at = at
	w.link(t)
	w.mu.Unlock()
	return was
}

// Stop disarms the timer; it reports whether it was armed (false when it
// already fired or was never armed). A callback already running is not waited for.
func (t *Timer) Stop() bool {
	w := t.w
	if w == nil {
		return false
	}
	w.mu.Lock()
	was := t.armed
	if was {
		w.unlink(t)
	}
	w.mu.Unlock()
	return was
}

// Armed reports whether the timer is waiting to fire. A callback that finds
// its own timer armed again was overtaken by a Reset and should do nothing.
func (t *Timer) Armed() bool {
	w := t.w
	if w == nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return t.armed
}

func (w *Wheel) link(t *Timer) {
	s := int32(t.at % int64(len(w.slots)))
	t.slot = s
	t.prev = nil
	t.next = w.slots[s]
	if t.next != nil {
		t.next.prev = t
	}
	w.slots[s] = t
	t.armed = true
	w.n++
}

func (w *Wheel) unlink(t *Timer) {
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		w.slots[t.slot] = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	}
	t.next, t.prev = nil, nil
	t.armed = false
	w.n--
}

func (w *Wheel) run() {
	defer close(w.done)
	tk := time.NewTicker(w.res)
	defer tk.Stop()
	var due []*Timer
	for {
		select {
		case <-w.stop:
			return
		case <-tk.C:
		}
		now := int64(time.Since(w.start) / w.res)
		w.mu.Lock()
		for ; w.tick <= now; w.tick++ {
			s := w.tick % int64(len(w.slots))
			for t := w.slots[s]; t != nil; {
				next := t.next
				if t.at <= w.tick {
					w.unlink(t)
					due = append(due, t)
				}
				t = next
			}
		}
		w.mu.Unlock()
		for i, t := range due {
			due[i] = nil
			t.f()
		}
		due = due[:0]
	}
}
