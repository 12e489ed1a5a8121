package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// trimMemory gives idle heap back to the operating system after a burst.
// A storm of connections (a deploy, a reconnect wave) leaves hundreds of MB
// of freed heap that the Go runtime would otherwise return only gradually,
// so the pod looks, and is billed, as if it still needed them. When the
// freed-but-kept memory exceeds threshold, it forces a collection and
// returns it; at most once per interval, and never while little is idle.
func trimMemory(ctx context.Context, interval time.Duration, threshold uint64, log *slog.Logger) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return
		}
		if free := sample[0].Value.Uint64(); free > threshold {
			start := time.Now()
			debug.FreeOSMemory()
			log.Debug("returned idle memory to the OS", "idle_bytes", free, "took", time.Since(start))
		}
	}
}
