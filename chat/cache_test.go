package chat

import (
	"fmt"
	"testing"
	"time"
)

func TestLRUEvictsLeastRecentlyUsed(t *testing.T) {
	c := newLRU[int](time.Minute, 3, 100, nil)
	for i, k := range []string{"a", "b", "c"} {
		c.put(k, i, c.generation())
	}
	if _, ok := c.get("a"); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	c.put("d", 3, c.generation())
	if _, ok := c.get("b"); ok {
		t.Fatal("b, the least recently used, was kept")
	}
	for _, k := range []string{"a", "c", "d"} {
		if _, ok := c.get(k); !ok {
			t.Fatalf("%s evicted", k)
		}
	}
	if c.len() != 3 {
		t.Fatalf("len = %d", c.len())
	}
}

func TestLRUBoundsWeight(t *testing.T) {
	c := newLRU(time.Minute, 100, 10, func(v []string) int { return 1 + len(v) })
	c.put("big", make([]string, 6), c.generation())   // 7
	c.put("small", make([]string, 1), c.generation()) // 2: 9 in all
	c.put("more", make([]string, 1), c.generation())  // 2: 11, big goes
	if _, ok := c.get("big"); ok {
		t.Fatal("over its weight, the cache kept its oldest entry")
	}
	c.put("huge", make([]string, 20), c.generation()) // over the bound alone: not cached
	if _, ok := c.get("huge"); ok || c.len() != 2 {
		t.Fatalf("an entry heavier than the bound was cached (len %d)", c.len())
	}
}

func TestLRUExpires(t *testing.T) {
	c := newLRU[int](30*time.Millisecond, 10, 10, nil)
	c.put("a", 1, c.generation())
	time.Sleep(40 * time.Millisecond)
	if _, ok := c.get("a"); ok || c.len() != 0 {
		t.Fatal("an expired entry was served")
	}
}

// A read that began before an invalidation does not put back what it read.
func TestLRUFillBeforeInvalidationDropped(t *testing.T) {
	c := newLRU[string](time.Minute, 10, 10, nil)
	gen := c.generation() // a store read begins
	c.remove("room")      // another instance announces a change meanwhile
	c.put("room", "old members", gen)
	if _, ok := c.get("room"); ok {
		t.Fatal("a fill from before the invalidation was cached")
	}
	gen = c.generation()
	c.replace("room", "written here") // this instance writes while a read is in flight
	c.put("room", "read before the write", gen)
	if v, _ := c.get("room"); v != "written here" {
		t.Fatalf("cached %q", v)
	}
	c.clear()
	if c.len() != 0 {
		t.Fatal("clear kept entries")
	}
}

func BenchmarkLRUGet(b *testing.B) {
	c := newLRU[int](time.Minute, 10_000, 10_000, nil)
	for i := range 10_000 {
		c.put(fmt.Sprint(i), i, c.generation())
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.get(fmt.Sprint(i % 10_000))
			i++
		}
	})
}
