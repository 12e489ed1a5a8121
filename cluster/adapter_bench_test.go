package cluster_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Cross-pod broadcast throughput: pod a broadcasts to everyone, pod b has N
// WebSocket clients; a run ends when every client of b got every broadcast.
// The loop keeps pod a's publish queue under half full (no drops).
//
//	go test -run '^$' -bench AdapterCrossPod -benchtime 20000x ./cluster/
func BenchmarkAdapterCrossPod(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("sockets=%d", n), func(b *testing.B) {
			rdb, prefix := testRedis(b)
			a := startPod(b, "pod-a", rdb, prefix, nil)
			p := startPod(b, "pod-b", rdb, prefix, nil)
			var wg sync.WaitGroup
			var got atomic.Int64
			want := int64(b.N)
			for range n {
				cl := connectTo(b, p, map[string]any{})
				wg.Add(1)
				go func() {
					defer wg.Done()
					var k int64
					for k < want {
						_ = cl.c.SetReadDeadline(time.Now().Add(30 * time.Second))
						_, msg, err := cl.c.ReadMessage()
						if err != nil {
							return
						}
						if len(msg) > 1 && msg[0] == '4' {
							k++
						}
					}
					got.Add(k)
				}()
			}
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				// The publish queue holds 10,000 entries: a loop faster than
				// Redis would drop the rest (counted), so it waits for room.
				for i%500 == 0 && a.ads.Stats().Queued > 5000 {
					time.Sleep(100 * time.Microsecond)
				}
				if err := a.srv.Emit("m", i, "a payload of a typical chat message size, say sixty bytes"); err != nil {
					b.Fatal(err)
				}
			}
			wg.Wait()
			d := time.Since(start)
			b.StopTimer()
			if st := a.ads.Stats(); st.Dropped != 0 {
				b.Fatalf("dropped %d", st.Dropped)
			}
			if got.Load() != want*int64(n) {
				b.Fatalf("delivered %d of %d", got.Load(), want*int64(n))
			}
			b.ReportMetric(float64(b.N)/d.Seconds(), "broadcasts/s")
			b.ReportMetric(float64(b.N*n)/d.Seconds(), "deliveries/s")
		})
	}
}
