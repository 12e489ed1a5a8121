package notify

import (
	"container/heap"
	"context"
	"time"
)

// expiry is an unread notification's expiresAt, watched so its user's
// sockets get the lower count when it is gone.
type expiry struct {
	at     time.Time
	userID string
}

type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// watchExpiry asks Run to push a fresh count when the notification expires.
// Expiries beyond expiryHorizon, or asked for while Run is busy or stopped, are
// left to the next change or the cleanup job: reads never count an expired
// notification either way; only an open badge waits.
func (s *Service) watchExpiry(userID string, at time.Time) {
	if at.Sub(s.now()) > expiryHorizon {
		return
	}
	select {
	case s.expiries <- expiry{at: at, userID: userID}:
	default:
		s.log.Debug("expiry watch queue full; the cleanup job will push the count", "user", userID)
	}
}

// watchExpiries pushes a fresh count to each user whose watched notification
// expired, until ctx is done.
func (s *Service) watchExpiries(ctx context.Context) {
	var h expiryHeap
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var wake <-chan time.Time
		if len(h) > 0 {
			// A little after expiresAt: reads count a notification expired once now passes it.
			timer.Reset(time.Until(h[0].at) + 10*time.Millisecond)
			wake = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case e := <-s.expiries:
			if len(h) < maxWatched {
				heap.Push(&h, e)
			}
		case <-wake:
			due := map[string]bool{}
			for len(h) > 0 && !time.Now().Before(h[0].at) {
				due[heap.Pop(&h).(expiry).userID] = true
			}
			for u := range due {
				s.pushUnread(u)
			}
		}
	}
}
