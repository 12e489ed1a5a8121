package store

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/fitmate/commserver/chat"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// rawDoc reads one document as stored, keeping field order and BSON types.
func rawDoc(t *testing.T, d *DB, col string, filter any) bson.D {
	t.Helper()
	var doc bson.D
	if err := d.db.Collection(col).FindOne(context.Background(), filter).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// normalize replaces the values of volatile fields (generated ids, the
// clock) so that the document can be compared with a golden file.
func normalize(doc bson.D, fields map[string]any) bson.D {
	out := make(bson.D, len(doc))
	for i, e := range doc {
		if v, ok := fields[e.Key]; ok {
			e.Value = v
		}
		out[i] = e
	}
	return out
}

// goldenDoc compares doc, as canonical extended JSON (which spells out
// every BSON type: $oid, $date, $numberInt), with testdata/name.golden.
func goldenDoc(t *testing.T, name string, doc bson.D) {
	t.Helper()
	got, err := bson.MarshalExtJSONIndent(doc, true, false, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, name+".golden", append(got, '\n'))
}

var (
	fixedTime = time.Date(2025, 3, 1, 12, 30, 45, 123_000_000, time.UTC)
	fixedOID  = bson.ObjectID{0x65, 0xe1, 0xc9, 0x00, 0, 0, 0, 0, 0, 0, 0, 1}
)

// The documents the server writes to chatmessages have Mongoose's shape:
// the schema's fields in its order, ObjectIds where Mongoose cast them,
// dates as BSON dates, __v an int32.
func TestMessageDocumentsGolden(t *testing.T) {
	d := openTestDB(t)
	tests := []struct {
		name string
		msg  chat.Message
	}{
		{"chatmessage_text", chat.Message{
			ChatRoomID: "room-1", SenderID: "aaaaaaaaaaaaaaaaaaaaaaa1", Text: "안녕하세요 👋", Type: chat.TypeText,
			Timestamp: fixedTime, ReadBy: []string{}, CreatedAt: fixedTime, UpdatedAt: fixedTime,
		}},
		{"chatmessage_full", chat.Message{
			ChatRoomID: "room-1", SenderID: "aaaaaaaaaaaaaaaaaaaaaaa1", Text: "look", Type: chat.TypeImage,
			Timestamp: fixedTime, ReadBy: []string{"bbbbbbbbbbbbbbbbbbbbbbb2", "42"}, ReplyTo: "0123456789abcdef01234567",
			Metadata: map[string]any{"width": 640.0}, ClientMessageID: "c-1", // one key: a map's order is random
			CreatedAt: fixedTime, UpdatedAt: fixedTime,
		}},
		{"chatmessage_numeric_sender", chat.Message{
			ChatRoomID: "room-2", SenderID: "9007199254740993", Text: "from a Spring long id", Type: chat.TypeText,
			Timestamp: fixedTime, ReadBy: []string{}, CreatedAt: fixedTime, UpdatedAt: fixedTime,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stored, created, err := insertMessage(context.Background(), d, tt.msg)
			if err != nil || !created {
				t.Fatalf("insert: %v (created %v)", err, created)
			}
			raw := rawDoc(t, d, colMessages, bson.M{"_id": mustOID(t, stored.ID)})
			goldenDoc(t, tt.name, normalize(raw, map[string]any{"_id": fixedOID}))

			// And it reads back as it went in.
			back, err := d.Message(context.Background(), stored.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.msg
			want.ID = stored.ID
			if !reflect.DeepEqual(back, want) {
				t.Errorf("read back\n %+v\nwant\n %+v", back, want)
			}
		})
	}
}

func TestRoomDocumentGolden(t *testing.T) {
	d := openTestDB(t)
	if _, _, err := d.PutRoom(context.Background(), "room-1", []string{"aaaaaaaaaaaaaaaaaaaaaaa1", "42"}); err != nil {
		t.Fatal(err)
	}
	raw := rawDoc(t, d, colRooms, bson.M{"_id": "room-1"})
	goldenDoc(t, "chatroom", normalize(raw, map[string]any{
		"createdAt": bson.NewDateTimeFromTime(fixedTime), "updatedAt": bson.NewDateTimeFromTime(fixedTime)}))
}

func mustOID(t *testing.T, hex string) bson.ObjectID {
	t.Helper()
	id, err := bson.ObjectIDFromHex(hex)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Documents the NestJS server wrote (or older ones, written before a field
// existed) read back correctly: ObjectId senderId and readBy, missing
// optional fields, a missing messageType (Mongoose's default is text).
func TestMongooseDocumentsReadBack(t *testing.T) {
	d := openTestDB(t)
	ctx := context.Background()
	alice, bob := mustOID(t, "aaaaaaaaaaaaaaaaaaaaaaa1"), mustOID(t, "bbbbbbbbbbbbbbbbbbbbbbb2")
	reply := mustOID(t, "0123456789abcdef01234567")
	at := func(min int) time.Time { return fixedTime.Add(time.Duration(min) * time.Minute) }
	tests := []struct {
		name string
		doc  bson.D
		want chat.Message
	}{
		{"as Mongoose wrote it", bson.D{
			{Key: "_id", Value: mustOID(t, "65e1c9000000000000000011")}, {Key: "chatRoomId", Value: "room-m"},
			{Key: "senderId", Value: alice}, {Key: "message", Value: "hi"}, {Key: "messageType", Value: "text"},
			{Key: "timestamp", Value: at(1)}, {Key: "readBy", Value: bson.A{bob}}, {Key: "isDeleted", Value: false},
			{Key: "createdAt", Value: at(1)}, {Key: "updatedAt", Value: at(2)}, {Key: "__v", Value: int32(0)},
		}, chat.Message{ID: "65e1c9000000000000000011", ChatRoomID: "room-m", SenderID: alice.Hex(), Text: "hi",
			Type: chat.TypeText, Timestamp: at(1), ReadBy: []string{bob.Hex()}, CreatedAt: at(1), UpdatedAt: at(2)}},
		{"with replyTo and metadata", bson.D{
			{Key: "_id", Value: mustOID(t, "65e1c9000000000000000012")}, {Key: "chatRoomId", Value: "room-m"},
			{Key: "senderId", Value: bob}, {Key: "message", Value: "photo"}, {Key: "messageType", Value: "image"},
			{Key: "timestamp", Value: at(2)}, {Key: "readBy", Value: bson.A{}}, {Key: "isDeleted", Value: false},
			{Key: "replyTo", Value: reply}, {Key: "metadata", Value: bson.D{{Key: "width", Value: int32(640)}}},
			{Key: "createdAt", Value: at(2)}, {Key: "updatedAt", Value: at(2)}, {Key: "__v", Value: int32(0)},
		}, chat.Message{ID: "65e1c9000000000000000012", ChatRoomID: "room-m", SenderID: bob.Hex(), Text: "photo",
			Type: chat.TypeImage, Timestamp: at(2), ReadBy: []string{}, ReplyTo: reply.Hex(), Metadata: map[string]any{"width": 640.0},
			CreatedAt: at(2), UpdatedAt: at(2)}},
		{"missing optional fields", bson.D{
			{Key: "_id", Value: mustOID(t, "65e1c9000000000000000013")}, {Key: "chatRoomId", Value: "room-m"},
			{Key: "senderId", Value: alice}, {Key: "message", Value: "old"}, {Key: "timestamp", Value: at(3)},
		}, chat.Message{ID: "65e1c9000000000000000013", ChatRoomID: "room-m", SenderID: alice.Hex(), Text: "old",
			Type: chat.TypeText, Timestamp: at(3), ReadBy: []string{}, CreatedAt: time.Time{}, UpdatedAt: time.Time{}}},
		{"string sender id", bson.D{
			{Key: "_id", Value: mustOID(t, "65e1c9000000000000000014")}, {Key: "chatRoomId", Value: "room-m"},
			{Key: "senderId", Value: "42"}, {Key: "message", Value: "from a numeric id"}, {Key: "messageType", Value: "text"},
			{Key: "timestamp", Value: at(4)}, {Key: "readBy", Value: bson.A{"7", alice}}, {Key: "isDeleted", Value: false},
			{Key: "__v", Value: int32(0)},
		}, chat.Message{ID: "65e1c9000000000000000014", ChatRoomID: "room-m", SenderID: "42", Text: "from a numeric id",
			Type: chat.TypeText, Timestamp: at(4), ReadBy: []string{"7", alice.Hex()}}},
	}
	for _, tt := range tests {
		if _, err := d.db.Collection(colMessages).InsertOne(ctx, tt.doc); err != nil {
			t.Fatal(err)
		}
	}
	reindex(t, d) // as at the first start over the NestJS server's documents
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Message(ctx, tt.want.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("read back\n %#v\nwant\n %#v", got, tt.want)
			}
		})
	}
	t.Run("history, newest first, populated", func(t *testing.T) {
		if _, err := d.db.Collection(colUsers).InsertOne(ctx, bson.M{"_id": alice, "name": "Alice", "email": "a@example.com",
			"password": "hash"}); err != nil {
			t.Fatal(err)
		}
		check := func(via string) {
			msgs, err := d.RecentMessages(ctx, "room-m", 50)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, m := range msgs {
				ids = append(ids, m.ID[len(m.ID)-2:])
			}
			if !reflect.DeepEqual(ids, []string{"14", "13", "12", "11"}) {
				t.Fatalf("%s: order %v, want newest first", via, ids)
			}
			s := msgs[3].Sender
			if s == nil || s.ID != alice.Hex() || s.Name == nil || *s.Name != "Alice" || s.Email == nil || s.Picture != nil {
				t.Fatalf("%s: populated sender %+v", via, s)
			}
			if s := msgs[0].Sender; s == nil || s.ID != "42" || s.Name != nil {
				t.Fatalf("%s: sender without a users document %+v", via, s)
			}
		}
		check("the embedded index")
		withoutIndex(t, d, func() { check("the documents") })
	})
	t.Run("mark read keeps ObjectIds", func(t *testing.T) {
		n, err := d.MarkRoomRead(ctx, "room-m", bob.Hex())
		// 13 (alice's, no readBy at all) and 14 ("42"'s); 11 already has bob, 12 is bob's own.
		if err != nil || n != 2 {
			t.Fatalf("MarkRoomRead = %d, %v; want 2", n, err)
		}
		raw := rawDoc(t, d, colMessages, bson.M{"_id": mustOID(t, "65e1c9000000000000000013")})
		for _, e := range raw {
			if e.Key == "readBy" {
				if a, ok := e.Value.(bson.A); !ok || len(a) != 1 || a[0] != bob {
					t.Fatalf("readBy %#v, want [ObjectId(bob)]", e.Value)
				}
				return
			}
		}
		t.Fatal("no readBy after mark read")
	})
}

// Nested metadata reads back as the JSON object it was (the driver decodes
// nested documents into bson.D, which would reach the app as a list of
// {Key, Value} pairs).
func TestMessageMetadataRoundTrips(t *testing.T) {
	d := openTestDB(t)
	meta := map[string]any{"file": map[string]any{"name": "run.gpx", "size": 2048.0, "tags": []any{"a", map[string]any{"b": true}}}}
	stored, _, err := insertMessage(context.Background(), d, chat.Message{ChatRoomID: "room-1", SenderID: "aaaaaaaaaaaaaaaaaaaaaaa1",
		Text: "route", Type: chat.TypeFile, Timestamp: fixedTime, ReadBy: []string{}, Metadata: meta, CreatedAt: fixedTime, UpdatedAt: fixedTime})
	if err != nil {
		t.Fatal(err)
	}
	back, err := d.Message(context.Background(), stored.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(back.Metadata)
	want, _ := json.Marshal(meta)
	if string(got) != string(want) {
		t.Fatalf("metadata read back as %s, want %s", got, want)
	}
}
