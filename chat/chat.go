// Package chat is the chat domain: rooms and their members, messages, who may
// read and write where, and what the room hears when something happens.
//
// The service does not know about Socket.IO or MongoDB. It consumes a Store
// (implemented by package store), a Publisher (implemented by the gateway's
// hub), an OnlineChecker (implemented by package presence) and an
// Invalidator (implemented by package cluster, so other instances drop what
// they cache of a room that changed), all declared here.
package chat

import (
	"strconv"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/internal/jsonw"
)

// Message types (the seed's enum).
const (
	TypeText   = "text"
	TypeImage  = "image"
	TypeFile   = "file"
	TypeSystem = "system"
)

// Events the room hears. Names are the seed's, the React app listens for them.
const (
	EventNewMessage     = "newMessage"
	EventMessageDeleted = "messageDeleted"
	EventUserJoined     = "userJoined"
)

// AdminRoom is the room every admin socket joins with joinAsAdmin: it hears
// every new message of every room.
const AdminRoom = "admin-room"

// HistoryLimit is how many messages chatHistory carries (the seed's 50).
const HistoryLimit = 50

// Message is a chat message as the app sees it: the JSON shape of a Mongoose
// document of the NestJS server (see MarshalJSON).
type Message struct {
	ID              string
	ChatRoomID      string
	SenderID        string
	Sender          *UserRef // set when the sender was populated from users (chatHistory, REST)
	Text            string
	Type            string
	Timestamp       time.Time
	ReadBy          []string
	IsDeleted       bool
	ReplyTo         string
	Metadata        map[string]any
	ClientMessageID string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// UserRef is a populated user: the fields Mongoose's populate('senderId', 'name email picture') kept.
type UserRef struct {
	ID      string  `json:"_id"`
	Name    *string `json:"name,omitempty"`
	Email   *string `json:"email,omitempty"`
	Picture *string `json:"picture,omitempty"`
}

// MarshalJSON writes the message as Mongoose's toJSON did: _id, the schema's
// fields, timestamps and __v; senderId is the populated user when Sender is set.
func (m Message) MarshalJSON() ([]byte, error) {
	return m.AppendJSON(make([]byte, 0, 384))
}

// AppendJSON appends what MarshalJSON writes. It is written by hand: a
// broadcast encodes its message once, on the sending pod's hot path.
func (m Message) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"_id":`...)
	b = jsonw.AppendString(b, m.ID)
	b = append(b, `,"chatRoomId":`...)
	b = jsonw.AppendString(b, m.ChatRoomID)
	b = append(b, `,"senderId":`...)
	if m.Sender != nil {
		if b, err = jsonw.AppendValue(b, m.Sender); err != nil {
			return b, err
		}
	} else {
		b = jsonw.AppendString(b, m.SenderID)
	}
	b = append(b, `,"message":`...)
	b = jsonw.AppendString(b, m.Text)
	b = append(b, `,"messageType":`...)
	b = jsonw.AppendString(b, m.Type)
	b = append(b, `,"timestamp":`...)
	b, _ = commserver.JSTime(m.Timestamp).AppendJSON(b)
	b = append(b, `,"readBy":`...)
	b = jsonw.AppendStrings(b, m.ReadBy)
	b = append(b, `,"isDeleted":`...)
	b = strconv.AppendBool(b, m.IsDeleted)
	if m.ReplyTo != "" {
		b = append(b, `,"replyTo":`...)
		b = jsonw.AppendString(b, m.ReplyTo)
	}
	if len(m.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		if b, err = jsonw.AppendValue(b, m.Metadata); err != nil {
			return b, err
		}
	}
	if m.ClientMessageID != "" {
		b = append(b, `,"clientMessageId":`...)
		b = jsonw.AppendString(b, m.ClientMessageID)
	}
	b = append(b, `,"createdAt":`...)
	b, _ = commserver.JSTime(m.CreatedAt).AppendJSON(b)
	b = append(b, `,"updatedAt":`...)
	b, _ = commserver.JSTime(m.UpdatedAt).AppendJSON(b)
	return append(b, `,"__v":0}`...), nil
}

// Room is a chat room: its id and the users who belong to it.
type Room struct {
	ID        string    `json:"_id"`
	Members   []string  `json:"members"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// HasMember reports whether userID belongs to the room.
func (r Room) HasMember(userID string) bool {
	for _, m := range r.Members {
		if m == userID {
			return true
		}
	}
	return false
}

// ChatUser is one row of allChatUsers: a user who has sent messages, with
// their last message (the seed's aggregation, with the user's document).
type ChatUser struct {
	ID              string         `json:"_id"`
	LastMessage     string         `json:"lastMessage"`
	LastMessageTime time.Time      `json:"lastMessageTime"`
	MessageCount    int64          `json:"messageCount"`
	UserInfo        map[string]any `json:"userInfo"`
}

// Identity is who is calling: the user id from a verified token, and whether
// the token or the user's document says admin.
type Identity struct {
	UserID string
	Admin  bool
}

// SendInput is what a client asks to post.
type SendInput struct {
	ChatRoomID      string
	Text            string
	Type            string // empty means text
	ClientMessageID string // optional: makes a retry idempotent
	ReplyTo         string // optional message id
	Metadata        map[string]any
}

// Page is one page of a room's history, oldest first.
type Page struct {
	Messages   []Message `json:"messages"`
	TotalCount int64     `json:"totalCount"`
}

// CursorPage is one page of a room's history read backwards from a cursor, oldest first.
type CursorPage struct {
	Messages []Message `json:"messages"`
	HasMore  bool      `json:"hasMore"`
}
