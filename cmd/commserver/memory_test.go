package main

import "testing"

func TestTrimmerTrimsOncePerBurstWhenQuiet(t *testing.T) {
	const mb = 1 << 20
	tr := newTrimmer(64*mb, 10*mb, 0) // quiet: at most 4 MB an interval
	steps := []struct {
		name   string
		allocs uint64 // cumulative
		want   bool
	}{
		{"idle", 11 * mb, false},
		{"a burst starts", 60 * mb, false},
		{"the burst goes on", 200 * mb, false}, // 190 MB since start, but busy
		{"quiet after the burst", 202 * mb, true},
		{"quiet again: already trimmed", 203 * mb, false},
		{"steady load, 30 MB an interval", 233 * mb, false},
		{"steady load", 263 * mb, false},
		{"steady load", 293 * mb, false},
		{"load ends", 294 * mb, true}, // 91 MB since the trim
		{"a small burst", 330 * mb, false},
		{"quiet, but the burst was small", 331 * mb, false},
		{"slow trickle reaches the threshold", 359 * mb, false}, // 28 MB in one interval: busy
		{"quiet with 65 MB since the trim", 359*mb + 1, true},
	}
	for _, s := range steps {
		got := tr.due(s.allocs, 0)
		if got {
			tr.trimmed(s.allocs, 0)
		}
		if got != s.want {
			t.Fatalf("%s (allocs %d MB): due = %v, want %v", s.name, s.allocs/mb, got, s.want)
		}
	}
}

func TestTrimmerTrimsWhenAConnectStormStops(t *testing.T) {
	const mb = 1 << 20
	tr := newTrimmer(64*mb, 0, 0) // quiet: 4 MB an interval; after a storm, 16 MB
	steps := []struct {
		name     string
		allocs   uint64 // cumulative
		connects int64  // cumulative
		want     bool
	}{
		{"a storm", 100 * mb, 4000, false},
		{"the storm goes on", 200 * mb, 9000, false},
		{"no new socket; its aftermath allocates 10 MB", 210 * mb, 10000, false}, // the last connects came in this interval
		{"still no new socket, 10 MB more", 220 * mb, 10000, true},
		{"steady traffic, 10 MB an interval, no connects", 230 * mb, 10000, false},
		{"steady traffic", 240 * mb, 10000, false},
		{"steady traffic past the threshold: not a storm", 300 * mb, 10000, false},
		{"a few reconnects, then none", 310 * mb, 10100, false},
		{"steady: 100 connects are no storm", 320 * mb, 10100, false},
		{"a busy interval after a storm is not its end", 400 * mb, 12000, false},
		{"the storm stopped but 30 MB an interval is load", 430 * mb, 12000, false},
	}
	for _, s := range steps {
		got := tr.due(s.allocs, s.connects)
		if got {
			tr.trimmed(s.allocs, s.connects)
		}
		if got != s.want {
			t.Fatalf("%s (allocs %d MB, connects %d): due = %v, want %v", s.name, s.allocs/mb, s.connects, got, s.want)
		}
	}
}
