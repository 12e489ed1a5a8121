package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// trimMemory gives memory back to the operating system once a burst is over.
// A storm of connections (a deploy, a reconnect wave) leaves garbage and
// freed heap worth hundreds of MB that the Go runtime would collect and
// return only gradually (the next collection waits for the heap to double),
// so the pod looks, and is billed, as if it still needed them. When at least
// threshold bytes were allocated since the last trim and the last interval
// was quiet, it forces a collection and returns the freed memory: once per
// burst, never under steady load (where the runtime's pacing is right).
//
// connects is the cumulative count of sockets connected: a connect storm is
// over when no socket connected in the last interval, even while the work it
// left behind (presence, announcements) still allocates a little; without
// it the trim would wait for that work too, long after the memory could go.
func trimMemory(ctx context.Context, interval time.Duration, threshold uint64, connects func() int64, log *slog.Logger) {
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	read := func() (uint64, bool) {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0, false
		}
		return sample[0].Value.Uint64(), true
	}
	allocs, ok := read()
	if !ok {
		return
	}
	tr := newTrimmer(threshold, allocs, connects())
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		allocs, _ := read()
		if !tr.due(allocs, connects()) {
			continue
		}
		start := time.Now()
		debug.FreeOSMemory()
		log.Debug("returned idle memory to the OS", "allocated_since_last", allocs-tr.last, "took", time.Since(start))
		// What FreeOSMemory itself allocated does not count towards the next trim.
		tr.trimmed(allocs, connects())
	}
}

// trimmer decides when a burst is over, from the runtime's cumulative count
// of bytes allocated and the count of sockets connected, read once per interval.
type trimmer struct {
	threshold uint64 // bytes allocated since the last trim that make one worth it
	quiet     uint64 // most bytes allocated in one interval that still count as quiet
	settling  uint64 // most bytes in one interval once a connect storm has stopped
	last      uint64 // the count at the last trim (or at start)
	prev      uint64 // the count at the previous reading

	lastConnects, prevConnects int64
}

// stormConnects is how many connections since the last trim make a storm.
const stormConnects = 1000

func newTrimmer(threshold, allocs uint64, connects int64) *trimmer {
	return &trimmer{threshold: threshold, quiet: threshold / 16, settling: threshold / 4, last: allocs, prev: allocs,
		lastConnects: connects, prevConnects: connects}
}

// due reports whether to trim now, given the current counts: a burst worth
// a trim is over when the last interval was quiet, or when a connect storm
// has just stopped and only its aftermath allocates.
func (t *trimmer) due(allocs uint64, connects int64) bool {
	sinceLast, thisInterval := allocs-t.last, allocs-t.prev
	stormOver := connects-t.lastConnects >= stormConnects && connects == t.prevConnects
	t.prev, t.prevConnects = allocs, connects
	return sinceLast >= t.threshold && (thisInterval <= t.quiet || stormOver && thisInterval <= t.settling)
}

func (t *trimmer) trimmed(allocs uint64, connects int64) {
	t.last, t.prev = allocs, allocs
	t.lastConnects, t.prevConnects = connects, connects
}
