package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/fitmate/commserver/presence"
	"github.com/redis/go-redis/v9"
)

// PresenceStore is presence.Store in Redis: every pod's sockets, leases and
// who is online, shared by all pods. Each operation is one Lua script, so it
// is atomic and the pod whose script flips a user's state is the one that
// announces it. Times are Redis's own clock (TIME), so pods' clocks need not agree.
//
// Key layout, version 1 (docs/cluster.md; KeyLayoutVersion), under base =
// <prefix>{presence:v1}: — the hash tag keeps every key in one slot, so the
// scripts also run on Redis Cluster:
//
//	base+"pods"         sorted set: pod id → end of its lease (Unix ms)
//	base+"pod:"+pod     hash: socket id → user id, the pod's sockets
//	base+"user:"+user   hash: socket id → pod id, the user's sockets
//	base+"online"       set: users announced online and not yet offline
//	base+"grace"        sorted set: user id → end of the grace (Unix ms)
type PresenceStore struct {
	rdb  redis.UniversalClient
	base string
}

var _ presence.Store = (*PresenceStore)(nil)

// KeyLayoutVersion is the version of the Redis layout of presence and of the
// cache-invalidation messages. A release that changes either incompatibly
// bumps it, so that its keys and channel differ from the running release's.
const KeyLayoutVersion = 1

// NewPresenceStore returns the store under prefix (CLUSTER_REDIS_PREFIX).
func NewPresenceStore(rdb redis.UniversalClient, prefix string) *PresenceStore {
	return &PresenceStore{rdb: rdb, base: PresenceBase(prefix)}
}

// PresenceBase is the start of every presence key under prefix.
func PresenceBase(prefix string) string {
	return prefix + "{presence:v" + strconv.Itoa(KeyLayoutVersion) + "}:"
}

func (s *PresenceStore) keys() []string {
	return []string{s.base + "pods", s.base + "online", s.base + "grace"}
}

// now is Redis's clock in milliseconds, as the scripts read it.
const luaNow = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// applyScript: KEYS pods, online, grace; ARGV base, pod, ttl ms, grace ms,
// then (kind "c" or "d", user, socket) per op. Returns (kind, user, socket)
// per change: "+" online, "-" offline.
var applyScript = redis.NewScript(luaNow + `
local base, pod = ARGV[1], ARGV[2]
local ttl, grace = tonumber(ARGV[3]), tonumber(ARGV[4])
local podkey = base .. 'pod:' .. pod
redis.call('ZADD', KEYS[1], now + ttl, pod)
local out = {}
for i = 5, #ARGV, 3 do
  local kind, user, sock = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local ukey = base .. 'user:' .. user
  if kind == 'c' then
    redis.call('HSET', ukey, sock, pod)
    redis.call('HSET', podkey, sock, user)
    redis.call('ZREM', KEYS[3], user)
    if redis.call('SADD', KEYS[2], user) == 1 then
      out[#out + 1] = '+'; out[#out + 1] = user; out[#out + 1] = sock
    end
  else
    redis.call('HDEL', podkey, sock)
    -- A socket id recovered on another pod is that pod's now: only the
    -- pod that holds it removes it.
    if redis.call('HGET', ukey, sock) == pod then
      redis.call('HDEL', ukey, sock)
      if redis.call('EXISTS', ukey) == 0 and redis.call('SISMEMBER', KEYS[2], user) == 1 then
        if grace <= 0 then
          redis.call('SREM', KEYS[2], user)
          out[#out + 1] = '-'; out[#out + 1] = user; out[#out + 1] = ''
        else
          redis.call('ZADD', KEYS[3], now + grace, user)
        end
      end
    end
  end
end
return out
`)

// heartbeatScript: KEYS pods; ARGV base, pod, ttl ms. Returns the pod's socket count.
var heartbeatScript = redis.NewScript(luaNow + `
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
return redis.call('HLEN', ARGV[1] .. 'pod:' .. ARGV[2])
`)

// sweepScript: KEYS pods, online, grace; ARGV base, limit, reap ("1" or "0").
// Returns { more, user... }: the users to announce offline.
var sweepScript = redis.NewScript(luaNow + `
local base, limit = ARGV[1], tonumber(ARGV[2])
local more = 0
if ARGV[3] == '1' then
  local budget = limit
  local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', 0, 8)
  for _, pod in ipairs(dead) do
    local podkey = base .. 'pod:' .. pod
    local cursor = '0'
    repeat
      if budget <= 0 then break end
      local r = redis.call('HSCAN', podkey, cursor, 'COUNT', 100)
      cursor = r[1]
      local f = r[2]
      for j = 1, #f, 2 do
        local sock, user = f[j], f[j + 1]
        local ukey = base .. 'user:' .. user
        redis.call('HDEL', podkey, sock)
        if redis.call('HGET', ukey, sock) == pod then -- not if recovered on a live pod since
          redis.call('HDEL', ukey, sock)
          if redis.call('EXISTS', ukey) == 0 and redis.call('SISMEMBER', KEYS[2], user) == 1 then
            redis.call('ZADD', KEYS[3], now, user)
          end
        end
        budget = budget - 1
      end
    until cursor == '0'
    if redis.call('EXISTS', podkey) == 0 then
      redis.call('ZREM', KEYS[1], pod)
    else
      more = 1
    end
  end
end
local out = { 0 }
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit)
if #due == limit then more = 1 end
for _, user in ipairs(due) do
  redis.call('ZREM', KEYS[3], user)
  if redis.call('EXISTS', base .. 'user:' .. user) == 0 and redis.call('SREM', KEYS[2], user) == 1 then
    out[#out + 1] = user
  end
end
out[1] = more
return out
`)

// leaveScript: KEYS pods; ARGV base, pod.
var leaveScript = redis.NewScript(`
if redis.call('EXISTS', ARGV[1] .. 'pod:' .. ARGV[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[2])
end
return 0
`)

// Apply implements presence.Store.
func (s *PresenceStore) Apply(ctx context.Context, pod string, ops []presence.Op, ttl, grace time.Duration) ([]presence.Change, error) {
	args := make([]any, 0, 4+3*len(ops))
	args = append(args, s.base, pod, ttl.Milliseconds(), grace.Milliseconds())
	for _, op := range ops {
		kind := "d"
		if op.Connect {
			kind = "c"
		}
		args = append(args, kind, op.UserID, op.SocketID)
	}
	res, err := applyScript.Run(ctx, s.rdb, s.keys(), args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("presence apply: %w", err)
	}
	if len(res)%3 != 0 {
		return nil, errors.New("presence apply: malformed answer")
	}
	out := make([]presence.Change, 0, len(res)/3)
	for i := 0; i < len(res); i += 3 {
		out = append(out, presence.Change{Online: res[i] == "+", UserID: res[i+1], SocketID: res[i+2]})
	}
	return out, nil
}

// Heartbeat implements presence.Store.
func (s *PresenceStore) Heartbeat(ctx context.Context, pod string, ttl time.Duration) (int, error) {
	n, err := heartbeatScript.Run(ctx, s.rdb, s.keys()[:1], s.base, pod, ttl.Milliseconds()).Int()
	if err != nil {
		return 0, fmt.Errorf("presence heartbeat: %w", err)
	}
	return n, nil
}

// Sockets implements presence.Store.
func (s *PresenceStore) Sockets(ctx context.Context, pod string) (map[string]string, error) {
	m, err := s.rdb.HGetAll(ctx, s.base+"pod:"+pod).Result()
	if err != nil {
		return nil, fmt.Errorf("presence sockets: %w", err)
	}
	return m, nil
}

// Sweep implements presence.Store.
func (s *PresenceStore) Sweep(ctx context.Context, reap bool, limit int) ([]string, bool, error) {
	r := "0"
	if reap {
		r = "1"
	}
	res, err := sweepScript.Run(ctx, s.rdb, s.keys(), s.base, limit, r).Slice()
	if err != nil {
		return nil, false, fmt.Errorf("presence sweep: %w", err)
	}
	if len(res) == 0 {
		return nil, false, errors.New("presence sweep: malformed answer")
	}
	more, _ := res[0].(int64)
	users := make([]string, 0, len(res)-1)
	for _, v := range res[1:] {
		if u, ok := v.(string); ok {
			users = append(users, u)
		}
	}
	return users, more == 1, nil
}

// Leave implements presence.Store.
func (s *PresenceStore) Leave(ctx context.Context, pod string) error {
	if err := leaveScript.Run(ctx, s.rdb, s.keys()[:1], s.base, pod).Err(); err != nil {
		return fmt.Errorf("presence leave: %w", err)
	}
	return nil
}

// Online implements presence.Store: a user has a socket while their hash
// exists (sockets of a dead pod count until a live pod reaps them).
func (s *PresenceStore) Online(ctx context.Context, userIDs []string) (map[string]bool, error) {
	out := make(map[string]bool, len(userIDs))
	if len(userIDs) == 0 {
		return out, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(userIDs))
	for i, u := range userIDs {
		cmds[i] = pipe.Exists(ctx, s.base+"user:"+u)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("presence online: %w", err)
	}
	for i, u := range userIDs {
		out[u] = cmds[i].Val() == 1
	}
	return out, nil
}
