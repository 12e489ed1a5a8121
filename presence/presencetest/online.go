package presencetest

import (
	"context"
	"sync"
)

// Online is who is online for tests of the packages that ask (chat's and
// notify's OnlineChecker): users are online between Connect and their last
// Disconnect, at once, with no grace. The product asks presence.Tracker.
type Online struct {
	mu      sync.Mutex
	sockets map[string]map[string]struct{} // user id -> socket ids
}

// NewOnline returns an empty Online.
func NewOnline() *Online { return &Online{sockets: map[string]map[string]struct{}{}} }

// Connect records a socket of the user; first reports whether the user had no other.
func (m *Online) Connect(_ context.Context, userID, socketID string) (first bool, err error) {
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
func (m *Online) Disconnect(_ context.Context, userID, socketID string) (last bool, err error) {
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
func (m *Online) Online(_ context.Context, userIDs []string) (map[string]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]bool, len(userIDs))
	for _, u := range userIDs {
		out[u] = len(m.sockets[u]) > 0
	}
	return out, nil
}
