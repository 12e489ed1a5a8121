package test

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// The chat REST surface: both paging styles, soft delete seen live, mark
// read, and who may call what.
func TestChatREST(t *testing.T) {
	srv := startServer(t, "SOCKET_EVENT_BURST=100")
	srv.putRoom(t, "room-r", alice, bob)
	c := newJS(t, srv)
	c.connect("alice", token(alice))
	c.connect("bob", token(bob))
	wantOK(t, "bob joins", c.emitAck("bob", "joinChat", map[string]any{"chatRoomId": "room-r"}))
	var ids []string
	for i := 1; i <= 25; i++ {
		ids = append(ids, send(t, c, "alice", "room-r", fmt.Sprintf("m%02d", i))["_id"].(string))
	}
	msgs := func(from, to int) []string { // m<from>..m<to>, oldest first
		var out []string
		for i := from; i <= to; i++ {
			out = append(out, fmt.Sprintf("m%02d", i))
		}
		return out
	}
	get := func(t *testing.T, user, q string) (int, map[string]any) {
		t.Helper()
		return srv.api(t, "GET", "/chat/rooms/room-r/messages"+q, bearerOf(user), nil)
	}

	t.Run("page paging", func(t *testing.T) {
		for _, tc := range []struct {
			q    string
			want []string
		}{
			{"", msgs(6, 25)}, // page 1, limit 20: the newest 20, oldest first
			{query("page", "1", "limit", "10"), msgs(16, 25)},
			{query("page", "2", "limit", "10"), msgs(6, 15)},
			{query("page", "3", "limit", "10"), msgs(1, 5)},
			{query("page", "4", "limit", "10"), nil},
		} {
			code, body := get(t, bob, tc.q)
			if code != 200 || body["success"] != true || body["totalCount"] != float64(25) {
				t.Fatalf("%s: %d %v", tc.q, code, body)
			}
			if got := textsOf(messagesOf(t, body)); !slices.Equal(got, tc.want) && !(len(got) == 0 && tc.want == nil) {
				t.Errorf("%s: %v, want %v", tc.q, got, tc.want)
			}
		}
	})

	t.Run("cursor paging neither skips nor repeats while messages arrive", func(t *testing.T) {
		code, body := get(t, bob, query("before", ids[24], "limit", "10"))
		if code != 200 || body["hasMore"] != true {
			t.Fatalf("%d %v", code, body)
		}
		page := messagesOf(t, body)
		if got := textsOf(page); !slices.Equal(got, msgs(15, 24)) {
			t.Fatalf("before m25: %v", got)
		}
		// New messages arrive between pages: a page-number client would now
		// see m15 again on page 2; the cursor does not.
		for i := 0; i < 3; i++ {
			send(t, c, "alice", "room-r", fmt.Sprintf("late%d", i))
		}
		code, body = get(t, bob, query("before", page[0]["_id"].(string), "limit", "10"))
		if got := textsOf(messagesOf(t, body)); code != 200 || !slices.Equal(got, msgs(5, 14)) || body["hasMore"] != true {
			t.Fatalf("before m15: %d %v hasMore %v", code, got, body["hasMore"])
		}
		code, body = get(t, bob, query("before", ids[4], "limit", "10"))
		if got := textsOf(messagesOf(t, body)); code != 200 || !slices.Equal(got, msgs(1, 4)) || body["hasMore"] != false {
			t.Fatalf("before m05: %d %v hasMore %v", code, got, body["hasMore"])
		}
		code, body = get(t, bob, query("before", ids[0], "limit", "10"))
		if code != 200 || len(messagesOf(t, body)) != 0 || body["hasMore"] != false {
			t.Fatalf("before m01: %d %v", code, body)
		}
		c.drain("bob", "newMessage")
	})

	t.Run("bad requests", func(t *testing.T) {
		for _, tc := range []struct {
			q     string
			code  int
			field string
		}{
			{query("page", "0"), 400, "page"},
			{query("page", "x"), 400, "page"},
			{query("limit", "101"), 400, "limit"},
			{query("limit", "0"), 400, "limit"},
			{query("before", "nope"), 400, "before"},
			{query("before", ids[0], "page", "2"), 400, "page"},
			{query("before", "0123456789abcdef01234567"), 404, "before"},
		} {
			code, body := get(t, bob, tc.q)
			e, _ := body["error"].(map[string]any)
			if code != tc.code || body["success"] != false || e["field"] != tc.field || e["message"] == "" {
				t.Errorf("%s: %d %v, want %d on field %s", tc.q, code, body, tc.code, tc.field)
			}
		}
		if code, body := srv.api(t, "GET", "/chat/rooms/room-r/messages", nil, nil); code != 401 {
			t.Errorf("no token: %d %v", code, body)
		}
		if code, body := srv.api(t, "GET", "/chat/rooms/room-r/messages", map[string]string{"Authorization": "Bearer garbage"}, nil); code != 401 {
			t.Errorf("bad token: %d %v", code, body)
		}
		if code, body := get(t, carol, ""); code != 403 || body["messages"] != nil {
			t.Errorf("non-member: %d %v", code, body)
		}
		if code, body := get(t, admin, ""); code != 403 {
			t.Errorf("user without admin role: %d %v", code, body)
		}
		if code, body := srv.api(t, "GET", "/chat/rooms/room-r/messages", bearerOf(admin, "role", "admin"), nil); code != 200 {
			t.Errorf("admin: %d %v", code, body)
		}
		if code, body := srv.api(t, "GET", "/chat/rooms/a%2Fb/messages", bearerOf(bob), nil); code != 400 && code != 404 {
			t.Errorf("room id with a slash: %d %v", code, body)
		}
	})

	t.Run("soft delete", func(t *testing.T) {
		victim := ids[24]
		if code, body := srv.api(t, "DELETE", "/chat/messages/"+victim, bearerOf(bob), nil); code != 404 {
			t.Fatalf("bob deletes alice's message: %d %v", code, body)
		}
		if code, body := srv.api(t, "DELETE", "/chat/messages/nope", bearerOf(alice), nil); code != 400 {
			t.Fatalf("bad id: %d %v", code, body)
		}
		code, body := srv.api(t, "DELETE", "/chat/messages/"+victim, bearerOf(alice), nil)
		if code != 200 || body["messageId"] != victim {
			t.Fatalf("alice deletes her message: %d %v", code, body)
		}
		d := c.waitEvent("bob", "messageDeleted").(map[string]any)
		if d["messageId"] != victim || d["chatRoomId"] != "room-r" {
			t.Errorf("messageDeleted %v", d)
		}
		// Gone from history and counts, by both paths.
		_, body = get(t, bob, query("limit", "100"))
		for _, m := range messagesOf(t, body) {
			if m["_id"] == victim {
				t.Errorf("deleted message still listed")
			}
		}
		if body["totalCount"] != float64(27) {
			t.Errorf("totalCount %v after delete, want 27", body["totalCount"])
		}
		c.emit("bob", "joinChat", map[string]any{"chatRoomId": "room-r"})
		h, _ := c.waitEvent("bob", "chatHistory").([]any)
		for _, m := range h {
			if m.(map[string]any)["_id"] == victim {
				t.Errorf("deleted message in chatHistory")
			}
		}
		// Deleting again is harmless and says nothing new; an admin may delete anyone's.
		if code, _ := srv.api(t, "DELETE", "/chat/messages/"+victim, bearerOf(alice), nil); code != 200 {
			t.Errorf("second delete: %d", code)
		}
		c.noEvent("bob", "messageDeleted", 150*time.Millisecond)
		if code, body := srv.api(t, "DELETE", "/chat/messages/"+ids[23], bearerOf(admin, "role", "admin"), nil); code != 200 {
			t.Errorf("admin deletes: %d %v", code, body)
		}
		c.waitEvent("bob", "messageDeleted")
	})

	t.Run("mark read", func(t *testing.T) {
		send(t, c, "bob", "room-r", "from bob")
		code, body := srv.api(t, "POST", "/chat/rooms/room-r/read", bearerOf(bob), nil)
		// All 28 of alice's messages, the 2 deleted ones too (as the seed's
		// updateMany did); bob's own message is not his to read.
		if code != 200 || body["modifiedCount"] != float64(28) {
			t.Fatalf("mark read: %d %v, want 28 modified", code, body)
		}
		code, body = srv.api(t, "POST", "/chat/rooms/room-r/read", bearerOf(bob), nil)
		if code != 200 || body["modifiedCount"] != float64(0) {
			t.Errorf("second mark read changed %v", body)
		}
		_, body = get(t, alice, query("limit", "100"))
		for _, m := range messagesOf(t, body) {
			rb := anyStrings(m["readBy"])
			switch m["senderId"] {
			case alice:
				if !slices.Equal(rb, []string{bob}) {
					t.Errorf("%v readBy %v, want [bob]", m["message"], rb)
				}
			case bob:
				if len(rb) != 0 {
					t.Errorf("bob's own message readBy %v", rb)
				}
			}
		}
		if code, _ := srv.api(t, "POST", "/chat/rooms/room-r/read", bearerOf(carol), nil); code != 403 {
			t.Errorf("non-member marks read: %d", code)
		}
	})
}

// Operators: liveness, readiness with the store.
func TestHealthAndReadiness(t *testing.T) {
	srv := startServer(t)
	if code, body := srv.api(t, "GET", "/healthz", nil, nil); code != 200 || body["status"] != "ok" {
		t.Errorf("/healthz %d %v", code, body)
	}
	if code, body := srv.api(t, "GET", "/readyz", nil, nil); code != 200 || body["status"] != "ready" {
		t.Errorf("/readyz %d %v", code, body)
	}
	if code, body := srv.api(t, "GET", "/no/such/route", nil, nil); code != 404 || body["success"] != false {
		t.Errorf("unknown route %d %v", code, body)
	}
}
