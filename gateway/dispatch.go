package gateway

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/gateway/socketio"
)

// handlerTimeout bounds one event's work (the store calls inside have their own, shorter deadlines).
const handlerTimeout = 15 * time.Second

// handler does one event's work and calls reply exactly once, with the
// fields of a successful ack or an error; it may do so after returning
// (sendMessage replies when its batched write is acknowledged).
type handler func(ctx context.Context, s *socketio.Socket, sess *session, p payload, reply func(map[string]any, error))

// syncHandler is a handler that replies with what it returns.
func syncHandler(fn func(ctx context.Context, s *socketio.Socket, sess *session, p payload) (map[string]any, error)) handler {
	return func(ctx context.Context, s *socketio.Socket, sess *session, p payload, reply func(map[string]any, error)) {
		reply(fn(ctx, s, sess, p))
	}
}

// handle runs one event's handler with what every event gets: the rate
// limit, payload checks, an acknowledgement when the client asked for one,
// an `error` event on failure, panic recovery, metrics, and shutdown tracking.
func (h *Hub) handle(s *socketio.Socket, event string, fn handler, args []any, ack socketio.AckFunc) {
	sess := sessionOf(s)
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
				ack(success(res))
			}
		})
	}
	defer func() {
		if r := recover(); r != nil {
			h.log.Error("event handler panic", "event", event, "socket", s.ID(), "user", sess.UserID, "panic", r, "stack", string(debug.Stack()))
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

// unknownEvent answers an event no handler serves. It counts against the
// rate too: each one costs an answer.
func (h *Hub) unknownEvent(s *socketio.Socket, event string, _ []any, ack socketio.AckFunc) {
	if !h.allow(s, sessionOf(s), event, ack) {
		return
	}
	if ack != nil {
		ack(failure(commserver.Errorf(commserver.CodeNotFound, "unknown event %q", commserver.Truncate(event, 100))))
	}
}

// allow applies the user's event rate (shared by the user's sockets and
// kept across reconnects). A refused event is answered RATE_LIMITED (ack and
// error event); a socket that keeps flooding far past its refusals is closed
// at the transport level, once, and what it sends meanwhile is dropped.
func (h *Hub) allow(s *socketio.Socket, sess *session, event string, ack socketio.AckFunc) bool {
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
		s.CloseTransport() // after the error just queued: the client reconnects, to the same budget
	}
	return false
}

// fail answers a failed event: an ack { ok: false, error } when asked for,
// and an `error` event { message, code } as the seed's clients expect.
func (h *Hub) fail(s *socketio.Socket, sess *session, event string, ack socketio.AckFunc, err error) {
	code := commserver.ErrorCode(err)
	if code == commserver.CodeInternal {
		h.log.Error("event failed", "event", event, "user", sess.UserID, "err", err)
	} else if code == commserver.CodeStorageUnavailable {
		if ok, dropped := h.logs.allow("store unavailable", time.Now()); ok {
			h.log.Warn("event failed: store unavailable", "event", event, "user", sess.UserID, "err", err, "suppressed", dropped)
		}
	}
	body := errorFields(err)
	body["event"] = event
	if event == "sendMessage" {
		body["message"], body["detail"] = sendFailedMessage, body["message"]
	}
	if event == "joinAsAdmin" && code == commserver.CodeForbidden {
		body["message"] = forbiddenAdminMessage
	}
	_ = s.Emit(eventError, body)
	if ack != nil {
		ack(failure(err))
	}
}

// success is a successful acknowledgement: { ok: true, ...fields }.
func success(fields map[string]any) map[string]any {
	out := map[string]any{"ok": true}
	for k, v := range fields {
		out[k] = v
	}
	return out
}

// failure is a failed acknowledgement: { ok: false, error: { code, message, field?, retryAfterMs? } }.
func failure(err error) map[string]any {
	return map[string]any{"ok": false, "error": errorFields(err)}
}
