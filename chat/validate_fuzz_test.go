package chat

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	commserver "github.com/fitmate/commserver"
)

// FuzzValidateSend feeds sendMessage's fields (metadata as the JSON a
// client sends) to the validation every message passes before it is
// stored. Whatever comes in, the answer is nil or INVALID_ARGUMENT naming
// one of the fields, and what passes is what the store can take: a room id
// and client id of the allowed characters, a text within its length, a
// known type, an ObjectId to reply to, and metadata whose keys MongoDB
// stores as they are, nested at most 16 levels.
//
//	go test ./chat/ -run '^$' -fuzz FuzzValidateSend -fuzztime 5m
//
// The corpus is testdata/fuzz/FuzzValidateSend.
func FuzzValidateSend(f *testing.F) {
	s := NewService(nil, nil, nil, nil, nil, Options{MaxMessageLength: 4000, MaxRoomIDLength: 64}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.Add("room-1", "hello", "", "", "", []byte(`{"w":640}`))
	f.Add("room-1", "사진", "image", "c-1", "0123456789abcdef01234567", []byte(`{"size":{"w":1,"h":[1,{"x":null}]}}`))
	f.Add("room 1", " ", "TEXT", "a/b", "x", []byte(`{"$where":"1"}`))
	f.Add("r", "x", "system", "", "", []byte(`{"a.b":1}`))
	f.Add("r", "x", "", "", "", []byte(`{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{}}}}}}}}}}}}}}}}}`))
	f.Add("r", "x", "", "", "", []byte(`{"":1,"\u0000":2}`))
	fields := []string{"chatRoomId", "message", "messageType", "clientMessageId", "replyTo", "metadata"}
	f.Fuzz(func(t *testing.T, room, text, typ, clientID, replyTo string, metadata []byte) {
		in := SendInput{ChatRoomID: room, Text: text, Type: typ, ClientMessageID: clientID, ReplyTo: replyTo}
		if len(metadata) > 0 {
			var m map[string]any
			if json.Unmarshal(metadata, &m) == nil {
				in.Metadata = m
			}
		}
		err := s.validateSend(&in)
		if err != nil {
			var ce *commserver.Error
			if !errors.As(err, &ce) || ce.Code != commserver.CodeInvalid || !slices.Contains(fields, ce.Field) || ce.Message == "" {
				t.Fatalf("validateSend = %v, want INVALID_ARGUMENT naming a field", err)
			}
			return
		}
		switch {
		case !idChars.MatchString(in.ChatRoomID) || len(in.ChatRoomID) > 64:
			t.Fatalf("room id %q passed", in.ChatRoomID)
		case strings.TrimSpace(in.Text) == "" || utf8.RuneCountInString(in.Text) > 4000:
			t.Fatalf("text %q passed", in.Text)
		case !slices.Contains([]string{TypeText, TypeImage, TypeFile, TypeSystem}, in.Type):
			t.Fatalf("type %q passed", in.Type)
		case in.ClientMessageID != "" && (!idChars.MatchString(in.ClientMessageID) || len(in.ClientMessageID) > 64):
			t.Fatalf("client id %q passed", in.ClientMessageID)
		case in.ReplyTo != "" && !commserver.IsObjectID(in.ReplyTo):
			t.Fatalf("replyTo %q passed", in.ReplyTo)
		}
		if in.Metadata != nil {
			if b, _ := json.Marshal(in.Metadata); len(b) > maxMetadataBytes {
				t.Fatalf("metadata of %d bytes passed", len(b))
			}
			if depth, key := storable(in.Metadata, 1); depth > commserver.MaxDocumentDepth || key != nil {
				t.Fatalf("metadata nesting %d levels with key %v passed", depth, key)
			}
		}
	})
}

// storable returns how deep v nests and the first key MongoDB would refuse (nil if none).
func storable(v any, depth int) (int, *string) {
	deepest := depth
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if k == "" || k[0] == '$' || strings.ContainsAny(k, ".\x00") {
				return depth, &k
			}
			d, bad := storable(e, depth+1)
			if bad != nil {
				return d, bad
			}
			deepest = max(deepest, d)
		}
	case []any:
		for _, e := range t {
			d, bad := storable(e, depth+1)
			if bad != nil {
				return d, bad
			}
			deepest = max(deepest, d)
		}
	}
	return deepest, nil
}
