package main

import (
	"context"
	"log/slog"

	"github.com/fitmate/commserver/chat"
	"github.com/fitmate/commserver/cluster"
	"github.com/fitmate/commserver/config"
	"github.com/fitmate/commserver/presence"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// pod is what makes this process one pod among several: presence shared
// through a Store (Redis with REDIS_URL, else this process's memory) and
// the chat cache's invalidations (nil without Redis).
type pod struct {
	id      string
	tracker *presence.Tracker
	bus     *cluster.CacheBus // nil: one instance
	rdb     *redis.Client     // nil: one instance
}

// newPod builds the pod's parts; Close releases them once Run is over.
// announce receives the presence changes this pod is to announce (nil: none).
func newPod(cfg config.Config, announce func(presence.Change), log *slog.Logger) (*pod, error) {
	p := &pod{id: presence.NewPodID()}
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
	return d
}

func up(err error) float64 {
	if err != nil {
		return 0
	}
	return 1
}
