package socketio

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Each mailbox's jobs run one at a time, in submission order, while
// mailboxes run in parallel on at most max goroutines.
func TestPoolOrderPerMailbox(t *testing.T) {
	const boxes, jobs, max = 50, 200, 4
	var running, peak atomic.Int32
	p := newWorkerPool(max, jobs, 50*time.Millisecond, nil)
	type box struct {
		mb      mailbox
		active  atomic.Int32
		got     []int
		overlap atomic.Bool
	}
	bs := make([]*box, boxes)
	for i := range bs {
		bs[i] = &box{}
	}
	var wg sync.WaitGroup
	for _, b := range bs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				p.submit(&b.mb, func() {
					if b.active.Add(1) != 1 {
						b.overlap.Store(true)
					}
					n := running.Add(1)
					for {
						old := peak.Load()
						if n <= old || peak.CompareAndSwap(old, n) {
							break
						}
					}
					b.got = append(b.got, j)
					if j%50 == 0 {
						time.Sleep(time.Millisecond)
					}
					running.Add(-1)
					b.active.Add(-1)
				}, false)
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.wait(ctx); err != nil {
		t.Fatal(err)
	}
	for i, b := range bs {
		if b.overlap.Load() {
			t.Fatalf("mailbox %d ran two jobs at once", i)
		}
		if len(b.got) != jobs {
			t.Fatalf("mailbox %d ran %d jobs", i, len(b.got))
		}
		for j, v := range b.got {
			if v != j {
				t.Fatalf("mailbox %d: job %d ran at position %d", i, v, j)
			}
		}
	}
	if peak.Load() > max {
		t.Fatalf("%d jobs ran at once, max %d", peak.Load(), max)
	}
	// Idle workers go away.
	deadline := time.Now().Add(2 * time.Second)
	for p.workers() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := p.workers(); n != 0 {
		t.Fatalf("%d workers left after idling", n)
	}
}

// A mailbox holds at most limit waiting jobs from bounded submissions;
// unbounded ones (disconnects) always get in.
func TestPoolBound(t *testing.T) {
	p := newWorkerPool(2, 3, time.Second, nil)
	var mb mailbox
	release := make(chan struct{})
	started := make(chan struct{})
	p.submit(&mb, func() { close(started); <-release }, true)
	<-started
	for i := range 3 {
		if !p.submit(&mb, func() {}, true) {
			t.Fatalf("bounded submission %d refused", i)
		}
	}
	if p.submit(&mb, func() {}, true) {
		t.Fatal("a bounded submission over the limit was accepted")
	}
	ran := make(chan struct{})
	if !p.submit(&mb, func() { close(ran) }, false) {
		t.Fatal("an unbounded submission was refused")
	}
	close(release)
	select {
	case <-ran:
	case <-time.After(2 * time.Second):
		t.Fatal("the unbounded job never ran")
	}
}

// A panicking job does not stop its mailbox or the pool.
func TestPoolPanicRecovered(t *testing.T) {
	var recovered atomic.Int32
	p := newWorkerPool(1, 10, time.Second, func(f func()) {
		defer func() {
			if recover() != nil {
				recovered.Add(1)
			}
		}()
		f()
	})
	var mb mailbox
	done := make(chan struct{})
	p.submit(&mb, func() { panic("boom") }, false)
	p.submit(&mb, func() { close(done) }, false)
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("the job after the panic never ran")
	}
	if recovered.Load() != 1 {
		t.Fatalf("recovered %d panics", recovered.Load())
	}
}
