package chat

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Invalidator tells the other instances that what they cache of a room is
// stale (package cluster publishes it through Redis; nil for one instance).
// Delivery is best effort: an instance that misses a message keeps the old
// member list for at most Options.MembershipTTL.
type Invalidator interface {
	// RoomChanged announces that roomID's members changed. It returns the
	// transport's error (Redis unreachable); the change itself is stored.
	RoomChanged(ctx context.Context, roomID string) error
}

// ForgetRoom drops the room from this instance's cache: the next look-up
// reads the store. The wiring calls it when another instance announces
// that the room's members changed.
func (s *Service) ForgetRoom(roomID string) { s.rooms.remove(roomID) }

// ForgetCached drops every cached room and admin status. The wiring calls
// it when announcements may have been missed (the invalidation channel was
// down), so nothing stale outlives the outage by more than a store read.
func (s *Service) ForgetCached() {
	s.rooms.clear()
	s.admins.clear()
}

// Cache bounds. Entries are weighed: a room by its member count (a member
// list is what costs memory), an admin status as 1.
const (
	maxCachedRooms       = 10_000
	maxCachedRoomMembers = 1_000_000 // member ids across cached rooms (~40 MB at worst)
	maxCachedAdmins      = 50_000
)

// lru is a bounded cache with expiry. When it is over its count or weight
// bound the least recently used entries go, so the rooms being chatted in
// stay and only cold ones are read again (the previous size-capped map
// cleared everything at once, and every busy room then hit the store).
//
// A look-up that misses reads the store and fills the entry with put, which
// passes the generation it read at: an invalidation in between bumps it and
// the fill is dropped, so a read that began before a change cannot bring
// back the old value after the change was announced.
type lru[V any] struct {
	mu        sync.Mutex
	ttl       time.Duration
	maxLen    int
	maxWeight int
	weigh     func(V) int
	ll        *list.List // front: most recently used
	items     map[string]*list.Element
	weight    int
	gen       uint64
}

type lruEntry[V any] struct {
	key    string
	val    V
	weight int
	at     time.Time
}

func newLRU[V any](ttl time.Duration, maxLen, maxWeight int, weigh func(V) int) *lru[V] {
	if weigh == nil {
		weigh = func(V) int { return 1 }
	}
	return &lru[V]{ttl: ttl, maxLen: maxLen, maxWeight: maxWeight, weigh: weigh, ll: list.New(), items: map[string]*list.Element{}}
}

// get returns the fresh entry of key.
func (c *lru[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.items[key]
	if !ok {
		return zero, false
	}
	e := el.Value.(*lruEntry[V])
	if time.Since(e.at) >= c.ttl {
		c.removeElement(el)
		return zero, false
	}
	c.ll.MoveToFront(el)
	return e.val, true
}

// generation is what a fill passes to put.
func (c *lru[V]) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put stores a value read from the store since generation gen; it is
// dropped when an invalidation came in between.
func (c *lru[V]) put(key string, val V, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	c.store(key, val)
}

// replace stores a value this instance just wrote, and makes fills begun
// before the write drop theirs.
func (c *lru[V]) replace(key string, val V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.store(key, val)
}

func (c *lru[V]) store(key string, val V) {
	if el, ok := c.items[key]; ok {
		c.removeElement(el)
	}
	e := &lruEntry[V]{key: key, val: val, weight: c.weigh(val), at: time.Now()}
	if e.weight > c.maxWeight {
		return // would evict everything else; not worth caching
	}
	c.items[key] = c.ll.PushFront(e)
	c.weight += e.weight
	for c.ll.Len() > c.maxLen || c.weight > c.maxWeight {
		c.removeElement(c.ll.Back())
	}
}

// remove drops key, and fills begun before.
func (c *lru[V]) remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if el, ok := c.items[key]; ok {
		c.removeElement(el)
	}
}

// clear drops everything, and fills begun before.
func (c *lru[V]) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.ll.Init()
	c.items = map[string]*list.Element{}
	c.weight = 0
}

func (c *lru[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

func (c *lru[V]) removeElement(el *list.Element) {
	e := el.Value.(*lruEntry[V])
	c.ll.Remove(el)
	delete(c.items, e.key)
	c.weight -= e.weight
}
