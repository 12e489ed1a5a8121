package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

var sink []byte

// gcsWhileAllocating allocates total bytes in 8 KB pieces, keeping nothing,
// and counts the collections meanwhile.
func gcsWhileAllocating(total int) uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.NumGC
	for n := 0; n < total; n += 8 << 10 {
		sink = make([]byte, 8<<10)
	}
	runtime.ReadMemStats(&ms)
	return ms.NumGC - before
}

// With a small live heap, the floor makes the collector run about
// floor/(2 × live) times less often; without it, GOGC is back as it was.
func TestFloorSpacesCollections(t *testing.T) {
	base := debug.SetGCPercent(100)
	defer debug.SetGCPercent(base)
	runtime.GC()
	without := gcsWhileAllocating(256 << 20)

	f := Start(128 << 20)
	if f == nil {
		t.Fatal("Start returned nil with GOGC on")
	}
	runtime.GC() // the tuner follows the first collection
	deadline := time.Now().Add(5 * time.Second)
	for f.Percent() <= 100 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if f.Percent() <= 100 {
		t.Fatalf("GOGC stayed %d with a tiny live heap under a 128 MB floor", f.Percent())
	}
	goal := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(goal)
	if g := goal[0].Value.Uint64(); g < 96<<20 || g > 192<<20 {
		t.Fatalf("heap goal %d MB under a 128 MB floor", g>>20)
	}
	with := gcsWhileAllocating(256 << 20)
	f.Stop()
	if with == 0 || with*4 > without {
		t.Fatalf("%d collections with the floor, %d without: want at least 4x fewer", with, without)
	}
	if got := debug.SetGCPercent(base); got != 100 {
		t.Fatalf("Stop left GOGC at %d, want 100", got)
	}
	t.Logf("collections over 256 MB allocated: %d without the floor, %d with it", without, with)
}

// A large live heap is left to GOGC: twice it is above the floor.
func TestFloorStepsAsideForALargeHeap(t *testing.T) {
	base := debug.SetGCPercent(100)
	defer debug.SetGCPercent(base)
	live := make([][]byte, 0, 64)
	for range 64 {
		live = append(live, make([]byte, 1<<20)) // 64 MB live
	}
	f := Start(32 << 20)
	defer f.Stop()
	runtime.GC()
	runtime.GC()
	if f.Percent() != 100 {
		t.Fatalf("GOGC %d with 64 MB live under a 32 MB floor, want 100", f.Percent())
	}
	runtime.KeepAlive(live)
}

func TestFloorOffWhenGCIsOff(t *testing.T) {
	base := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(base)
	if f := Start(32 << 20); f != nil {
		t.Fatal("Start returned a floor with GOGC=off")
	}
	if Start(0) != nil {
		t.Fatal("Start(0) returned a floor")
	}
}
