// Package presence tracks which users have sockets open, on every pod. The
// gateway records each socket's connect and disconnect; chat and notify ask
// who is online.
//
// Tracker is the cluster-wide presence: one code path over a Store, either
// MemoryStore (one instance) or cluster.PresenceStore (Redis, many pods). It
// announces userOnline on a user's first socket anywhere and userOffline
// after a grace past their last one anywhere, each once across pods, and
// survives pods that die without a goodbye and a Redis that goes away.
//
// Memory is the synchronous, single-instance presence the gateway used before
// Tracker (Connect answers "first", Disconnect "last", no grace). It stays
// until the gateway is wired to Tracker (docs/cluster.md).
package presence

import (
	"context"
	"sync"
)

// Memory is presence for one instance, in this process's memory.
type Memory struct {
	mu      sync.Mutex
	sockets map[string]map[string]struct{} // user id -> socket ids
}

// NewMemory returns an empty in-process presence.
func NewMemory() *Memory { return &Memory{sockets: map[string]map[string]struct{}{}} }

// Connect records a socket of the user; first reports whether the user had no other.
func (m *Memory) Connect(_ context.Context, userID, socketID string) (first bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sockets[userID]
	if !ok {
		s = map[string]struct{}{}
		m.sockets[userID] = s
	}
	s[socketID] = struct{}{}
	return len(s) == 1, nil
}

// Disconnect forgets a socket of the user; last reports whether it was the user's last.
func (m *Memory) Disconnect(_ context.Context, userID, socketID string) (last bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sockets[userID]
	if !ok {
		return false, nil
	}
	if _, had := s[socketID]; !had {
		return false, nil
	}
	delete(s, socketID)
	if len(s) == 0 {
		delete(m.sockets, userID)
		return true, nil
	}
	return false, nil
}

// Online reports, for each user, whether they have a socket.
func (m *Memory) Online(_ context.Context, userIDs []string) (map[string]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]bool, len(userIDs))
	for _, u := range userIDs {
		out[u] = len(m.sockets[u]) > 0
	}
	return out, nil
}
