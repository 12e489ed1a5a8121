package sms

import (
	"context"
	"sync"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/redis/go-redis/v9"
)

var (
	_ Limiter = (*RedisLimiter)(nil)
	_ Limiter = (*MemoryLimiter)(nil)
)

// RedisLimiter is a Limiter shared by every instance: fixed windows counted in Redis.
type RedisLimiter struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisLimiter returns a Limiter whose counters are Redis keys starting with prefix.
func NewRedisLimiter(rdb redis.UniversalClient, prefix string) *RedisLimiter {
	return &RedisLimiter{rdb: rdb, prefix: prefix}
}

// countScript counts one event in KEYS[1], a window of ARGV[1] ms opened by
// the first event, and returns { count, ms left in the window }.
var countScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local t = redis.call('PTTL', KEYS[1])
if t < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  t = tonumber(ARGV[1])
end
return {n, t}
`)

// Allow implements Limiter. A Redis that does not answer is
// commserver.ErrUnavailable: the caller refuses the send (fails closed).
func (l *RedisLimiter) Allow(ctx context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	res, err := countScript.Run(ctx, l.rdb, []string{l.prefix + key}, window.Milliseconds()).Int64Slice()
	if err != nil {
		return false, 0, redisDown(err)
	}
	if res[0] <= int64(limit) {
		return true, 0, nil
	}
	return false, time.Duration(res[1]) * time.Millisecond, nil
}

// redisDown is the error of every Redis failure: the service is unavailable,
// never open.
func redisDown(err error) error {
	return &commserver.Error{Code: commserver.CodeUnavailable,
		Message: "SMS limits cannot be checked right now (Redis is unavailable); try again shortly", Err: err}
}

// MemoryLimiter is a Limiter for a single instance (no REDIS_URL): fixed
// windows counted in this process.
type MemoryLimiter struct {
	now   func() time.Time
	mu    sync.Mutex
	calls int
	win   map[string]*memWindow
}

type memWindow struct {
	n     int
	reset time.Time
}

// NewMemoryLimiter returns an empty MemoryLimiter.
func NewMemoryLimiter() *MemoryLimiter {
	return &MemoryLimiter{now: time.Now, win: map[string]*memWindow{}}
}

// Allow implements Limiter; it never fails.
func (l *MemoryLimiter) Allow(_ context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls++; l.calls%1024 == 0 {
		for k, w := range l.win {
			if !now.Before(w.reset) {
				delete(l.win, k)
			}
		}
	}
	w := l.win[key]
	if w == nil || !now.Before(w.reset) {
		w = &memWindow{reset: now.Add(window)}
		l.win[key] = w
	}
	w.n++
	if w.n <= limit {
		return true, 0, nil
	}
	return false, w.reset.Sub(now), nil
}
