package gateway

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/chat"
	"github.com/fitmate/commserver/notify"
	"github.com/zishang520/socket.io/servers/socket/v3"
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

// Presence records sockets as they come and go, across every instance.
type Presence interface {
	// Connect records a socket; first reports whether it is the user's first anywhere.
	Connect(ctx context.Context, userID, socketID string) (first bool, err error)
	// Disconnect forgets a socket; last reports whether it was the user's last anywhere.
	Disconnect(ctx context.Context, userID, socketID string) (last bool, err error)
}

// UnreadCounter counts a user's unread notifications (package notify).
type UnreadCounter interface {
	UnreadCount(ctx context.Context, userID string) (int64, error)
}

// SocketDeps are what the Socket.IO event handlers work with.
type SocketDeps struct {
	Verifier        *Verifier
	Chat            *chat.Service
	Unread          UnreadCounter
	Presence        Presence
	EventsPerMinute int
	EventBurst      int
	Metrics         *Metrics
}

// session is what the server knows about one socket.
type session struct {
	Principal
	gate *connectGate // packets held since the CONNECT; released on connection

	// The socket's lifecycle. The connection handler waits on the store
	// (unread count, presence) while the client may already be gone, so the
	// teardown is registered before anything waits, and its presence part
	// waits for the connection handler to finish: a user's userOnline always
	// goes out before the matching userOffline, and a socket that was
	// recorded is always forgotten.
	ready     chan struct{} // closed when the connection handler has finished
	presented bool          // Presence.Connect answered: a Disconnect is owed (set before ready closes)
	mu        sync.Mutex
	gone      bool        // the socket disconnected
	expiry    *time.Timer // token expiry while connected
	flooding  bool        // closed for flooding: further events are dropped unanswered
}

// handlerTimeout bounds one event's work (the store calls inside have their own, shorter deadlines).
const handlerTimeout = 15 * time.Second

// Serve installs the handshake middleware and the event handlers. Handlers
// run on the socket's own queue (the library serialises each socket's
// events), so one socket's slow store call never holds up another's.
func (h *Hub) Serve(d SocketDeps) {
	h.deps = d
	h.limits = newEventLimits(d.EventsPerMinute, d.EventBurst)
	h.logs = newLogLimiter(10 * time.Second)
	h.handlers = map[string]handler{
		"joinChat":    syncHandler(h.joinChat),
		"leaveChat":   syncHandler(h.leaveChat),
		"sendMessage": h.sendMessage,
		"joinAsAdmin": syncHandler(h.joinAsAdmin),
	}
	nsp := h.io.Sockets()
	nsp.Use(h.authenticate)
	_ = nsp.On("connection", func(args ...any) {
		s, ok := args[0].(*socket.Socket)
		if !ok {
			return
		}
		h.onConnect(s)
	})
}

// authenticate is the handshake middleware: a socket without a valid token
// never connects. Its connect_error says why, with a stable code in data.
func (h *Hub) authenticate(s *socket.Socket, next func(*socket.ExtendedError)) {
	token := ""
	var gate *connectGate
	// refuse answers connect_error; what the client sent before the answer goes.
	refuse := func(message string, code commserver.Code) {
		gate.discard()
		next(socket.NewExtendedError(message, map[string]any{"code": string(code)}))
	}
	if hs := s.Handshake(); hs != nil {
		gate = takeGate(hs.Auth)
		if t, ok := hs.Auth[socketTokenField].(string); ok {
			token = t
		} else if _, present := hs.Auth[socketTokenField]; present {
			refuse("auth.token must be a string", CodeTokenMalformed)
			return
		}
		if token == "" {
			if v, ok := hs.Headers[authorizationHeader].([]string); ok && len(v) > 0 {
				token = bearer(v[0])
			}
		}
	}
	p, err := h.deps.Verifier.Verify(token)
	if err != nil {
		h.deps.Metrics.handshake(commserver.ErrorCode(err))
		h.log.Debug("handshake refused", "code", commserver.ErrorCode(err), "reason", commserver.ErrorMessage(err))
		refuse(commserver.ErrorMessage(err), commserver.ErrorCode(err))
		return
	}
	h.deps.Metrics.handshake("ok")
	s.SetData(&session{Principal: p, gate: gate, ready: make(chan struct{})})
	next(nil)
}

func sessionOf(s *socket.Socket) *session {
	sess, _ := s.Data().(*session)
	return sess
}

func (h *Hub) onConnect(s *socket.Socket) {
	sess := sessionOf(s)
	if sess == nil { // cannot happen: authenticate sets it
		s.Disconnect(true)
		return
	}
	defer close(sess.ready)
	uid := sess.UserID
	sid := string(s.Id())

	// Teardown first, before anything below can wait: a client that drops
	// the moment its CONNECT is answered must still be seen leaving, or it
	// stays online forever (a "ghost socket").
	h.deps.Metrics.connected.Inc()
	var once sync.Once
	teardown := func() { once.Do(func() { h.onDisconnect(sess, sid) }) }
	_ = s.On("disconnect", func(...any) { teardown() })
	if !s.Connected() { // gone before the listener was in place: it will not fire
		teardown()
		return
	}
	if rs := s.Conn().ReadyState(); rs != "open" {
		// zishang520/socket.io checks the connection is open, then registers
		// the socket with its client; a close in between never reaches the
		// socket, which would stay connected forever. Close it ourselves.
		h.log.Debug("socket's connection closed while it was being connected", "user", uid, "state", rs)
		s.Disconnect(true)
		teardown()
		return
	}

	// The socket is in the library's tables now: what the client sent right
	// after the CONNECT answer can go to it. It is queued behind this handler,
	// so it meets the listeners registered below.
	sess.gate.release()
	sess.gate = nil
	s.Join(userRoom(uid))

	// One listener per socket dispatches every event (a listener per event
	// costs each idle socket memory in the library's emitter).
	_ = s.OnAny(func(args ...any) {
		if len(args) == 0 {
			return
		}
		name, _ := args[0].(string)
		if fn, ok := h.handlers[name]; ok {
			h.handle(s, sess, name, fn, args[1:])
			return
		}
		// Unknown events count against the rate too: each one costs an answer.
		if !h.allow(s, sess, name, ackOf(args)) {
			return
		}
		if ack := ackOf(args); ack != nil {
			ack([]any{failure(commserver.Errorf(commserver.CodeNotFound, "unknown event %q", name))}, nil)
		}
	})

	if !sess.ExpiresAt.IsZero() {
		sess.mu.Lock()
		if !sess.gone {
			sess.expiry = time.AfterFunc(time.Until(sess.ExpiresAt)+clockLeeway, func() {
				_ = s.Emit(eventError, map[string]any{"code": string(CodeTokenExpired), "message": expiredWhileConnectedMessage})
				closeAfterFlush(s, time.Second)
			})
		}
		sess.mu.Unlock()
	}

	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	defer cancel()
	if n, err := h.deps.Unread.UnreadCount(ctx, uid); err != nil {
		h.log.Warn("unread count on connect", "user", uid, "err", err)
	} else {
		_ = s.Emit(notify.EventUnreadCount, n)
	}
	first, err := h.deps.Presence.Connect(ctx, uid, sid)
	if err != nil {
		h.log.Warn("presence connect", "user", uid, "err", err)
		return
	}
	sess.presented = true
	if first {
		h.announce(ctx, uid, eventUserOnline, map[string]any{"userId": uid, "socketId": sid})
	}
}

// onDisconnect is a socket's teardown, run once. Its presence part waits
// for the connection handler (off the library's goroutine), so that what
// the handler recorded is forgotten and announced after what it announced.
func (h *Hub) onDisconnect(sess *session, sid string) {
	h.deps.Metrics.connected.Dec()
	sess.mu.Lock()
	sess.gone = true
	if sess.expiry != nil {
		sess.expiry.Stop()
	}
	sess.mu.Unlock()
	go func() {
		<-sess.ready
		if !sess.presented {
			return
		}
		uid := sess.UserID
		ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
		defer cancel()
		if last, err := h.deps.Presence.Disconnect(ctx, uid, sid); err != nil {
			h.log.Warn("presence disconnect", "user", uid, "err", err)
		} else if last {
			h.announce(ctx, uid, eventUserOffline, map[string]any{"userId": uid})
		}
	}()
}

// announce tells a user's presence change to the admins and to the rooms the
// user belongs to: the people who show it. (The seed told every connected
// socket, which leaks who is online to everyone and costs O(users²).)
func (h *Hub) announce(ctx context.Context, userID, event string, payload map[string]any) {
	rooms := []socket.Room{adminRoom}
	ids, err := h.deps.Chat.RoomsOf(ctx, userID)
	if err != nil {
		h.log.Warn("presence audience", "user", userID, "err", err)
	}
	for _, id := range ids {
		rooms = append(rooms, chatRoom(id))
	}
	_ = h.io.To(rooms...).Emit(event, payload)
}

// handler does one event's work and calls reply exactly once, with the
// fields of a successful ack or an error; it may do so after returning
// (sendMessage replies when its batched write is acknowledged).
type handler func(ctx context.Context, s *socket.Socket, sess *session, p payload, reply func(map[string]any, error))

// syncHandler is a handler that replies with what it returns.
func syncHandler(fn func(ctx context.Context, s *socket.Socket, sess *session, p payload) (map[string]any, error)) handler {
	return func(ctx context.Context, s *socket.Socket, sess *session, p payload, reply func(map[string]any, error)) {
		reply(fn(ctx, s, sess, p))
	}
}

// handle runs one event's handler with what every event gets: the rate
// limit, payload checks, an acknowledgement when the client asked for one,
// an `error` event on failure, panic recovery, metrics, and shutdown tracking.
func (h *Hub) handle(s *socket.Socket, sess *session, event string, fn handler, args []any) {
	ack := ackOf(args)
	start := time.Now()
	if !h.allow(s, sess, event, ack) {
		return
	}
	if !h.track() {
		h.fail(s, sess, event, ack, &commserver.Error{Code: commserver.CodeUnavailable, Message: "server shutting down; retry"})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	var once sync.Once
	reply := func(res map[string]any, err error) {
		once.Do(func() {
			defer h.inflight.Done()
			cancel()
			h.deps.Metrics.event(event, err, time.Since(start))
			if err != nil {
				h.fail(s, sess, event, ack, err)
				return
			}
			if ack != nil {
				ack([]any{success(res)}, nil)
			}
		})
	}
	defer func() {
		if r := recover(); r != nil {
			h.log.Error("event handler panic", "event", event, "user", sess.UserID, "panic", r, "stack", string(debug.Stack()))
			reply(nil, errors.New("panic"))
		}
	}()
	p, err := payloadOf(args)
	if err != nil {
		reply(nil, err)
		return
	}
	fn(ctx, s, sess, p, reply)
}

// allow applies the user's event rate (shared by the user's sockets and
// kept across reconnects). A refused event is answered RATE_LIMITED (ack and
// error event); a socket that keeps flooding far past its refusals is closed
// at the transport level, once, and what it sends meanwhile is dropped.
func (h *Hub) allow(s *socket.Socket, sess *session, event string, ack socket.Ack) bool {
	now := time.Now()
	ok, abusive := h.limits.allow(sess.UserID, now)
	if ok {
		return true
	}
	sess.mu.Lock()
	flooding := sess.flooding
	sess.flooding = flooding || abusive
	sess.mu.Unlock()
	if flooding {
		return false
	}
	h.fail(s, sess, event, ack, &commserver.Error{Code: commserver.CodeRateLimited,
		Message: fmt.Sprintf("too many events: at most %d a minute", h.deps.EventsPerMinute)})
	if abusive {
		if ok, dropped := h.logs.allow("flood "+sess.UserID, now); ok {
			h.log.Warn("socket closed for flooding", "user", sess.UserID, "event", event, "suppressed", dropped)
		}
		closeAfterFlush(s, time.Second)
	}
	return false
}

// track counts an event in flight unless the server is closing.
func (h *Hub) track() bool {
	h.trackMu.Lock()
	defer h.trackMu.Unlock()
	select {
	case <-h.closing:
		return false
	default:
		h.inflight.Add(1)
		return true
	}
}

// Wait blocks until the events in flight have finished or ctx is done.
func (h *Hub) Wait(ctx context.Context) error {
	h.trackMu.Lock() // no track() after closing is closed; Add cannot race Wait
	h.trackMu.Unlock()
	done := make(chan struct{})
	go func() { h.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fail answers a failed event: an ack { ok: false, error } when asked for,
// and an `error` event { message, code } as the seed's clients expect.
func (h *Hub) fail(s *socket.Socket, sess *session, event string, ack socket.Ack, err error) {
	code := commserver.ErrorCode(err)
	if code == commserver.CodeInternal {
		h.log.Error("event failed", "event", event, "user", sess.UserID, "err", err)
	} else if code == commserver.CodeStorageUnavailable {
		if ok, dropped := h.logs.allow("store unavailable", time.Now()); ok {
			h.log.Warn("event failed: store unavailable", "event", event, "user", sess.UserID, "err", err, "suppressed", dropped)
		}
	}
	msg := commserver.ErrorMessage(err)
	body := map[string]any{"code": string(code), "message": msg, "event": event}
	if event == "sendMessage" {
		body["message"], body["detail"] = sendFailedMessage, msg
	}
	if event == "joinAsAdmin" && code == commserver.CodeForbidden {
		body["message"] = forbiddenAdminMessage
	}
	var ce *commserver.Error
	if errors.As(err, &ce) && ce.Field != "" {
		body["field"] = ce.Field
	}
	_ = s.Emit(eventError, body)
	if ack != nil {
		ack([]any{failure(err)}, nil)
	}
}

func success(fields map[string]any) map[string]any {
	out := map[string]any{"ok": true}
	for k, v := range fields {
		out[k] = v
	}
	return out
}

func failure(err error) map[string]any {
	e := map[string]any{"code": string(commserver.ErrorCode(err)), "message": commserver.ErrorMessage(err)}
	var ce *commserver.Error
	if errors.As(err, &ce) {
		if ce.Field != "" {
			e["field"] = ce.Field
		}
		if ce.RetryAfter > 0 {
			e["retryAfterMs"] = ce.RetryAfter.Milliseconds()
		}
	}
	return map[string]any{"ok": false, "error": e}
}

// The event handlers.

func (h *Hub) joinChat(ctx context.Context, s *socket.Socket, sess *session, p payload) (map[string]any, error) {
	room, err := p.str("chatRoomId", true)
	if err != nil {
		return nil, err
	}
	since, err := p.str("since", false)
	if err != nil {
		return nil, err
	}
	// Join before reading history: a message stored meanwhile then arrives
	// live (and perhaps in history too; clients dedupe by _id), never not at all.
	history, err := h.deps.Chat.Join(ctx, sess.Identity, room, since, func() { s.Join(chatRoom(room)) })
	if err != nil {
		return nil, err
	}
	_ = s.Emit(eventChatHistory, history)
	_ = s.To(chatRoom(room)).Emit(chat.EventUserJoined, map[string]any{"userId": sess.UserID, "chatRoomId": room})
	return map[string]any{"chatRoomId": room, "count": len(history)}, nil
}

func (h *Hub) leaveChat(_ context.Context, s *socket.Socket, _ *session, p payload) (map[string]any, error) {
	room, err := p.str("chatRoomId", true)
	if err != nil {
		return nil, err
	}
	if err := h.deps.Chat.ValidateRoomID(room); err != nil {
		return nil, err
	}
	s.Leave(chatRoom(room))
	return map[string]any{"chatRoomId": room}, nil
}

func (h *Hub) sendMessage(ctx context.Context, _ *socket.Socket, sess *session, p payload, reply func(map[string]any, error)) {
	in, err := sendInput(p)
	if err != nil {
		reply(nil, err)
		return
	}
	h.deps.Chat.Send(ctx, sess.Identity, in, func(m chat.Message, err error) {
		if err != nil {
			reply(nil, err)
			return
		}
		reply(map[string]any{"message": m}, nil)
	})
}

func sendInput(p payload) (chat.SendInput, error) {
	var in chat.SendInput
	var err error
	if in.ChatRoomID, err = p.str("chatRoomId", true); err != nil {
		return in, err
	}
	if in.Text, err = p.str("message", true); err != nil {
		return in, err
	}
	if in.Type, err = p.str("messageType", false); err != nil {
		return in, err
	}
	if in.ClientMessageID, err = p.str("clientMessageId", false); err != nil {
		return in, err
	}
	if in.ReplyTo, err = p.str("replyTo", false); err != nil {
		return in, err
	}
	in.Metadata, err = p.object("metadata")
	return in, err
}

func (h *Hub) joinAsAdmin(ctx context.Context, s *socket.Socket, sess *session, _ payload) (map[string]any, error) {
	users, err := h.deps.Chat.ChatUsers(ctx, sess.Identity)
	if err != nil {
		return nil, err
	}
	s.Join(adminRoom)
	_ = s.Emit(eventAllChatUsers, users)
	return map[string]any{"count": len(users)}, nil
}
