package presence_test

import (
	"testing"

	"github.com/fitmate/commserver/presence"
	"github.com/fitmate/commserver/presence/presencetest"
)

// The in-memory store keeps the semantics the Redis one keeps (package
// cluster runs the same cases against the real Redis).
func TestMemoryStore(t *testing.T) {
	t.Parallel()
	presencetest.Run(t, func(*testing.T) presence.Store { return presence.NewMemoryStore() })
}
