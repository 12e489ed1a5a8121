package store

import (
	"bytes"
	"testing"
	"time"

	"github.com/fitmate/commserver/chat"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// FuzzMessageDocBSON: the hand-written encoder writes what the driver's
// reflection writes, byte for byte, and what it writes reads back.
func FuzzMessageDocBSON(f *testing.F) {
	f.Add("65a1b2c3d4e5f60718293a4b", "hello", "text", "65a1b2c3d4e5f60718293a4c", "", "", int64(1_700_000_000_123), uint8(1), false)
	f.Add("user-7", "héllo \x00 wörld", "", "not-an-id", "65a1b2c3d4e5f60718293a4d", "c-1", int64(-62135596800000), uint8(0), true)
	f.Add("", "", "image", "", "", "k", int64(0), uint8(12), false)
	f.Fuzz(func(t *testing.T, sender, text, typ, reader, replyTo, clientID string, ms int64, readers uint8, deleted bool) {
		at := time.UnixMilli(ms).Add(time.Duration(ms%1000) * time.Microsecond)
		m := chat.Message{
			ChatRoomID: "65a1b2c3d4e5f60718293a40", SenderID: sender, Text: text, Type: typ,
			Timestamp: at, CreatedAt: at, UpdatedAt: at.Add(time.Hour), IsDeleted: deleted,
			ReplyTo: replyTo, ClientMessageID: clientID,
		}
		if readers > 0 {
			m.ReadBy = []string{}
			for range readers % 13 {
				m.ReadBy = append(m.ReadBy, reader)
			}
		}
		d := newMessageDoc(m)
		d.V = int32(ms % 7)
		checkMessageDocBSON(t, d)
		if readers == 3 {
			d.ReadBy = nil // null, as the driver writes a nil slice
			checkMessageDocBSON(t, d)
		}
	})
}

func checkMessageDocBSON(t *testing.T, d messageDoc) {
	t.Helper()
	want, err := bson.Marshal(plainMessageDoc(d))
	if err != nil {
		t.Fatal(err)
	}
	got, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("hand-written BSON differs from reflection:\n got %v\nwant %v", bson.Raw(got), bson.Raw(want))
	}
	if _, ok := d.appendBSON(nil); !ok && d.Metadata == nil {
		t.Fatalf("appendBSON fell back for %+v", d)
	}
	var back messageDoc
	if err := bson.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if back.ID != d.ID || back.Message != d.Message || back.ClientMessageKey != d.ClientMessageKey {
		t.Fatalf("read back %+v from %+v", back, d)
	}
}

// TestMessageDocBSONFallback: a field the encoder has no case for goes to
// reflection, whole, and comes out as reflection writes it.
func TestMessageDocBSONFallback(t *testing.T) {
	d := newMessageDoc(chat.Message{ChatRoomID: "r", SenderID: "u", Text: "x",
		Metadata: map[string]any{"b": 1.5, "a": []any{"x", true}}})
	checkMessageDocBSON(t, d)
	d = newMessageDoc(chat.Message{ChatRoomID: "r", SenderID: "u", Text: "x"})
	d.SenderID = int64(42) // not an id we write; reflection must
	if _, ok := d.appendBSON(nil); ok {
		t.Fatal("appendBSON took an int64 id")
	}
	want, _ := bson.Marshal(plainMessageDoc(d))
	got, err := bson.Marshal(d)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("fallback: %v %v", bson.Raw(got), err)
	}
}

// TestInsertCommandDoc: the insert command written in one buffer is what
// the driver writes for the same bson.D, with and without a write concern.
func TestInsertCommandDoc(t *testing.T) {
	var docs []bson.Raw
	for i := range 12 {
		raw, err := bson.Marshal(newMessageDoc(chat.Message{ChatRoomID: "r", SenderID: "u", Text: string(rune('a' + i))}))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, raw)
	}
	wc, _ := bson.Marshal(bson.D{{Key: "w", Value: "majority"}, {Key: "j", Value: true}})
	for _, wc := range []bson.Raw{nil, wc} {
		d := bson.D{{Key: "insert", Value: "chatmessages"}, {Key: "documents", Value: docs}, {Key: "ordered", Value: false}}
		if wc != nil {
			d = append(d, bson.E{Key: "writeConcern", Value: wc})
		}
		want, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := insertCommandDoc("chatmessages", docs, wc, 0); !bytes.Equal(got, want) {
			t.Fatalf("insert command differs:\n got %v\nwant %v", got, bson.Raw(want))
		}
	}
}
