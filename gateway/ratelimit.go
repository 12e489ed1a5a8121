package gateway

import (
	"hash/maphash"
	"sync"
	"time"
)

// eventLimits is the client-event budget of every user on this instance: a
// token bucket per user, shared by the user's sockets and kept across
// reconnects, so closing a flooding socket does not hand its client a fresh
// budget (it reconnects at once: socket.io-client's default). A bucket that
// has been idle long enough to be full again is forgotten.
type eventLimits struct {
	perSec     float64
	burst      float64
	maxRefused int // refusals in a row after which the sending socket is closed
	seed       maphash.Seed
	shards     [16]limitShard
}

type limitShard struct {
	mu        sync.Mutex
	users     map[string]*tokenBucket
	lastSweep time.Time
}

// tokenBucket is one user's budget: burst at once, refilled at perSec.
type tokenBucket struct {
	tokens  float64
	last    time.Time
	refused int // refusals since the bucket last had a token
}

func newEventLimits(perMinute, burst int) *eventLimits {
	l := &eventLimits{perSec: float64(perMinute) / 60, burst: float64(burst), maxRefused: max(10*burst, 100),
		seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].users = map[string]*tokenBucket{}
	}
	return l
}

// allow takes one token from the user's bucket. When there is none, abusive
// reports a client that keeps sending far past its refusals.
func (l *eventLimits) allow(userID string, now time.Time) (ok, abusive bool) {
	sh := &l.shards[maphash.String(l.seed, userID)%uint64(len(l.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	l.sweep(sh, now)
	b := sh.users[userID]
	if b == nil {
		b = &tokenBucket{tokens: l.burst, last: now}
		sh.users[userID] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.perSec)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		b.refused = 0
		return true, false
	}
	b.refused++
	return false, b.refused > l.maxRefused
}

// sweep forgets, about once a minute, the buckets that are full again: a
// user seen after that starts with a full bucket, which is what they would
// have had anyway.
func (l *eventLimits) sweep(sh *limitShard, now time.Time) {
	if now.Sub(sh.lastSweep) < time.Minute {
		return
	}
	sh.lastSweep = now
	full := time.Duration(l.burst / l.perSec * float64(time.Second))
	for u, b := range sh.users {
		if now.Sub(b.last) > full {
			delete(sh.users, u)
		}
	}
}

// logLimiter lets one log line per key through per interval and says how
// many it held back since, so a flood of the same failure cannot flood the
// log (a flooding client once wrote 324 WARN lines for 3 closes).
type logLimiter struct {
	every time.Duration
	mu    sync.Mutex
	keys  map[string]*logKey
}

type logKey struct {
	at      time.Time
	dropped int
}

func newLogLimiter(every time.Duration) *logLimiter {
	return &logLimiter{every: every, keys: map[string]*logKey{}}
}

// allow reports whether a line for key may be written now, and how many
// lines for it were held back since the last one written.
func (l *logLimiter) allow(key string, now time.Time) (ok bool, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.keys[key]
	if k != nil && now.Sub(k.at) < l.every {
		k.dropped++
		return false, 0
	}
	if len(l.keys) >= 10_000 { // many keys at once: forget the quiet ones
		for key, k := range l.keys {
			if now.Sub(k.at) >= l.every {
				delete(l.keys, key)
			}
		}
	}
	if k == nil {
		k = &logKey{}
		l.keys[key] = k
	}
	dropped = k.dropped
	k.at, k.dropped = now, 0
	return true, dropped
}
