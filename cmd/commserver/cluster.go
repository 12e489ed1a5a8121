package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/fitmate/commserver/chat"
	"github.com/fitmate/commserver/cluster"
	"github.com/fitmate/commserver/config"
	"github.com/fitmate/commserver/presence"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// pod is what makes this process one pod among several: presence shared
// through a Store (Redis with REDIS_URL, else this process's memory), the
// chat cache's invalidations and the Socket.IO adapter (nil without Redis).
type pod struct {
	id       string
	tracker  *presence.Tracker
	bus      *cluster.CacheBus // nil: one instance
	rdb      *redis.Client     // nil: one instance
	adapters *podAdapters      // nil: one instance
}

// podAdapters is the cross-pod Socket.IO adapter (one per namespace, over
// Redis Streams) and the Redis client it has to itself, so a burst of
// broadcasts never waits on presence's pool or the other way round.
type podAdapters struct {
	*cluster.Adapters
	rdb *redis.Client
}

// newAdapters builds the Socket.IO adapters of pod id (nil without
// REDIS_URL). They exist before the hub (HubOptions.Adapter) and are closed
// after it (Close).
func newAdapters(cfg config.Config, id string, log *slog.Logger) (*podAdapters, error) {
	if cfg.RedisURL == "" {
		return nil, nil
	}
	rdb, err := cluster.NewClient(cfg.RedisURL, cfg.ClusterRedisTimeout)
	if err != nil {
		return nil, err
	}
	ads := cluster.NewAdapters(rdb, cluster.AdapterOptions{Prefix: cfg.ClusterRedisPrefix, Pod: id,
		RecoveryWindow: cfg.RecoveryWindow, Timeout: cfg.ClusterRedisTimeout, Log: log})
	return &podAdapters{Adapters: ads, rdb: rdb}, nil
}

// Close stops the adapters (publishing what is queued, within the timeout)
// and closes their client.
func (a *podAdapters) Close() {
	_ = a.Adapters.Close()
	_ = a.rdb.Close()
}

// newPod builds the pod's parts; Close releases them once Run is over.
// announce receives the presence changes this pod is to announce (nil: none);
// adapters are the pod's Socket.IO adapters (nil: one instance), for metrics.
func newPod(cfg config.Config, id string, adapters *podAdapters, announce func(presence.Change), log *slog.Logger) (*pod, error) {
	p := &pod{id: id, adapters: adapters}
	var store presence.Store = presence.NewMemoryStore()
	if cfg.RedisURL != "" {
		rdb, err := cluster.NewClient(cfg.RedisURL, cfg.ClusterRedisTimeout)
		if err != nil {
			return nil, err
		}
		p.rdb = rdb
		store = cluster.NewPresenceStore(rdb, cfg.ClusterRedisPrefix)
		p.bus = cluster.NewCacheBus(rdb, cfg.ClusterRedisPrefix, p.id, cfg.ClusterRedisTimeout, log)
		log.Info("clustered over Redis", "pod", p.id, "prefix", cfg.ClusterRedisPrefix,
			"presence_grace", cfg.PresenceGrace, "presence_pod_ttl", cfg.PresencePodTTL)
	}
	p.tracker = presence.New(store, announce, presence.Options{Grace: cfg.PresenceGrace, PodTTL: cfg.PresencePodTTL,
		Timeout: cfg.ClusterRedisTimeout, Pod: p.id}, log)
	return p, nil
}

// invalidator is what chat announces member changes to (nil: one instance).
func (p *pod) invalidator() chat.Invalidator {
	if p.bus == nil {
		return nil
	}
	return p.bus
}

// Run runs the Tracker and the bus until ctx is done.
func (p *pod) Run(ctx context.Context, chatSvc *chat.Service) {
	done := make(chan struct{})
	if p.bus != nil {
		go func() {
			defer close(done)
			p.bus.Run(ctx, cluster.CacheHandlers{Room: chatSvc.ForgetRoom, Resync: chatSvc.ForgetCached})
		}()
	} else {
		close(done)
	}
	p.tracker.Run(ctx)
	<-done
}

// Close releases the Redis client.
func (p *pod) Close() {
	if p.rdb != nil {
		_ = p.rdb.Close()
	}
}

// registerMetrics adds the cluster's counters to /metrics.
func (p *pod) registerMetrics(reg prometheus.Registerer) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "commserver_presence_store_errors_total",
			Help: "Presence calls to the shared store (Redis) that failed."},
			func() float64 { return float64(p.tracker.Stats().Errors) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "commserver_presence_announcements_total",
			Help: "userOnline and userOffline changes this pod was chosen to announce."},
			func() float64 { return float64(p.tracker.Stats().Announced) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "commserver_presence_pending_ops",
			Help: "Socket connects and disconnects not yet recorded in the shared store."},
			func() float64 { return float64(p.tracker.Stats().Pending) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "commserver_presence_store_up",
			Help: "1 while the presence store answers, 0 while this pod tracks its sockets alone."},
			func() float64 { return up(p.tracker.Health()) }),
	)
	if a := p.adapters; a != nil {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "commserver_adapter_published_total",
				Help: "Socket.IO adapter entries (broadcasts, room operations, requests) written to Redis."},
				func() float64 { return float64(a.Stats().Published) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "commserver_adapter_received_total",
				Help: "Socket.IO adapter entries read from Redis (every pod's, this one's too)."},
				func() float64 { return float64(a.Stats().Received) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "commserver_adapter_errors_total",
				Help: "Socket.IO adapter calls to Redis that failed (publishing, reading, sessions, heartbeat)."},
				func() float64 { return float64(a.Stats().Errors) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "commserver_adapter_dropped_total",
				Help: "Socket.IO adapter entries dropped because the publish queue was full (other pods missed them)."},
				func() float64 { return float64(a.Stats().Dropped) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "commserver_adapter_queued",
				Help: "Socket.IO adapter entries waiting to be published (they pile up while Redis is down)."},
				func() float64 { return float64(a.Stats().Queued) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "commserver_adapter_queued_bytes",
				Help: "About what the entries waiting to be published weigh."},
				func() float64 { return float64(a.Stats().QueuedBytes) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "commserver_adapter_up",
				Help: "1 while the Socket.IO adapter publishes to and reads from Redis; 0 while broadcasts stay on this pod."},
				func() float64 { return up(a.Health()) }),
		)
	}
	if p.bus != nil {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "commserver_cache_bus_errors_total",
				Help: "Cache invalidations that could not be published, and subscription errors."},
				func() float64 { return float64(p.bus.Errors()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "commserver_cache_bus_up",
				Help: "1 while this pod hears other pods' cache invalidations."},
				func() float64 { return up(p.bus.Health()) }),
		)
	}
}

// degraded names the shared parts that do not answer now (for /readyz):
// the pod goes on serving its own sockets meanwhile.
func (p *pod) degraded() map[string]string {
	d := map[string]string{}
	if err := p.tracker.Health(); err != nil {
		d["presence"] = err.Error()
	}
	if p.bus != nil {
		if err := p.bus.Health(); err != nil {
			d["cacheBus"] = err.Error()
		}
	}
	if p.adapters != nil {
		if err := p.adapters.Health(); err != nil {
			d["adapter"] = err.Error()
		}
	}
	return d
}

func up(err error) float64 {
	if err != nil {
		return 0
	}
	return 1
}

// redisLog routes go-redis's internal messages into slog.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...))
}
