package test

import (
	"testing"
	"time"
)

// TestPresenceGraceAcrossAReload: a page reload (the last socket closes and
// a new one opens within PRESENCE_GRACE) announces nothing, while a user who
// really leaves goes offline once the grace has passed.
func TestPresenceGraceAcrossAReload(t *testing.T) {
	srv := startServer(t, "PRESENCE_GRACE=2s")
	c := newJS(t, srv)
	c.connect("admin", token(admin, "role", "admin"))
	wantOK(t, "joinAsAdmin", c.emitAck("admin", "joinAsAdmin"))

	c.connect("bob", token(bob))
	if on := c.waitEvent("admin", "userOnline").(map[string]any); on["userId"] != bob {
		t.Fatalf("userOnline %v, want bob's", on)
	}
	// The reload.
	c.close("bob")
	c.connect("bob", token(bob))

	// Markers: carol comes and goes after bob's reload; her userOffline
	// comes a grace after her close, which is after bob's close, and her
	// next userOnline after that. Anything about bob would have come first.
	c.connect("carol", token(carol))
	c.close("carol")
	for _, want := range []string{"userOnline", "userOffline"} {
		if p := c.waitEvent("admin", want, 10*time.Second).(map[string]any); p["userId"] != carol {
			t.Fatalf("%s %v, want carol's (bob flapped across his reload)", want, p)
		}
	}
	c.connect("carol", token(carol))
	if p := c.waitEvent("admin", "userOnline").(map[string]any); p["userId"] != carol {
		t.Fatalf("userOnline %v, want carol's", p)
	}
	if off := c.drain("admin", "userOffline"); len(off) != 0 {
		t.Fatalf("bob flapped across his reload: %v", off)
	}

	// Bob really leaves: offline once, after the grace.
	c.close("bob")
	if off := c.waitEvent("admin", "userOffline", 10*time.Second).(map[string]any); off["userId"] != bob {
		t.Fatalf("userOffline %v, want bob's", off)
	}
}
