package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"
)

// Lock errors.
var (
	// ErrLocked: another run holds the lock (on this instance or another).
	ErrLocked = errors.New("scheduler: the job's lock is held by another run")
	// ErrLockUnavailable: the lock service (Redis) did not answer. Nothing
	// runs then, on any instance: a run skipped so is caught up later.
	ErrLockUnavailable = errors.New("scheduler: the lock service is unavailable")
)

// Locker gives one run of a job at a time across the cluster.
type Locker interface {
	// TryLock takes key for ttl without waiting. It returns ErrLocked when
	// the key is held, and an error wrapping ErrLockUnavailable when the
	// lock service does not answer.
	TryLock(ctx context.Context, key string, ttl time.Duration) (Lease, error)
}

// Lease is a held lock.
type Lease interface {
	// Extend keeps the lock for ttl from now. It returns ErrLocked when the
	// lock was lost (it expired and someone else may hold it), and an error
	// wrapping ErrLockUnavailable when the lock service does not answer.
	Extend(ctx context.Context, ttl time.Duration) error
	// Release gives the lock up if it is still held.
	Release(ctx context.Context) error
}

// RedisLocker is a Locker in Redis: SET NX PX with a random token; extend and
// release are compare-and-set scripts, so a run whose lock expired never
// extends or releases another run's. Unlike gocron-redis-lock it tells a
// held lock from an unreachable Redis (the first is normal, the second is
// counted and caught up), and tells the run when an extension fails.
type RedisLocker struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisLocker returns a locker whose keys start with prefix.
func NewRedisLocker(rdb redis.UniversalClient, prefix string) *RedisLocker {
	return &RedisLocker{rdb: rdb, prefix: prefix}
}

var (
	extendScript  = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`)
	releaseScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`)
)

// redisCallTimeout bounds one lock call.
const redisCallTimeout = 3 * time.Second

// TryLock implements Locker.
func (l *RedisLocker) TryLock(ctx context.Context, key string, ttl time.Duration) (Lease, error) {
	ctx, cancel := context.WithTimeout(ctx, redisCallTimeout)
	defer cancel()
	token := newToken()
	ok, err := l.rdb.SetNX(ctx, l.prefix+key, token, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLockUnavailable, err)
	}
	if !ok {
		return nil, ErrLocked
	}
	return &redisLease{rdb: l.rdb, key: l.prefix + key, token: token}, nil
}

type redisLease struct {
	rdb   redis.UniversalClient
	key   string
	token string
}

func (r *redisLease) Extend(ctx context.Context, ttl time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, redisCallTimeout)
	defer cancel()
	n, err := extendScript.Run(ctx, r.rdb, []string{r.key}, r.token, ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrLockUnavailable, err)
	}
	if n == 0 {
		return ErrLocked
	}
	return nil
}

func (r *redisLease) Release(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, redisCallTimeout)
	defer cancel()
	if err := releaseScript.Run(ctx, r.rdb, []string{r.key}, r.token).Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrLockUnavailable, err)
	}
	return nil
}

// LocalLocker is a Locker for a single instance (no REDIS_URL): the same
// code path, in this process's memory.
type LocalLocker struct {
	clock clockwork.Clock
	mu    sync.Mutex
	held  map[string]localHold
}

type localHold struct {
	token   string
	expires time.Time
}

// NewLocalLocker returns an in-process locker; clock nil is the real clock.
func NewLocalLocker(clock clockwork.Clock) *LocalLocker {
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	return &LocalLocker{clock: clock, held: map[string]localHold{}}
}

// TryLock implements Locker.
func (l *LocalLocker) TryLock(_ context.Context, key string, ttl time.Duration) (Lease, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	if h, ok := l.held[key]; ok && now.Before(h.expires) {
		return nil, ErrLocked
	}
	token := newToken()
	l.held[key] = localHold{token: token, expires: now.Add(ttl)}
	return &localLease{l: l, key: key, token: token}, nil
}

type localLease struct {
	l     *LocalLocker
	key   string
	token string
}

func (r *localLease) Extend(_ context.Context, ttl time.Duration) error {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	now := r.l.clock.Now()
	h, ok := r.l.held[r.key]
	if !ok || h.token != r.token || !now.Before(h.expires) {
		return ErrLocked
	}
	r.l.held[r.key] = localHold{token: r.token, expires: now.Add(ttl)}
	return nil
}

func (r *localLease) Release(context.Context) error {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	if h, ok := r.l.held[r.key]; ok && h.token == r.token {
		delete(r.l.held, r.key)
	}
	return nil
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
