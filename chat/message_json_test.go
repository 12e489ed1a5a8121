package chat

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	commserver "github.com/fitmate/commserver"
)

// reflected is how the message was encoded before AppendJSON: a struct
// through encoding/json (HTML escaping off, as the packet encoder writes).
func reflected(t testing.TB, m Message) []byte {
	var sender any = m.SenderID
	if m.Sender != nil {
		sender = m.Sender
	}
	readBy := m.ReadBy
	if readBy == nil {
		readBy = []string{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	err := enc.Encode(struct {
		ID              string            `json:"_id"`
		ChatRoomID      string            `json:"chatRoomId"`
		SenderID        any               `json:"senderId"`
		Message         string            `json:"message"`
		MessageType     string            `json:"messageType"`
		Timestamp       commserver.JSTime `json:"timestamp"`
		ReadBy          []string          `json:"readBy"`
		IsDeleted       bool              `json:"isDeleted"`
		ReplyTo         string            `json:"replyTo,omitempty"`
		Metadata        map[string]any    `json:"metadata,omitempty"`
		ClientMessageID string            `json:"clientMessageId,omitempty"`
		CreatedAt       commserver.JSTime `json:"createdAt"`
		UpdatedAt       commserver.JSTime `json:"updatedAt"`
		V               int               `json:"__v"`
	}{m.ID, m.ChatRoomID, sender, m.Text, m.Type, commserver.JSTime(m.Timestamp), readBy, m.IsDeleted, m.ReplyTo,
		m.Metadata, m.ClientMessageID, commserver.JSTime(m.CreatedAt), commserver.JSTime(m.UpdatedAt), 0})
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}

func TestMessageAppendJSONMatchesReflection(t *testing.T) {
	ts := time.Date(2026, 11, 30, 23, 4, 5, 678_900_000, time.FixedZone("KST", 9*3600))
	name, pic := "Kim <Coach>", "https://x/p.png?a=1&b=2"
	for _, m := range []Message{
		{},
		{ID: "65a1", ChatRoomID: "room-1", SenderID: "u1", Text: "hi", Type: TypeText, Timestamp: ts, CreatedAt: ts, UpdatedAt: ts},
		{ID: "65a2", ChatRoomID: "r", SenderID: "u1", Sender: &UserRef{ID: "u1", Name: &name, Picture: &pic},
			Text: "운동 \"가자\"\n<b>&</b>\u2028\x01\xff", Type: "image", ReadBy: []string{"u1", "u2"}, IsDeleted: true,
			ReplyTo: "65a1", Metadata: map[string]any{"url": "https://x/?a=<1>", "n": 2.5, "nested": map[string]any{"k": []any{true, nil}}},
			ClientMessageID: "c-1", Timestamp: ts, CreatedAt: ts, UpdatedAt: ts.Add(time.Second)},
		{ID: "65a3", ReadBy: []string{}, Metadata: map[string]any{}},
	} {
		got, err := m.AppendJSON([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		if want := append([]byte("prefix"), reflected(t, m)...); !bytes.Equal(got, want) {
			t.Errorf("AppendJSON:\n got %s\nwant %s", got, want)
		}
		viaMarshal, err := json.Marshal(m) // REST: encoding/json around MarshalJSON, HTML escaped
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if json.Unmarshal(viaMarshal, &a) != nil || json.Unmarshal(got[len("prefix"):], &b) != nil {
			t.Fatalf("invalid JSON: %s / %s", viaMarshal, got)
		}
		if ja, jb := mustJSON(t, a), mustJSON(t, b); ja != jb {
			t.Errorf("json.Marshal and AppendJSON differ:\n%s\n%s", ja, jb)
		}
	}
}

func FuzzMessageAppendJSON(f *testing.F) {
	f.Add("room", "user", "text", "client", int64(0))
	f.Add("r\"", "\xff", "<&>\u2029", "", int64(1e15))
	f.Fuzz(func(t *testing.T, room, sender, text, client string, ms int64) {
		ts := time.UnixMilli(ms % 1e15)
		m := Message{ID: "x", ChatRoomID: room, SenderID: sender, Text: text, Type: TypeText, ClientMessageID: client,
			ReadBy: []string{sender}, Timestamp: ts, CreatedAt: ts, UpdatedAt: ts}
		got, err := m.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := reflected(t, m); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON:\n got %s\nwant %s", got, want)
		}
	})
}

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
