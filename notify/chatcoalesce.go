package notify

import (
	"context"
	"sync"
	"time"

	"github.com/fitmate/commserver/chat"
)

// Offline members' chat notifications are coalesced per member and room.
// The first message of a room while a member is offline is notified at
// once (title 새 메시지 💬, its preview) and opens a window (ChatWindow, a
// minute by default). Messages of that room arriving within the window are
// only counted; when it ends, if any came, the member gets one notification
// standing for all of them (새 메시지 N개 · <the latest one's preview>,
// data.count N, data.messageId the latest) and a new window opens; a window
// that ends with nothing counted closes. So a flood of any length costs an
// offline member one notification at its start and at most one a minute
// after it, per room, and one unread recount each.
//
// Windows are kept per instance (a room whose senders use several pods gets
// one series per pod) and in memory: a restart sums up what was counted
// before it stops (Run), and forgets open windows.

// maxChatWindows bounds the windows kept; past it, messages are notified one by one.
const maxChatWindows = 100_000

type chatKey struct{ user, room string }

// chatWindow is one member's window in one room.
type chatWindow struct {
	end    time.Time
	count  int          // messages counted since the window opened
	latest chat.Message // the last one counted
}

type chatWindows struct {
	window time.Duration
	mu     sync.Mutex
	open   map[chatKey]*chatWindow
}

func newChatWindows(window time.Duration) *chatWindows {
	return &chatWindows{window: window, open: map[chatKey]*chatWindow{}}
}

// counted reports whether m is counted in user's open window of its room
// (no notification now); otherwise it opens one and the caller notifies.
func (c *chatWindows) counted(user string, m chat.Message, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := chatKey{user, m.ChatRoomID}
	if w := c.open[k]; w != nil && now.Before(w.end) {
		w.count++
		w.latest = m
		return true
	}
	if len(c.open) < maxChatWindows {
		c.open[k] = &chatWindow{end: now.Add(c.window)}
	}
	return false
}

// due takes the windows that ended by now (all of them when all is set):
// those that counted messages are returned, and reopen unless all is set;
// the others close.
func (c *chatWindows) due(now time.Time, all bool) []Notification {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Notification
	for k, w := range c.open {
		if !all && now.Before(w.end) {
			continue
		}
		if w.count == 0 {
			delete(c.open, k)
			continue
		}
		out = append(out, chatNotification(k.user, w.latest, w.count, now))
		if all {
			delete(c.open, k)
		} else {
			c.open[k] = &chatWindow{end: now.Add(c.window)}
		}
	}
	return out
}

// sumUpChats notifies the counted messages of windows as they end, until
// ctx is done; then it notifies what every open window counted.
func (s *Service) sumUpChats(ctx context.Context) {
	tick := time.NewTicker(min(time.Second, s.chats.window/4))
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			s.notifyChats(s.chats.due(s.now().UTC().Truncate(time.Millisecond), false))
		case <-ctx.Done():
			s.notifyChats(s.chats.due(s.now().UTC().Truncate(time.Millisecond), true))
			return
		}
	}
}

func (s *Service) notifyChats(ns []Notification) {
	if len(ns) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), backgroundTimeout)
	defer cancel()
	stored, err := s.store.InsertNotifications(ctx, ns)
	if err != nil {
		s.log.Warn("chat message notifications (summaries)", "notifications", len(ns), "err", err)
		return
	}
	s.deliver(ctx, stored)
}
