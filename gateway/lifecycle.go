package gateway

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/fitmate/commserver/chat"
	"github.com/fitmate/commserver/gateway/socketio"
	"github.com/fitmate/commserver/notify"
)

// Events the server emits that are not chat's.
const (
	eventUserOnline   = "userOnline"
	eventUserOffline  = "userOffline"
	eventChatHistory  = "chatHistory"
	eventAllChatUsers = "allChatUsers"
	eventError        = "error"
	sendFailedMessage = "메시지 전송에 실패했습니다."
)

// Presence records this instance's sockets as they come and go; whoever
// implements it decides, across every instance, when a user comes online or
// goes offline and tells the hub (AnnouncePresence). Neither call waits.
type Presence interface {
	Connect(userID, socketID string)
	Disconnect(userID, socketID string)
}

// UnreadCounter counts a user's unread notifications (package notify).
type UnreadCounter interface {
	UnreadCount(ctx context.Context, userID string) (int64, error)
}

// ChatEvents is what the Socket.IO events ask of the chat domain (package chat).
type ChatEvents interface {
	ValidateRoomID(id string) error
	Join(ctx context.Context, id chat.Identity, roomID, since string, enter func()) ([]chat.Message, error)
	Send(ctx context.Context, id chat.Identity, in chat.SendInput, done func(chat.Message, error))
	ChatUsers(ctx context.Context, id chat.Identity) ([]chat.ChatUser, error)
	// RoomsOfUsers lists the rooms each user belongs to: who hears their presence.
	RoomsOfUsers(ctx context.Context, userIDs []string) (map[string][]string, error)
}

// SocketDeps are what the Socket.IO event handlers work with.
type SocketDeps struct {
	Verifier        *Verifier
	Chat            ChatEvents
	Unread          UnreadCounter
	Presence        Presence
	EventsPerMinute int
	EventBurst      int
	Metrics         *Metrics
}

// session is what the server knows about one socket (its Data). The layer
// runs a socket's middleware, connection handler, events and disconnect
// handler one at a time and in that order, and the disconnect handler
// exactly once, so a socket that drops while its connection handler waits
// on the store is still torn down, after it was set up.
type session struct {
	Principal
	expiry *socketio.Timer // the token's expiry while connected

	mu       sync.Mutex
	flooding bool // closed for flooding: further events are dropped unanswered
}

func sessionOf(s *socketio.Socket) *session {
	sess, _ := s.Data().(*session)
	return sess
}

// Serve installs the handshake middleware, the connection and disconnect
// handlers and the event handlers. A socket's handlers run on its own queue,
// in order, on the layer's worker pool, so one socket's slow store call
// never holds up another's.
func (h *Hub) Serve(d SocketDeps) {
	h.deps = d
	h.limits = newEventLimits(d.EventsPerMinute, d.EventBurst)
	h.logs = newLogLimiter(10 * time.Second)
	d.Metrics.observeHub(h)
	h.io.Use(h.authenticate)
	h.io.OnConnection(h.onConnect)
	h.io.OnDisconnect(h.onDisconnect)
	for name, fn := range map[string]handler{
		"joinChat":    syncHandler(h.joinChat),
		"leaveChat":   syncHandler(h.leaveChat),
		"sendMessage": h.sendMessage,
		"joinAsAdmin": syncHandler(h.joinAsAdmin),
	} {
		h.io.OnEvent(name, func(s *socketio.Socket, args []any, ack socketio.AckFunc) { h.handle(s, name, fn, args, ack) })
	}
	h.io.OnAnyEvent(h.unknownEvent)
}

func (h *Hub) onConnect(s *socketio.Socket) {
	sess := sessionOf(s)
	uid := sess.UserID
	s.Join(userRoom(uid))
	if !sess.ExpiresAt.IsZero() {
		sess.expiry = s.AfterFunc(time.Until(sess.ExpiresAt)+clockLeeway, h.tokenExpired)
	}
	h.deps.Presence.Connect(uid, s.ID())

	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	defer cancel()
	if n, err := h.deps.Unread.UnreadCount(ctx, uid); err != nil {
		h.log.Warn("unread count on connect", "user", uid, "err", err)
	} else {
		_ = s.Emit(notify.EventUnreadCount, n)
	}
}

// onDisconnect runs once per socket, after onConnect (the layer's order).
func (h *Hub) onDisconnect(s *socketio.Socket, _ string) {
	sess := sessionOf(s)
	if sess == nil {
		return
	}
	if sess.expiry != nil {
		sess.expiry.Stop()
	}
	h.deps.Presence.Disconnect(sess.UserID, s.ID())
}

// tokenExpired ends a socket whose token expired while it was connected:
// an error event saying why, then a transport close (after the event is
// written) that the client recovers from by reconnecting with whatever
// token its auth then holds.
func (h *Hub) tokenExpired(s *socketio.Socket) {
	_ = s.Emit(eventError, map[string]any{"code": string(CodeTokenExpired), "message": expiredWhileConnectedMessage})
	s.CloseTransport()
}

// AnnouncePresence tells a user's presence change, decided cluster-wide by
// the Presence implementation, to the admins and to the rooms the user
// belongs to: the people who show it. (The seed told every connected
// socket, which leaks who is online to everyone and costs O(users²).) It
// does not wait: changes go out in the order they were decided, from one
// goroutine that looks their audiences up a batch at a time, so a reconnect
// storm's thousands of announcements cost a few queries, not a goroutine
// and a query each.
func (h *Hub) AnnouncePresence(userID, socketID string, online bool) {
	h.announcing.Lock()
	h.announceQueue = append(h.announceQueue, presenceChange{userID: userID, socketID: socketID, online: online})
	start := !h.announcingNow
	h.announcingNow = true
	h.announcing.Unlock()
	if start {
		go h.announceLoop()
	}
}

type presenceChange struct {
	userID, socketID string
	online           bool
}

// maxAnnounceBatch is how many changes one audience look-up serves.
const maxAnnounceBatch = 500

// announceLoop sends the queued changes, in order, then exits.
func (h *Hub) announceLoop() {
	for {
		h.announcing.Lock()
		n := min(len(h.announceQueue), maxAnnounceBatch)
		if n == 0 {
			h.announceQueue, h.announcingNow = nil, false
			h.announcing.Unlock()
			return
		}
		batch := slices.Clone(h.announceQueue[:n])
		h.announceQueue = h.announceQueue[n:]
		h.announcing.Unlock()
		h.announce(batch)
	}
}

func (h *Hub) announce(batch []presenceChange) {
	users := make([]string, 0, len(batch))
	seen := make(map[string]bool, len(batch))
	for _, c := range batch {
		if !seen[c.userID] {
			seen[c.userID] = true
			users = append(users, c.userID)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	defer cancel()
	rooms, err := h.deps.Chat.RoomsOfUsers(ctx, users)
	if err != nil {
		// Still to the admins, and to the rooms found before the error.
		h.log.Warn("presence audience", "users", len(users), "err", err)
	}
	for _, c := range batch {
		op := h.io.To(adminRoom)
		for _, id := range rooms[c.userID] {
			op = op.To(chatRoom(id))
		}
		event, payload := eventUserOffline, map[string]any{"userId": c.userID}
		if c.online {
			event, payload = eventUserOnline, map[string]any{"userId": c.userID, "socketId": c.socketID}
		}
		if err := op.Emit(event, payload); err != nil {
			h.log.Warn("presence announcement", "user", c.userID, "event", event, "err", err)
		}
	}
}
