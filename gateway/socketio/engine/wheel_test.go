package engine

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWheelFiresOnTime(t *testing.T) {
	w := NewWheel(5*time.Millisecond, 64)
	defer w.Stop()
	for _, d := range []time.Duration{0, 10 * time.Millisecond, 50 * time.Millisecond, 400 * time.Millisecond /* more than one turn */} {
		start := time.Now()
		fired := make(chan time.Duration, 1)
		w.AfterFunc(d, func() { fired <- time.Since(start) })
		select {
		case got := <-fired:
			if got < d-w.Resolution() || got > d+200*time.Millisecond {
				t.Errorf("AfterFunc(%v) fired after %v", d, got)
			}
		case <-time.After(d + 2*time.Second):
			t.Fatalf("AfterFunc(%v) never fired", d)
		}
	}
}

func TestWheelStopAndReset(t *testing.T) {
	w := NewWheel(5*time.Millisecond, 64)
	defer w.Stop()
	var n atomic.Int32
	t1 := w.AfterFunc(30*time.Millisecond, func() { n.Add(1) })
	if !t1.Stop() {
		t.Fatal("Stop of an armed timer reported false")
	}
	if t1.Stop() {
		t.Fatal("second Stop reported true")
	}
	done := make(chan struct{})
	t2 := w.AfterFunc(20*time.Millisecond, func() { close(done) })
	if !t2.Reset(80 * time.Millisecond) {
		t.Fatal("Reset of an armed timer reported false")
	}
	start := time.Now()
	<-done
	if el := time.Since(start); el < 70*time.Millisecond {
		t.Fatalf("Reset timer fired after %v, want ≥ 75 ms", el)
	}
	time.Sleep(60 * time.Millisecond)
	if n.Load() != 0 {
		t.Fatal("a stopped timer fired")
	}
	if w.Len() != 0 {
		t.Fatalf("%d timers still armed", w.Len())
	}
}

// Many timers, armed and stopped from many goroutines, in one slot and
// across turns: each fires once or not at all, as told.
func TestWheelMany(t *testing.T) {
	w := NewWheel(time.Millisecond, 16)
	defer w.Stop()
	const n = 2000
	var fired [n]atomic.Int32
	var stopped [n]bool // Stop stopped it before it fired
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tm := w.AfterFunc(time.Duration(i%50)*time.Millisecond, func() { fired[i].Add(1) })
			if i%3 == 0 {
				stopped[i] = tm.Stop()
			}
		}()
	}
	wg.Wait()
	// Callbacks run on the wheel's goroutine in deadline order: once a timer
	// armed after all the others fires, every one of them has run.
	done := make(chan struct{})
	w.AfterFunc(60*time.Millisecond, func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the wheel did not reach the last timer in 10 s")
	}
	for i := range n {
		want := int32(1)
		if stopped[i] {
			want = 0
		}
		if got := fired[i].Load(); got != want {
			t.Fatalf("timer %d (stopped %v) fired %d times, want %d", i, stopped[i], got, want)
		}
	}
}

// A callback may re-arm its own timer (heartbeats do).
func TestWheelRearmInCallback(t *testing.T) {
	w := NewWheel(2*time.Millisecond, 8)
	defer w.Stop()
	var tm Timer
	var count atomic.Int32
	done := make(chan struct{})
	tm.Init(w, func() {
		if count.Add(1) == 5 {
			close(done)
			return
		}
		tm.Reset(3 * time.Millisecond)
	})
	tm.Reset(3 * time.Millisecond)
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatalf("fired %d times", count.Load())
	}
}
