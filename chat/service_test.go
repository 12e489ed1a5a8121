package chat_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/chat"
	"github.com/fitmate/commserver/presence/presencetest"
	"github.com/fitmate/commserver/store"
)

// published is what the service handed to its Publisher: the gateway's hub
// in production; here a recorder, so that tests see what the rooms would hear.
type published struct {
	mu     sync.Mutex
	events []publishedEvent
}

type publishedEvent struct {
	room    string
	admins  bool
	event   string
	payload any
}

func (p *published) PublishRoom(_ context.Context, room string, admins bool, event string, payload any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, publishedEvent{room, admins, event, payload})
	return nil
}

func (p *published) EvictFromRoom(context.Context, string, []string) error { return nil }

func (p *published) take() []publishedEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.events
	p.events = nil
	return out
}

// newService runs the chat service on the real embedded store.
func newService(t *testing.T, opts chat.Options) (*chat.Service, *published, *store.DB) {
	t.Helper()
	pub := &published{}
	s, db := newServiceWith(t, opts, 5*time.Second, pub)
	return s, pub, db
}

// newServiceWith is newService with the store's timeout and a publisher of the test's.
func newServiceWith(t *testing.T, opts chat.Options, storeTimeout time.Duration, pub chat.Publisher) (*chat.Service, *store.DB) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir(), Timeout: storeTimeout}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	select {
	case <-db.IndexesReady():
	case <-time.After(30 * time.Second):
		t.Fatal("indexes not created in 30s")
	}
	if opts.MaxMessageLength == 0 {
		opts.MaxMessageLength = 4000
	}
	if opts.MaxRoomIDLength == 0 {
		opts.MaxRoomIDLength = 64
	}
	return chat.NewService(db, pub, presencetest.NewOnline(), nil, nil, opts, log), db
}

const (
	alice = "aaaaaaaaaaaaaaaaaaaaaaa1"
	bob   = "bbbbbbbbbbbbbbbbbbbbbbb2"
	carol = "ccccccccccccccccccccccc3"
)

func wantErr(t *testing.T, err error, code commserver.Code, field string) {
	t.Helper()
	var ce *commserver.Error
	if !errors.As(err, &ce) || ce.Code != code || ce.Field != field || ce.Message == "" {
		t.Fatalf("err = %#v, want %s on field %q", err, code, field)
	}
}

func TestValidateRoomID(t *testing.T) {
	s := chat.NewService(nil, nil, nil, nil, nil, chat.Options{MaxRoomIDLength: 16}, slog.Default())
	tests := []struct {
		id string
		ok bool
	}{
		{"room-1", true},
		{"a", true},
		{"Team_7.chat:24", true},
		{"aaaaaaaaaaaaaaaaaaaaaaa1", false}, // 24 characters: longer than 16
		{strings.Repeat("r", 16), true},
		{strings.Repeat("r", 17), false},
		{"", false},
		{"room 1", false},
		{"room/1", false},
		{"../admin", false},
		{"admin-room\x00", false},
		{"방-1", false},
		{"room$1", false},
		{"{\"$gt\":\"\"}", false},
	}
	for _, tt := range tests {
		err := s.ValidateRoomID(tt.id)
		if tt.ok && err != nil {
			t.Errorf("ValidateRoomID(%q) = %v", tt.id, err)
		}
		if !tt.ok {
			var ce *commserver.Error
			if !errors.As(err, &ce) || ce.Code != commserver.CodeInvalid || ce.Field != "chatRoomId" {
				t.Errorf("ValidateRoomID(%q) = %v, want INVALID_ARGUMENT on chatRoomId", tt.id, err)
			}
		}
	}
}

func TestValidateMessageID(t *testing.T) {
	for id, ok := range map[string]bool{
		"0123456789abcdef01234567": true, "0123456789ABCDEF01234567": true,
		"0123456789abcdef0123456": false, "0123456789abcdef012345678": false, "0123456789abcdef0123456g": false, "": false,
	} {
		if err := chat.ValidateMessageID("before", id); (err == nil) != ok {
			t.Errorf("ValidateMessageID(%q) = %v", id, err)
		}
	}
}

func TestSend(t *testing.T) {
	s, pub, _ := newService(t, chat.Options{MaxMessageLength: 10})
	ctx := context.Background()
	if _, err := s.PutRoom(ctx, "room-1", []string{alice, bob}); err != nil {
		t.Fatal(err)
	}
	user := chat.Identity{UserID: alice}
	adminID := chat.Identity{UserID: carol, Admin: true}
	in := func(mod func(*chat.SendInput)) chat.SendInput {
		i := chat.SendInput{ChatRoomID: "room-1", Text: "hello"}
		if mod != nil {
			mod(&i)
		}
		return i
	}
	refused := []struct {
		name  string
		id    chat.Identity
		in    chat.SendInput
		code  commserver.Code
		field string
	}{
		{"no room", user, in(func(i *chat.SendInput) { i.ChatRoomID = "" }), commserver.CodeInvalid, "chatRoomId"},
		{"bad room", user, in(func(i *chat.SendInput) { i.ChatRoomID = "a b" }), commserver.CodeInvalid, "chatRoomId"},
		{"empty text", user, in(func(i *chat.SendInput) { i.Text = "" }), commserver.CodeInvalid, "message"},
		{"blank text", user, in(func(i *chat.SendInput) { i.Text = " \t\n" }), commserver.CodeInvalid, "message"},
		{"11 characters", user, in(func(i *chat.SendInput) { i.Text = "abcdefghijk" }), commserver.CodeInvalid, "message"},
		{"11 Korean characters", user, in(func(i *chat.SendInput) { i.Text = strings.Repeat("가", 11) }), commserver.CodeInvalid, "message"},
		{"unknown type", user, in(func(i *chat.SendInput) { i.Type = "video" }), commserver.CodeInvalid, "messageType"},
		{"type in capitals", user, in(func(i *chat.SendInput) { i.Type = "TEXT" }), commserver.CodeInvalid, "messageType"},
		{"client id with a slash", user, in(func(i *chat.SendInput) { i.ClientMessageID = "a/b" }), commserver.CodeInvalid, "clientMessageId"},
		{"client id too long", user, in(func(i *chat.SendInput) { i.ClientMessageID = strings.Repeat("c", 65) }), commserver.CodeInvalid, "clientMessageId"},
		{"replyTo not an id", user, in(func(i *chat.SendInput) { i.ReplyTo = "x" }), commserver.CodeInvalid, "replyTo"},
		{"metadata too big", user, in(func(i *chat.SendInput) { i.Metadata = map[string]any{"x": strings.Repeat("m", 4100)} }), commserver.CodeInvalid, "metadata"},
		{"metadata not JSON", user, in(func(i *chat.SendInput) { i.Metadata = map[string]any{"f": func() {}} }), commserver.CodeInvalid, "metadata"},
		{"metadata key with $", user, in(func(i *chat.SendInput) { i.Metadata = map[string]any{"$where": "1"} }), commserver.CodeInvalid, "metadata"},
		{"metadata key with a dot", user, in(func(i *chat.SendInput) { i.Metadata = map[string]any{"a.b": 1.0} }), commserver.CodeInvalid, "metadata"},
		{"nested metadata key with $", user, in(func(i *chat.SendInput) {
			i.Metadata = map[string]any{"a": []any{map[string]any{"$set": 1.0}}}
		}), commserver.CodeInvalid, "metadata"},
		{"metadata 17 levels deep", user, in(func(i *chat.SendInput) { i.Metadata = nested(17) }), commserver.CodeInvalid, "metadata"},
		{"system from a user", user, in(func(i *chat.SendInput) { i.Type = chat.TypeSystem }), commserver.CodeForbidden, ""},
		{"not a member", chat.Identity{UserID: carol}, in(nil), commserver.CodeForbidden, ""},
		{"unregistered room", user, in(func(i *chat.SendInput) { i.ChatRoomID = "nobody-registered-this" }), commserver.CodeForbidden, ""},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := send(ctx, s, tt.id, tt.in)
			wantErr(t, err, tt.code, tt.field)
		})
	}
	if ev := pub.take(); len(ev) != 0 {
		t.Fatalf("refused messages were published: %v", ev)
	}
	page, err := s.History(ctx, user, "room-1", 1, 100)
	if err != nil || page.TotalCount != 0 {
		t.Fatalf("refused messages were stored: %v %v", page, err)
	}

	accepted := []struct {
		name     string
		id       chat.Identity
		in       chat.SendInput
		wantType string
	}{
		{"plain", user, in(nil), chat.TypeText},
		{"exactly 10 characters", user, in(func(i *chat.SendInput) { i.Text = "abcdefghij" }), chat.TypeText},
		{"10 Korean characters (30 bytes)", user, in(func(i *chat.SendInput) { i.Text = strings.Repeat("가", 10) }), chat.TypeText},
		{"metadata 16 levels deep", user, in(func(i *chat.SendInput) { i.Metadata = nested(16) }), chat.TypeText},
		{"image with metadata", user, in(func(i *chat.SendInput) { i.Type = chat.TypeImage; i.Metadata = map[string]any{"w": 640.0} }), chat.TypeImage},
		{"file", user, in(func(i *chat.SendInput) { i.Type = chat.TypeFile }), chat.TypeFile},
		{"system by an admin in a room they are not in", adminID, in(func(i *chat.SendInput) { i.Type = chat.TypeSystem }), chat.TypeSystem},
		{"reply", user, in(func(i *chat.SendInput) { i.ReplyTo = "0123456789abcdef01234567" }), chat.TypeText},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			m, err := send(ctx, s, tt.id, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if m.ID == "" || m.Type != tt.wantType || m.SenderID != tt.id.UserID || m.Text != tt.in.Text || m.Timestamp.IsZero() {
				t.Fatalf("stored %+v", m)
			}
			ev := pub.take()
			if len(ev) != 1 || ev[0].event != chat.EventNewMessage || ev[0].room != "room-1" || !ev[0].admins {
				t.Fatalf("published %+v, want one newMessage to room-1 and the admins", ev)
			}
			if got := ev[0].payload.(chat.Message); got.ID != m.ID {
				t.Fatalf("published message %s, stored %s", got.ID, m.ID)
			}
		})
	}
}

func TestSendIsIdempotentWithAClientMessageID(t *testing.T) {
	s, pub, _ := newService(t, chat.Options{})
	ctx := context.Background()
	if _, err := s.PutRoom(ctx, "room-1", []string{alice, bob}); err != nil {
		t.Fatal(err)
	}
	in := chat.SendInput{ChatRoomID: "room-1", Text: "once", ClientMessageID: "cm-1"}
	first, err := send(ctx, s, chat.Identity{UserID: alice}, in)
	if err != nil {
		t.Fatal(err)
	}
	// Concurrent retries, which the store batches into one insert.
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := send(ctx, s, chat.Identity{UserID: alice}, in)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = m.ID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != first.ID {
			t.Fatalf("retry returned %s, want the original %s", id, first.ID)
		}
	}
	if ev := pub.take(); len(ev) != 1 {
		t.Fatalf("published %d times, want once", len(ev))
	}
	other, err := send(ctx, s, chat.Identity{UserID: bob}, in)
	if err != nil || other.ID == first.ID {
		t.Fatalf("bob's message with alice's client id: %v %v", other.ID, err)
	}
	page, err := s.History(ctx, chat.Identity{UserID: alice}, "room-1", 1, 100)
	if err != nil || page.TotalCount != 2 {
		t.Fatalf("stored %d messages (%v), want 2", page.TotalCount, err)
	}
}

func TestAuthorization(t *testing.T) {
	ctx := context.Background()
	members, _, _ := newService(t, chat.Options{})
	if _, err := members.PutRoom(ctx, "room-1", []string{alice}); err != nil {
		t.Fatal(err)
	}
	open, _, _ := newService(t, chat.Options{OpenRooms: true})
	tests := []struct {
		name string
		s    *chat.Service
		id   chat.Identity
		room string
		want commserver.Code // empty: allowed
	}{
		{"member", members, chat.Identity{UserID: alice}, "room-1", ""},
		{"non-member", members, chat.Identity{UserID: bob}, "room-1", commserver.CodeForbidden},
		{"admin by token", members, chat.Identity{UserID: carol, Admin: true}, "room-1", ""},
		{"unregistered room", members, chat.Identity{UserID: alice}, "room-2", commserver.CodeForbidden},
		{"admin in an unregistered room", members, chat.Identity{UserID: carol, Admin: true}, "room-2", ""},
		{"open policy", open, chat.Identity{UserID: bob}, "any-room", ""},
		{"open policy still validates", open, chat.Identity{UserID: bob}, "any room", commserver.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entered := false
			_, err := tt.s.Join(ctx, tt.id, tt.room, "", func() { entered = true })
			if tt.want == "" {
				if err != nil || !entered {
					t.Fatalf("join: %v (entered %v)", err, entered)
				}
				return
			}
			if commserver.ErrorCode(err) != tt.want || entered {
				t.Fatalf("join: %v (entered %v), want %s and not entered", err, entered, tt.want)
			}
			if _, err := tt.s.History(ctx, tt.id, tt.room, 1, 10); commserver.ErrorCode(err) != tt.want {
				t.Fatalf("history: %v, want %s", err, tt.want)
			}
		})
	}
}

func TestHistoryValidation(t *testing.T) {
	s, _, _ := newService(t, chat.Options{})
	ctx := context.Background()
	id := chat.Identity{UserID: alice, Admin: true}
	tests := []struct {
		name        string
		page, limit int
		before      string
		field       string
	}{
		{"page 0", 0, 10, "", "page"},
		{"negative page", -1, 10, "", "page"},
		{"limit 0", 1, 0, "", "limit"},
		{"limit 101", 1, 101, "", "limit"},
		{"cursor limit 101", 0, 101, "0123456789abcdef01234567", "limit"},
		{"cursor not an id", 0, 10, "nope", "before"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.before != "" {
				_, err = s.HistoryBefore(ctx, id, "room-1", tt.before, tt.limit)
			} else {
				_, err = s.History(ctx, id, "room-1", tt.page, tt.limit)
			}
			wantErr(t, err, commserver.CodeInvalid, tt.field)
		})
	}
	_, err := s.HistoryBefore(ctx, id, "room-1", "0123456789abcdef01234567", 10)
	if commserver.ErrorCode(err) != commserver.CodeNotFound {
		t.Fatalf("unknown cursor: %v, want NOT_FOUND", err)
	}
}

func TestPutRoomValidation(t *testing.T) {
	s, _, _ := newService(t, chat.Options{})
	ctx := context.Background()
	if _, err := s.PutRoom(ctx, "room 1", []string{alice}); commserver.ErrorCode(err) != commserver.CodeInvalid {
		t.Errorf("bad room id: %v", err)
	}
	if _, err := s.PutRoom(ctx, "room-1", []string{alice, ""}); commserver.ErrorCode(err) != commserver.CodeInvalid {
		t.Errorf("empty member: %v", err)
	}
	if _, err := s.PutRoom(ctx, "room-1", []string{strings.Repeat("u", 129)}); commserver.ErrorCode(err) != commserver.CodeInvalid {
		t.Errorf("overlong member: %v", err)
	}
	r, err := s.PutRoom(ctx, "room-1", []string{alice, bob, alice})
	if err != nil || len(r.Members) != 2 {
		t.Fatalf("duplicates not removed: %v %v", r, err)
	}
	got, err := s.Room(ctx, "room-1")
	if err != nil || !got.HasMember(alice) || !got.HasMember(bob) || got.HasMember(carol) {
		t.Fatalf("room read back %v %v", got, err)
	}
}

// send is Service.Send, waiting for the batched write.
func send(ctx context.Context, s *chat.Service, id chat.Identity, in chat.SendInput) (chat.Message, error) {
	type result struct {
		m   chat.Message
		err error
	}
	ch := make(chan result, 1)
	s.Send(ctx, id, in, func(m chat.Message, err error) { ch <- result{m, err} })
	r := <-ch
	return r.m, r.err
}

// nested returns an object nesting depth levels: {"k": {"k": ... {}}}.
func nested(depth int) map[string]any {
	m := map[string]any{}
	for range depth - 1 {
		m = map[string]any{"k": m}
	}
	return m
}
