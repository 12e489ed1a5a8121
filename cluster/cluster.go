// Package cluster holds what makes several pods one service over Redis:
// presence shared by every pod (PresenceStore, for package presence),
// cache invalidation between pods (CacheBus, for package chat) and the
// Socket.IO adapter over Redis Streams (Adapters, for gateway/socketio). The domain
// packages declare what they need; this package is the only one that knows
// the Redis side, and its key layout and message format are versioned
// (KeyLayoutVersion, docs/cluster.md) so two releases can share a Redis.
//
// Single instance: without REDIS_URL nothing here is used (presence runs on
// presence.MemoryStore and chat invalidates nothing but its own cache).
package cluster

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// NewClient returns a Redis client for the cluster's traffic, separate from
// the SMS one so a slow OTP call and a presence update never wait on each
// other's pool. Every call is bounded by timeout (dial, read, write, pool
// wait) and by its context, so a Redis that is down or unreachable answers
// an error fast instead of holding a caller.
func NewClient(url string, timeout time.Duration) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	opt.DialTimeout = timeout
	opt.ReadTimeout = timeout
	opt.WriteTimeout = timeout
	opt.PoolTimeout = timeout
	opt.ContextTimeoutEnabled = true
	opt.MaxRetries = 1
	opt.DialerRetries = 1
	opt.ClientName = "fitmate-commserver-cluster"
	return redis.NewClient(opt), nil
}
