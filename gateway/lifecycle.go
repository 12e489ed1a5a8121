package gateway

import (
	"context"
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
	// RoomsOf lists the rooms a user belongs to: who hears their presence.
	RoomsOf(ctx context.Context, userID string) ([]string, error)
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
// socket, which leaks who is online to everyone and costs O(users²).) The
// audience is looked up off the caller's goroutine; one user's changes go
// out in the order they were decided, different users' side by side.
func (h *Hub) AnnouncePresence(userID, socketID string, online bool) {
	h.announcing.Lock()
	q, running := h.announceQueue[userID]
	h.announceQueue[userID] = append(q, presenceChange{socketID: socketID, online: online})
	h.announcing.Unlock()
	if !running {
		go h.announceLoop(userID)
	}
}

type presenceChange struct {
	socketID string
	online   bool
}

// announceLoop sends one user's queued changes, in order, then exits.
func (h *Hub) announceLoop(userID string) {
	for {
		h.announcing.Lock()
		q := h.announceQueue[userID]
		if len(q) == 0 {
			delete(h.announceQueue, userID)
			h.announcing.Unlock()
			return
		}
		c := q[0]
		h.announceQueue[userID] = q[1:]
		h.announcing.Unlock()
		h.announce(userID, c)
	}
}

func (h *Hub) announce(userID string, c presenceChange) {
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	defer cancel()
	op := h.io.To(adminRoom)
	ids, err := h.deps.Chat.RoomsOf(ctx, userID)
	if err != nil {
		h.log.Warn("presence audience", "user", userID, "err", err)
	}
	for _, id := range ids {
		op = op.To(chatRoom(id))
	}
	event, payload := eventUserOffline, map[string]any{"userId": userID}
	if c.online {
		event, payload = eventUserOnline, map[string]any{"userId": userID, "socketId": c.socketID}
	}
	if err := op.Emit(event, payload); err != nil {
		h.log.Warn("presence announcement", "user", userID, "event", event, "err", err)
	}
}
