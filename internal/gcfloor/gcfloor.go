// Package gcfloor gives the Go collector a floor under its heap goal.
//
// With GOGC=100 the collector runs whenever the heap doubles. A pod whose
// live heap is small (a sending pod: a few MB of rooms and store buffers)
// but which allocates fast (every chat message is encoded, stored through the
// embedded FerretDB and published) then collects a dozen times a second: 12 %
// of its CPU in the crossnode benchmark. The floor raises GOGC while the live
// heap is small, so that the heap goal is at least the floor; once twice the
// live heap is above the floor, GOGC is what the environment set. Memory is
// therefore bounded by max(floor, the usual goal): a pod holding 10,000 idle
// sockets (tens of MB live) is not affected, and an idle pod may keep up to
// the floor in garbage. Unlike a ballast, the floor does not add to the live
// heap, so it never doubles with it.
package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// maxPercent bounds the GOGC the floor sets.
const maxPercent = 10_000

// Floor adjusts GOGC after every collection. Stop restores the base GOGC.
type Floor struct {
	floor   uint64
	base    int
	percent atomic.Int64 // the GOGC in force
	stopped atomic.Bool
	mu      sync.Mutex
	sample  []metrics.Sample
}

// Start keeps the heap goal at least floor bytes. It does nothing (and
// returns nil) when floor is 0 or the collector is off (GOGC=off).
func Start(floor uint64) *Floor {
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	if floor == 0 || base < 0 {
		return nil
	}
	f := &Floor{floor: floor, base: base, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/goal:bytes"}}}
	f.percent.Store(int64(base))
	f.adjust()
	f.arm()
	return f
}

// Percent is the GOGC in force.
func (f *Floor) Percent() int { return int(f.percent.Load()) }

// Stop restores the base GOGC; the floor no longer follows collections.
func (f *Floor) Stop() {
	if f == nil || f.stopped.Swap(true) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	debug.SetGCPercent(f.base)
	f.percent.Store(int64(f.base))
}

// sentinel is garbage at once: its finalizer runs after the next collection.
type sentinel struct{ f *Floor }

func (f *Floor) arm() {
	s := &sentinel{f}
	runtime.SetFinalizer(s, func(s *sentinel) {
		if s.f.stopped.Load() {
			return
		}
		s.f.adjust()
		s.f.arm()
	})
}

// adjust sets GOGC so that the heap goal is the floor (or what the base
// GOGC gives, if more). The runtime's goal is live + scan × GOGC/100, where
// scan is the live heap plus stacks and globals: scan is read back from the
// goal in force.
func (f *Floor) adjust() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped.Load() {
		return
	}
	metrics.Read(f.sample)
	live, goal := f.sample[0].Value.Uint64(), f.sample[1].Value.Uint64()
	old := int(f.percent.Load())
	p := f.base
	if live > 0 && live < f.floor && goal > live && old > 0 {
		scan := (goal - live) * 100 / uint64(old)
		if scan > 0 {
			p = max(p, min(maxPercent, int((f.floor-live)*100/scan)))
		}
	}
	// A change under a tenth is not worth the pacer's recomputation.
	if p == old || (p > f.base && old > f.base && abs(p-old)*10 < old) {
		return
	}
	debug.SetGCPercent(p)
	f.percent.Store(int64(p))
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
