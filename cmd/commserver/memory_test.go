package main

import "testing"

func TestTrimmerTrimsOncePerBurstWhenQuiet(t *testing.T) {
	const mb = 1 << 20
	tr := newTrimmer(64*mb, 10*mb) // quiet: at most 4 MB an interval
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
		got := tr.due(s.allocs)
		if got {
			tr.trimmed(s.allocs)
		}
		if got != s.want {
			t.Fatalf("%s (allocs %d MB): due = %v, want %v", s.name, s.allocs/mb, got, s.want)
		}
	}
}
