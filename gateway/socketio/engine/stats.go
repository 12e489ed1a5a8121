package engine

import "sync/atomic"

type counters struct {
	opened, closed, upgrades, websockets atomic.Int64
	cutOff, oversize, refused            atomic.Int64
}

// Stats are a server's counters since it started, for metrics.
type Stats struct {
	Sessions   int   // open now
	Opened     int64 // sessions opened
	Closed     int64 // sessions closed
	Upgrades   int64 // polling sessions upgraded to WebSocket
	WebSockets int64 // WebSocket connections taken over (direct or upgrades)
	CutOff     int64 // sessions closed because the client did not read (MaxBacklog)
	Oversize   int64 // messages over MaxPayload
	Refused    int64 // requests refused by AllowRequest
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.RLock()
	n := len(s.sessions)
	s.mu.RUnlock()
	c := &s.stats
	return Stats{
		Sessions: n, Opened: c.opened.Load(), Closed: c.closed.Load(), Upgrades: c.upgrades.Load(),
		WebSockets: c.websockets.Load(), CutOff: c.cutOff.Load(), Oversize: c.oversize.Load(), Refused: c.refused.Load(),
	}
}
