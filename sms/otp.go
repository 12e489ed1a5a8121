package sms

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/redis/go-redis/v9"
)

// OTPOptions are the one-time password's lifetime and limits.
type OTPOptions struct {
	Prefix      string        // Redis key prefix
	Pepper      []byte        // per-deployment secret keying every hash; the same on every instance
	TTL         time.Duration // a code's lifetime (5m)
	MaxAttempts int           // wrong answers that burn a code (5)
	Cooldown    time.Duration // least time between two codes for a number (60s)
	DailyLimit  int           // codes per number per 24 hours (10)
}

// Verifications issues and checks phone verification codes. A code lives in
// Redis only as an HMAC-SHA-256 under the pepper, in a key named by a keyed
// hash of the number: Redis holds neither codes nor numbers. A code is single
// use: checking it consumes it atomically (WATCH/MULTI), so two concurrent
// checks of the right code cannot both pass.
type Verifications struct {
	rdb redis.UniversalClient
	o   OTPOptions
}

// NewVerifications returns Verifications over rdb. Zero options take the defaults above.
func NewVerifications(rdb redis.UniversalClient, o OTPOptions) *Verifications {
	if o.TTL <= 0 {
		o.TTL = 5 * time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.Cooldown <= 0 {
		o.Cooldown = time.Minute
	}
	if o.DailyLimit <= 0 {
		o.DailyLimit = 10
	}
	return &Verifications{rdb: rdb, o: o}
}

// TTL is a code's lifetime.
func (v *Verifications) TTL() time.Duration { return v.o.TTL }

// newCode returns six uniformly random digits from crypto/rand.
func newCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

// keyed is HMAC-SHA-256 under the pepper of the parts, hex.
func keyed(pepper []byte, parts ...string) string {
	m := hmac.New(sha256.New, pepper)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil))
}

// subject names a number or an address in Redis keys without revealing it.
// The braces are a Redis Cluster hash tag: one number's keys share a slot.
func subject(pepper []byte, kind, value string) string {
	return "{" + keyed(pepper, kind, value)[:32] + "}"
}

func (v *Verifications) keys(e164 string) (code, cooldown, daily string) {
	s := v.o.Prefix + "otp:" + subject(v.o.Pepper, "phone", e164)
	return s + ":code", s + ":cooldown", s + ":daily"
}

func (v *Verifications) hash(e164, code string) string {
	return keyed(v.o.Pepper, "otp", e164, code)
}

// issueScript stores a new code unless the number is in its cooldown or has
// had its daily codes. KEYS: code, cooldown, daily. ARGV: hash, ttl ms,
// cooldown ms, daily limit, day ms. Returns { 0 } when stored, { 1, ms } in
// the cooldown, { 2, ms } over the daily limit.
var issueScript = redis.NewScript(`
local cool = redis.call('PTTL', KEYS[2])
if cool > 0 then return {1, cool} end
local n = tonumber(redis.call('GET', KEYS[3]) or '0')
if n >= tonumber(ARGV[4]) then
  local t = redis.call('PTTL', KEYS[3])
  if t < 0 then
    redis.call('PEXPIRE', KEYS[3], ARGV[5])
    t = tonumber(ARGV[5])
  end
  return {2, t}
end
if redis.call('INCR', KEYS[3]) == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[5]) end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'a', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {0, 0}
`)

// Issue creates a code for the number and returns it; the caller sends it and
// forgets it. It replaces any earlier code. Errors: commserver.ErrRateLimited
// (with RetryAfter) during the cooldown or past the daily limit;
// commserver.ErrUnavailable when Redis does not answer.
func (v *Verifications) Issue(ctx context.Context, e164 string) (string, error) {
	code, err := newCode()
	if err != nil {
		return "", fmt.Errorf("otp: random: %w", err)
	}
	kc, kcool, kday := v.keys(e164)
	res, err := issueScript.Run(ctx, v.rdb, []string{kc, kcool, kday},
		v.hash(e164, code), v.o.TTL.Milliseconds(), v.o.Cooldown.Milliseconds(), v.o.DailyLimit,
		(24 * time.Hour).Milliseconds()).Int64Slice()
	if err != nil {
		return "", otpDown(err)
	}
	switch res[0] {
	case 0:
		return code, nil
	case 1:
		return "", &commserver.Error{Code: commserver.CodeRateLimited, Field: "phoneNumber",
			RetryAfter: time.Duration(res[1]) * time.Millisecond,
			Message:    "a code was sent to this number moments ago; wait before asking for another"}
	default:
		return "", &commserver.Error{Code: commserver.CodeRateLimited, Field: "phoneNumber",
			RetryAfter: time.Duration(res[1]) * time.Millisecond,
			Message:    "this number has had its verification codes for today"}
	}
}

// maxWatchRetries bounds the optimistic transaction's retries. Each round
// lets at least one checker through and a code takes at most MaxAttempts
// writes before it is gone, so contention ends quickly.
const maxWatchRetries = 32

// Check consumes the number's code if code is right, counts a wrong answer
// otherwise (the MaxAttempts-th wrong answer burns the code), and reports
// whether it was right. No code (never issued, expired, used, burned) is
// simply false. Errors: commserver.ErrUnavailable when Redis does not answer.
func (v *Verifications) Check(ctx context.Context, e164, code string) (bool, error) {
	key, _, _ := v.keys(e164)
	want := []byte(v.hash(e164, code))
	var matched bool
	check := func(tx *redis.Tx) error {
		matched = false
		vals, err := tx.HMGet(ctx, key, "h", "a").Result()
		if err != nil {
			return err
		}
		stored, _ := vals[0].(string)
		if stored == "" {
			return nil
		}
		attempts, _ := vals[1].(string)
		n, _ := strconv.Atoi(attempts)
		match := subtle.ConstantTimeCompare([]byte(stored), want) == 1
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if match || n+1 >= v.o.MaxAttempts {
				p.Del(ctx, key)
			} else {
				p.HIncrBy(ctx, key, "a", 1)
			}
			return nil
		})
		if err == nil {
			matched = match
		}
		return err
	}
	for range maxWatchRetries {
		err := v.rdb.Watch(ctx, check, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue // another check changed the code first: read it again
		}
		if err != nil {
			return false, otpDown(err)
		}
		return matched, nil
	}
	return false, otpDown(errors.New("otp: too many concurrent checks of one code"))
}

func otpDown(err error) error {
	return &commserver.Error{Code: commserver.CodeUnavailable,
		Message: "phone verification is temporarily unavailable; try again shortly", Err: err}
}
