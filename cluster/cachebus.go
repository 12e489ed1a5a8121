package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fitmate/commserver/chat"
	"github.com/redis/go-redis/v9"
)

// CacheBus carries cache invalidations between pods over Redis pub/sub: a
// pod that changes a room's members publishes, every other pod drops its
// cached copy at once. Pub/sub keeps nothing for a pod that is not listening;
// a missed message is covered by the cache's TTL, and a pod whose
// subscription was down clears its whole cache when it is back (Resync).
//
// Channel, version 1: <prefix>cache:v1. Message: JSON
//
//	{"v":1,"kind":"room","id":"<room id>","from":"<pod id>"}
//
// Receivers ignore kinds they do not know and their own messages.
type CacheBus struct {
	rdb     redis.UniversalClient
	channel string
	pod     string
	timeout time.Duration
	log     *slog.Logger

	errors     atomic.Uint64
	unhealthy  atomic.Bool
	lastErr    atomic.Pointer[error]
	subscribed chan struct{}
	once       sync.Once
}

var _ chat.Invalidator = (*CacheBus)(nil)

// CacheHandlers are what a pod does with what it hears.
type CacheHandlers struct {
	Room   func(roomID string) // a room's members changed elsewhere (chat.Service.ForgetRoom)
	Resync func()              // messages may have been missed (chat.Service.ForgetCached)
}

// cacheMessage is the wire format (version 1).
type cacheMessage struct {
	V    int    `json:"v"`
	Kind string `json:"kind"`
	ID   string `json:"id"`
	From string `json:"from"`
}

// NewCacheBus returns the bus of pod under prefix (CLUSTER_REDIS_PREFIX);
// every publish waits at most timeout.
func NewCacheBus(rdb redis.UniversalClient, prefix, pod string, timeout time.Duration, log *slog.Logger) *CacheBus {
	return &CacheBus{rdb: rdb, channel: CacheChannel(prefix), pod: pod, timeout: timeout, log: log.With("pod", pod),
		subscribed: make(chan struct{})}
}

// CacheChannel is the pub/sub channel of cache invalidations under prefix.
func CacheChannel(prefix string) string {
	return prefix + "cache:v" + strconv.Itoa(KeyLayoutVersion)
}

// RoomChanged implements chat.Invalidator.
func (b *CacheBus) RoomChanged(ctx context.Context, roomID string) error {
	msg, _ := json.Marshal(cacheMessage{V: KeyLayoutVersion, Kind: "room", ID: roomID, From: b.pod})
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	if err := b.rdb.Publish(ctx, b.channel, msg).Err(); err != nil {
		b.errors.Add(1)
		return fmt.Errorf("cache bus publish: %w", err)
	}
	return nil
}

// Subscribed is closed once the bus first listens (startup ordering, tests).
func (b *CacheBus) Subscribed() <-chan struct{} { return b.subscribed }

// Health is nil while the subscription is up, else the last error.
func (b *CacheBus) Health() error {
	if !b.unhealthy.Load() {
		return nil
	}
	if p := b.lastErr.Load(); p != nil {
		return fmt.Errorf("cache bus: %w", *p)
	}
	return errors.New("cache bus: not subscribed")
}

// Errors counts failed publishes and subscription errors.
func (b *CacheBus) Errors() uint64 { return b.errors.Load() }

// Run listens until ctx is done, calling h for what it hears. When the
// subscription breaks it retries with backoff, and once it is back calls
// Resync: what was published meanwhile is lost.
func (b *CacheBus) Run(ctx context.Context, h CacheHandlers) {
	ps := b.rdb.Subscribe(ctx, b.channel)
	defer ps.Close()
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() }) // ends a blocked read
	defer stop()
	lost := false
	backoff := 50 * time.Millisecond
	for {
		// Receive with a deadline, so a connection that died silently is
		// noticed (a ping on an idle subscription).
		v, err := ps.ReceiveTimeout(ctx, 30*time.Second)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var nerr interface{ Timeout() bool }
			if errors.As(err, &nerr) && nerr.Timeout() && !lost {
				pctx, cancel := context.WithTimeout(ctx, b.timeout)
				err = ps.Ping(pctx)
				cancel()
				if err == nil {
					continue
				}
			}
			b.fail(err)
			lost = true
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		switch m := v.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			backoff = 50 * time.Millisecond
			b.once.Do(func() { close(b.subscribed) })
			if b.unhealthy.CompareAndSwap(true, false) || lost {
				b.log.Info("cache bus: subscribed again; dropping cached rooms and admin status")
				if h.Resync != nil {
					h.Resync()
				}
			}
			lost = false
		case *redis.Message:
			var cm cacheMessage
			if err := json.Unmarshal([]byte(m.Payload), &cm); err != nil || cm.From == b.pod {
				continue
			}
			if cm.Kind == "room" && h.Room != nil {
				h.Room(cm.ID)
			}
		}
	}
}

func (b *CacheBus) fail(err error) {
	b.errors.Add(1)
	b.lastErr.Store(&err)
	if b.unhealthy.CompareAndSwap(false, true) {
		b.log.Warn("cache bus: subscription lost; caches fall back to their TTL until it is back", "err", err)
	}
}
