package gateway

import (
	"context"

	"github.com/fitmate/commserver/chat"
	"github.com/fitmate/commserver/gateway/socketio"
)

// The client events: what each does, with the domain doing the work. The
// hub's dispatch (dispatch.go) gives each its rate limit, payload checks,
// acknowledgement and error event.

// joinChat { chatRoomId, since? } joins a chat room (members and admins),
// then sends chatHistory to this socket and userJoined to the others.
func (h *Hub) joinChat(ctx context.Context, s *socketio.Socket, sess *session, p payload) (map[string]any, error) {
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

// leaveChat { chatRoomId } leaves a chat room.
func (h *Hub) leaveChat(_ context.Context, s *socketio.Socket, _ *session, p payload) (map[string]any, error) {
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

// sendMessage { chatRoomId, message, messageType?, clientMessageId?,
// replyTo?, metadata? } stores a message; the room and the admins get
// newMessage once it is stored, and the sender's ack carries it.
func (h *Hub) sendMessage(ctx context.Context, _ *socketio.Socket, sess *session, p payload, reply func(map[string]any, error)) {
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

// joinAsAdmin (admins only) joins admin-room and sends allChatUsers.
func (h *Hub) joinAsAdmin(ctx context.Context, s *socketio.Socket, sess *session, _ payload) (map[string]any, error) {
	users, err := h.deps.Chat.ChatUsers(ctx, sess.Identity)
	if err != nil {
		return nil, err
	}
	s.Join(adminRoom)
	_ = s.Emit(eventAllChatUsers, users)
	return map[string]any{"count": len(users)}, nil
}
