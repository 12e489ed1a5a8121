package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fitmate/commserver/store/storetest"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// notifyUser creates a notification through the service route and returns it.
func (s *server) notifyUser(t testing.TB, body map[string]any) map[string]any {
	t.Helper()
	if body["title"] == nil {
		body["title"] = "title"
	}
	if body["message"] == nil {
		body["message"] = "message"
	}
	if body["type"] == nil {
		body["type"] = "system"
	}
	code, res := s.api(t, "POST", "/notifications", serviceKey(), body)
	if code != http.StatusCreated || res["success"] != true {
		t.Fatalf("POST /notifications %v: %d %v", body, code, res)
	}
	n, _ := res["notification"].(map[string]any)
	if id, _ := n["_id"].(string); len(id) != 24 {
		t.Fatalf("created notification without an id: %v", res)
	}
	return n
}

// waitCount reads name's unreadNotificationCount events until one is want.
// Counts are absolute, so a repeated earlier value is harmless; the last
// one is what the badge shows.
func (j *js) waitCount(name string, want int) {
	j.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var seen []any
	for time.Now().Before(deadline) {
		args, err := j.tryWait(name, "unreadNotificationCount", time.Until(deadline))
		if err != nil {
			break
		}
		if len(args) > 0 {
			seen = append(seen, args[0])
			if args[0] == float64(want) {
				return
			}
		}
	}
	j.t.Fatalf("%s: no unreadNotificationCount %d (saw %v)", name, want, seen)
}

// lastCount drains name's count events and returns the last one (-1 if none).
func (j *js) lastCount(name string) float64 {
	counts := j.drain(name, "unreadNotificationCount")
	if len(counts) == 0 {
		return -1
	}
	return counts[len(counts)-1].(float64)
}

func TestNotificationReachesEveryTabAndReadsUpdateTheirCounts(t *testing.T) {
	srv := startServer(t)
	c := newJS(t, srv)
	c.connect("alice-laptop", token(alice), transports["polling+upgrade"])
	c.connect("alice-phone", token(alice), transports["websocket-only"])
	c.connect("bob", token(bob))
	tabs := []string{"alice-laptop", "alice-phone"}
	for _, tab := range append(tabs, "bob") {
		if got := c.waitEvent(tab, "unreadNotificationCount"); got != float64(0) {
			t.Fatalf("%s: count on connect = %v", tab, got)
		}
	}

	first := srv.notifyUser(t, map[string]any{"userId": alice, "title": "운동 완료! 🎉", "message": "잘했어요",
		"type": "workout_completed", "data": map[string]any{"duration": 30}, "priority": "high"})
	for _, tab := range tabs {
		got := c.waitEvent(tab, "newNotification").(map[string]any)
		if got["_id"] != first["_id"] || got["userId"] != alice || got["title"] != "운동 완료! 🎉" ||
			got["type"] != "workout_completed" || got["priority"] != "high" || got["isRead"] != false || got["__v"] != float64(0) {
			t.Errorf("%s: newNotification = %v", tab, got)
		}
		if d, _ := got["data"].(map[string]any); d["duration"] != float64(30) {
			t.Errorf("%s: data = %v", tab, got["data"])
		}
		c.waitCount(tab, 1)
	}
	second := srv.notifyUser(t, map[string]any{"userId": alice})
	for _, tab := range tabs {
		c.waitEvent(tab, "newNotification")
		c.waitCount(tab, 2)
	}

	// Mark one read through REST, as the app does: both tabs' badges follow.
	code, res := srv.api(t, "PATCH", "/notifications/"+first["_id"].(string)+"/read", bearerOf(alice), nil)
	if n, _ := res["notification"].(map[string]any); code != 200 || n["isRead"] != true || n["readAt"] == nil {
		t.Fatalf("mark read: %d %v", code, res)
	}
	for _, tab := range tabs {
		c.waitCount(tab, 1)
	}
	srv.notifyUser(t, map[string]any{"userId": alice})
	for _, tab := range tabs {
		c.waitCount(tab, 2)
	}
	code, res = srv.api(t, "PATCH", "/notifications/read-all", bearerOf(alice), nil)
	if code != 200 || res["modifiedCount"] != float64(2) {
		t.Fatalf("read all: %d %v", code, res)
	}
	for _, tab := range tabs {
		c.waitCount(tab, 0)
	}

	// Deleting an unread one lowers the count; deleting a read one changes nothing.
	third := srv.notifyUser(t, map[string]any{"userId": alice})
	for _, tab := range tabs {
		c.waitCount(tab, 1)
	}
	if code, res := srv.api(t, "DELETE", "/notifications/"+third["_id"].(string), bearerOf(alice), nil); code != 200 || res["notificationId"] != third["_id"] {
		t.Fatalf("delete: %d %v", code, res)
	}
	for _, tab := range tabs {
		c.waitCount(tab, 0)
	}
	if code, _ := srv.api(t, "DELETE", "/notifications/"+second["_id"].(string), bearerOf(alice), nil); code != 200 {
		t.Fatalf("delete a read one: %d", code)
	}
	c.noEvent("alice-laptop", "unreadNotificationCount", 300*time.Millisecond)

	if got := c.drain("bob", "newNotification"); len(got) != 0 {
		t.Errorf("bob heard alice's notifications: %v", got)
	}
	if got := c.drain("bob", "unreadNotificationCount"); len(got) != 0 {
		t.Errorf("bob got count pushes for alice's changes: %v", got)
	}
}

func TestOfflineUserFindsNotificationsAndTheRightCountOnConnect(t *testing.T) {
	srv := startServer(t)
	var ids []string
	for i := range 4 {
		n := srv.notifyUser(t, map[string]any{"userId": bob, "title": fmt.Sprintf("n%d", i)})
		ids = append(ids, n["_id"].(string))
		time.Sleep(5 * time.Millisecond) // distinct createdAt, so "newest first" is observable
	}
	soon := time.Now().Add(700 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	srv.notifyUser(t, map[string]any{"userId": bob, "title": "expires", "expiresAt": soon})
	if code, _ := srv.api(t, "PATCH", "/notifications/"+ids[0]+"/read", bearerOf(bob), nil); code != 200 {
		t.Fatalf("mark read while offline: %d", code)
	}
	time.Sleep(time.Second) // the short-lived one expires: the embedded store has no TTL monitor

	c := newJS(t, srv)
	c.connect("bob", token(bob))
	if got := c.waitEvent("bob", "unreadNotificationCount"); got != float64(3) {
		t.Fatalf("count on connect = %v, want 3 (4 stored, 1 read, 1 expired)", got)
	}
	code, res := srv.api(t, "GET", "/notifications?page=1&limit=3", bearerOf(bob), nil)
	if code != 200 || res["totalCount"] != float64(4) || res["unreadCount"] != float64(3) {
		t.Fatalf("list: %d %v", code, res)
	}
	list := res["notifications"].([]any)
	if len(list) != 3 {
		t.Fatalf("page of %d", len(list))
	}
	for i, want := range []string{ids[3], ids[2], ids[1]} {
		if got := list[i].(map[string]any)["_id"]; got != want {
			t.Errorf("notifications[%d] = %v, want %s (newest first)", i, got, want)
		}
	}
	code, res = srv.api(t, "GET", "/notifications?page=2&limit=3", bearerOf(bob), nil)
	if list := res["notifications"].([]any); code != 200 || len(list) != 1 || list[0].(map[string]any)["_id"] != ids[0] {
		t.Errorf("page 2: %d %v", code, res)
	}
	if code, res := srv.api(t, "GET", "/notifications/unread-count", bearerOf(bob), nil); code != 200 || res["unreadCount"] != float64(3) {
		t.Errorf("unread-count: %d %v", code, res)
	}
}

func TestNotificationArrivesOncePerSocketOnABusyServer(t *testing.T) {
	srv := startServer(t)
	srv.putRoom(t, "gym", bob, carol)
	c := newJS(t, srv)
	c.connect("alice-1", token(alice), transports["polling+upgrade"])
	c.connect("alice-2", token(alice), transports["websocket-only"])
	c.connect("alice-3", token(alice), transports["websocket-only"])
	c.connect("bob", token(bob))
	c.connect("carol", token(carol))
	for _, s := range []string{"bob", "carol"} {
		if ack := c.emitAck(s, "joinChat", map[string]any{"chatRoomId": "gym"}); ack["ok"] != true {
			t.Fatalf("%s joinChat: %v", s, ack)
		}
	}

	const perUser = 30
	var mu sync.Mutex
	created := map[string]map[string]bool{alice: {}, bob: {}}
	var wg sync.WaitGroup
	errs := make(chan error, 2*perUser)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 2*perUser; i += 6 {
				user := alice
				if i%2 == 1 {
					user = bob
				}
				code, res := srv.api(t, "POST", "/notifications", serviceKey(),
					map[string]any{"userId": user, "title": fmt.Sprint("busy ", i), "message": "m", "type": "system"})
				if code != http.StatusCreated {
					errs <- fmt.Errorf("create: %d %v", code, res)
					continue
				}
				mu.Lock()
				created[user][res["notification"].(map[string]any)["_id"].(string)] = true
				mu.Unlock()
			}
		}()
	}
	// Chat traffic meanwhile (within each socket's event burst).
	for i := range 20 {
		sender := []string{"bob", "carol"}[i%2]
		if ack := c.emitAck(sender, "sendMessage", map[string]any{"chatRoomId": "gym", "message": fmt.Sprint("set ", i)}); ack["ok"] != true {
			t.Fatalf("sendMessage: %v", ack)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	expect := map[string]map[string]bool{"alice-1": created[alice], "alice-2": created[alice], "alice-3": created[alice],
		"bob": created[bob], "carol": {}}
	for sock, want := range expect {
		var got []any
		deadline := time.Now().Add(10 * time.Second)
		for len(got) < len(want) && time.Now().Before(deadline) {
			got = append(got, c.drain(sock, "newNotification")...)
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond) // anything extra would have arrived by now
		got = append(got, c.drain(sock, "newNotification")...)
		seen := map[string]int{}
		for _, g := range got {
			seen[g.(map[string]any)["_id"].(string)]++
		}
		if len(got) != len(want) {
			t.Errorf("%s got %d newNotification, want %d", sock, len(got), len(want))
		}
		for id, n := range seen {
			if n != 1 || !want[id] {
				t.Errorf("%s got %s %d times (its own: %v)", sock, id, n, want[id])
			}
		}
		if len(want) > 0 {
			// The badge ends on the stored count, and stays there.
			last := float64(-1)
			eventually(t, 10*time.Second, func() error {
				if l := c.lastCount(sock); l != -1 {
					last = l
				}
				if last != float64(len(want)) {
					return fmt.Errorf("%s: last unreadNotificationCount %v, want %d", sock, last, len(want))
				}
				return nil
			})
			time.Sleep(200 * time.Millisecond)
			if l := c.lastCount(sock); l != -1 && l != float64(len(want)) {
				t.Errorf("%s: count moved on to %v", sock, l)
			}
		}
	}
}

func TestAnotherUserCannotReadMarkOrDeleteANotification(t *testing.T) {
	srv := startServer(t)
	c := newJS(t, srv)
	c.connect("alice", token(alice))
	c.waitCount("alice", 0)
	n := srv.notifyUser(t, map[string]any{"userId": alice, "title": "private"})
	c.waitCount("alice", 1)
	id := n["_id"].(string)

	code, res := srv.api(t, "GET", "/notifications", bearerOf(bob), nil)
	if code != 200 || res["totalCount"] != float64(0) || len(res["notifications"].([]any)) != 0 {
		t.Errorf("bob's list shows alice's: %d %v", code, res)
	}
	unknown := bson.NewObjectID().Hex()
	for _, probe := range []struct{ method, path string }{
		{"PATCH", "/notifications/" + id + "/read"},
		{"DELETE", "/notifications/" + id},
		{"PATCH", "/notifications/" + unknown + "/read"},
		{"DELETE", "/notifications/" + unknown},
	} {
		code, res := srv.api(t, probe.method, probe.path, bearerOf(bob), nil)
		e, _ := res["error"].(map[string]any)
		if code != http.StatusNotFound || res["success"] != false || e["code"] != "NOT_FOUND" {
			t.Errorf("bob %s %s: %d %v (want 404: someone else's id must look like no id)", probe.method, probe.path, code, res)
		}
	}
	code, res = srv.api(t, "PATCH", "/notifications/read-all", bearerOf(bob), nil)
	if code != 200 || res["modifiedCount"] != float64(0) {
		t.Errorf("bob read-all: %d %v", code, res)
	}
	c.noEvent("alice", "unreadNotificationCount", 300*time.Millisecond)
	code, res = srv.api(t, "GET", "/notifications", bearerOf(alice), nil)
	list, _ := res["notifications"].([]any)
	if code != 200 || res["unreadCount"] != float64(1) || len(list) != 1 || list[0].(map[string]any)["isRead"] != false {
		t.Errorf("alice's notification after bob's attempts: %d %v", code, res)
	}
}

func TestNotificationRoutesRefuseTheWrongCredentials(t *testing.T) {
	srv := startServer(t)
	body := map[string]any{"userId": alice, "title": "t", "message": "m", "type": "system", "exerciseName": "run",
		"duration": 10, "calories": 50, "goalName": "goal"}
	for _, route := range []string{"/notifications", "/notifications/workout-completed", "/notifications/goal-achieved", "/notifications/workout-reminder"} {
		for _, c := range []struct {
			name    string
			headers map[string]string
			status  int
			code    string
		}{
			{"no credentials", nil, 401, "UNAUTHENTICATED"},
			{"a user's JWT", bearerOf(alice), 403, "FORBIDDEN"},
			{"a wrong key", map[string]string{"X-API-Key": "not-the-key-0123456789"}, 401, "API_KEY_INVALID"},
			{"an expired admin JWT", map[string]string{"Authorization": "Bearer " + token(admin, "role", "admin", "exp", time.Now().Add(-time.Hour).Unix())}, 401, "TOKEN_EXPIRED"},
		} {
			code, res := srv.api(t, "POST", route, c.headers, body)
			e, _ := res["error"].(map[string]any)
			if code != c.status || res["success"] != false || e["code"] != c.code {
				t.Errorf("POST %s with %s: %d %v, want %d %s", route, c.name, code, res, c.status, c.code)
			}
		}
		if code, res := srv.api(t, "POST", route, bearerOf(admin, "role", "admin"), body); code != http.StatusCreated {
			t.Errorf("POST %s with an admin JWT: %d %v", route, code, res)
		}
		if code, res := srv.api(t, "POST", route, serviceKey(), body); code != http.StatusCreated {
			t.Errorf("POST %s with the service key: %d %v", route, code, res)
		}
	}
	for _, r := range []struct{ method, path string }{
		{"GET", "/notifications"}, {"GET", "/notifications/unread-count"}, {"PATCH", "/notifications/read-all"},
		{"PATCH", "/notifications/aaaaaaaaaaaaaaaaaaaaaaa1/read"}, {"DELETE", "/notifications/aaaaaaaaaaaaaaaaaaaaaaa1"},
	} {
		if code, res := srv.api(t, r.method, r.path, nil, nil); code != 401 || res["success"] != false {
			t.Errorf("%s %s without a token: %d %v", r.method, r.path, code, res)
		}
	}
	if code, res := srv.api(t, "GET", "/notifications/unread-count", bearerOf(alice), nil); code != 200 || res["unreadCount"] != float64(8) {
		t.Errorf("alice's unread count = %d %v, want the 8 created", code, res)
	}
}

func TestNotificationInputIsValidated(t *testing.T) {
	srv := startServer(t)
	ok := func() map[string]any {
		return map[string]any{"userId": alice, "title": "t", "message": "m", "type": "system"}
	}
	with := func(k string, v any) map[string]any { b := ok(); b[k] = v; return b }
	without := func(k string) map[string]any { b := ok(); delete(b, k); return b }
	cases := []struct {
		name, method, path string
		headers            map[string]string
		body               any
		field              string
	}{
		{"no userId", "POST", "/notifications", serviceKey(), without("userId"), "userId"},
		{"userId not text", "POST", "/notifications", serviceKey(), with("userId", 42), "userId"},
		{"no title", "POST", "/notifications", serviceKey(), without("title"), "title"},
		{"blank message", "POST", "/notifications", serviceKey(), with("message", "   "), "message"},
		{"title too long", "POST", "/notifications", serviceKey(), with("title", strings.Repeat("가", 201)), "title"},
		{"message too long", "POST", "/notifications", serviceKey(), with("message", strings.Repeat("a", 2001)), "message"},
		{"no type", "POST", "/notifications", serviceKey(), without("type"), "type"},
		{"unknown type", "POST", "/notifications", serviceKey(), with("type", "promotion"), "type"},
		{"unknown priority", "POST", "/notifications", serviceKey(), with("priority", "critical"), "priority"},
		{"data not an object", "POST", "/notifications", serviceKey(), with("data", []any{1, 2}), "data"},
		{"data too large", "POST", "/notifications", serviceKey(), with("data", map[string]any{"x": strings.Repeat("x", 9000)}), "data"},
		{"data key with $", "POST", "/notifications", serviceKey(), with("data", map[string]any{"$set": 1}), "data"},
		{"expiresAt not a date", "POST", "/notifications", serviceKey(), with("expiresAt", "tomorrow"), "expiresAt"},
		{"expiresAt in the past", "POST", "/notifications", serviceKey(), with("expiresAt", "2020-01-01T00:00:00Z"), "expiresAt"},
		{"body not JSON", "POST", "/notifications", serviceKey(), "{userId: alice", ""},
		{"body an array", "POST", "/notifications", serviceKey(), "[]", ""},
		{"workout without exerciseName", "POST", "/notifications/workout-completed", serviceKey(),
			map[string]any{"userId": alice, "duration": 30, "calories": 200}, "exerciseName"},
		{"workout duration as text", "POST", "/notifications/workout-completed", serviceKey(),
			map[string]any{"userId": alice, "exerciseName": "run", "duration": "thirty", "calories": 200}, "duration"},
		{"workout negative calories", "POST", "/notifications/workout-completed", serviceKey(),
			map[string]any{"userId": alice, "exerciseName": "run", "duration": 30, "calories": -1}, "calories"},
		{"goal without goalName", "POST", "/notifications/goal-achieved", serviceKey(), map[string]any{"userId": alice}, "goalName"},
		{"reminder without userId", "POST", "/notifications/workout-reminder", serviceKey(), map[string]any{}, "userId"},
		{"reminder userId not text", "POST", "/notifications/workout-reminder", serviceKey(), map[string]any{"userId": true}, "userId"},
		{"page 0", "GET", "/notifications?page=0", bearerOf(alice), nil, "page"},
		{"page not a number", "GET", "/notifications?page=two", bearerOf(alice), nil, "page"},
		{"limit too high", "GET", "/notifications?limit=1000", bearerOf(alice), nil, "limit"},
		{"limit 0", "GET", "/notifications?limit=0", bearerOf(alice), nil, "limit"},
		{"malformed id to mark", "PATCH", "/notifications/not-an-id/read", bearerOf(alice), nil, "id"},
		{"malformed id to delete", "DELETE", "/notifications/12345", bearerOf(alice), nil, "id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, res := srv.api(t, c.method, c.path, c.headers, c.body)
			e, _ := res["error"].(map[string]any)
			if code != http.StatusBadRequest || res["success"] != false || e["code"] != "INVALID_ARGUMENT" {
				t.Fatalf("%d %v, want 400 INVALID_ARGUMENT", code, res)
			}
			if msg, _ := e["message"].(string); msg == "" {
				t.Errorf("no message: %v", res)
			}
			if c.field != "" && e["field"] != c.field {
				t.Errorf("field = %v, want %s (%v)", e["field"], c.field, e["message"])
			}
		})
	}
	if code, res := srv.api(t, "GET", "/notifications", bearerOf(alice), nil); code != 200 || res["totalCount"] != float64(0) {
		t.Errorf("a refused notification was stored: %v", res)
	}
}

func TestHelperRoutesSendTheSeedsTexts(t *testing.T) {
	srv := startServer(t)
	c := newJS(t, srv)
	c.connect("alice", token(alice))
	c.waitCount("alice", 0)
	cases := []struct {
		path           string
		body           map[string]any
		title, message string
		typ            string
	}{
		{"/notifications/workout-completed", map[string]any{"userId": alice, "exerciseName": "벤치프레스", "duration": 45, "calories": 320.5, "workoutId": "w-1"},
			"운동 완료! 🎉", "벤치프레스 운동을 완료했습니다. 총 45분 동안 320.5칼로리를 소모했어요!", "workout_completed"},
		{"/notifications/goal-achieved", map[string]any{"userId": alice, "goalName": "체중 5kg 감량"},
			"목표 달성! 🏆", "체중 5kg 감량 목표를 달성했습니다! 축하드려요!", "goal_achieved"},
		{"/notifications/workout-reminder", map[string]any{"userId": alice},
			"운동 시간이에요! ⏰", "오늘의 운동을 시작해보세요. 건강한 하루를 만들어가요!", "workout_reminder"},
	}
	for i, h := range cases {
		code, res := srv.api(t, "POST", h.path, serviceKey(), h.body)
		n, _ := res["notification"].(map[string]any)
		if code != http.StatusCreated || n["title"] != h.title || n["message"] != h.message || n["type"] != h.typ {
			t.Fatalf("POST %s: %d %v", h.path, code, res)
		}
		live := c.waitEvent("alice", "newNotification").(map[string]any)
		if live["_id"] != n["_id"] || live["message"] != h.message {
			t.Errorf("newNotification = %v", live)
		}
		c.waitCount("alice", i+1)
	}
	code, res := srv.api(t, "GET", "/notifications?limit=1&page=3", bearerOf(alice), nil)
	list, _ := res["notifications"].([]any)
	if code != 200 || len(list) != 1 {
		t.Fatalf("list: %d %v", code, res)
	}
	data, _ := list[0].(map[string]any)["data"].(map[string]any)
	if data["workoutId"] != "w-1" || data["exerciseName"] != "벤치프레스" || data["duration"] != float64(45) || data["userId"] != nil {
		t.Errorf("workout notification data = %v (the seed stored the workout record)", data)
	}
}

func TestChatMessageNotifiesOfflineMembersOnly(t *testing.T) {
	srv := startServer(t)
	srv.putRoom(t, "room-9", alice, bob, carol)
	c := newJS(t, srv)
	c.connect("alice", token(alice))
	c.connect("carol", token(carol))
	for _, s := range []string{"alice", "carol"} {
		c.waitCount(s, 0)
		if ack := c.emitAck(s, "joinChat", map[string]any{"chatRoomId": "room-9"}); ack["ok"] != true {
			t.Fatalf("%s joinChat: %v", s, ack)
		}
	}
	start := time.Now()
	ack := c.emitAck("alice", "sendMessage", map[string]any{"chatRoomId": "room-9", "message": strings.Repeat("오늘 운동 어땠어요? ", 20)})
	if ack["ok"] != true {
		t.Fatalf("sendMessage: %v", ack)
	}
	t.Logf("sendMessage acknowledged in %v", time.Since(start))
	msgID := ack["message"].(map[string]any)["_id"]

	var n map[string]any
	eventually(t, 10*time.Second, func() error {
		_, res := srv.api(t, "GET", "/notifications", bearerOf(bob), nil)
		list, _ := res["notifications"].([]any)
		if len(list) != 1 {
			return fmt.Errorf("bob has %d notifications", len(list))
		}
		n = list[0].(map[string]any)
		return nil
	})
	data, _ := n["data"].(map[string]any)
	if n["type"] != "chat_message" || n["isRead"] != false || data["chatRoomId"] != "room-9" || data["messageId"] != msgID || data["senderId"] != alice {
		t.Errorf("bob's notification = %v", n)
	}
	if msg := []rune(n["message"].(string)); len(msg) > 100 {
		t.Errorf("preview of %d characters", len(msg))
	}
	for _, u := range []string{alice, carol} {
		if _, res := srv.api(t, "GET", "/notifications", bearerOf(u), nil); res["totalCount"] != float64(0) {
			t.Errorf("%s (online) was notified: %v", u, res)
		}
	}
	c.noEvent("carol", "newNotification", 100*time.Millisecond)
	c.connect("bob", token(bob))
	if got := c.waitEvent("bob", "unreadNotificationCount"); got != float64(1) {
		t.Errorf("bob's count on connect = %v, want 1", got)
	}
}

func TestUrgentNotificationOfAnOfflineOptedInUserGoesToTheOfflineChannel(t *testing.T) {
	dir := t.TempDir()
	oid := func(h string) bson.ObjectID { id, _ := bson.ObjectIDFromHex(h); return id }
	err := storetest.Insert(dir, "users",
		bson.M{"_id": oid(alice), "name": "Alice", "phoneNumber": "010-1234-5678", "smsNotificationEnabled": true},
		bson.M{"_id": oid(bob), "name": "Bob", "phoneNumber": "010-9999-8888", "smsNotificationEnabled": true},
		bson.M{"_id": oid(carol), "name": "Carol", "phoneNumber": "010-7777-6666", "smsNotificationEnabled": false},
	)
	if err != nil {
		t.Fatal(err)
	}
	// The offline channel is the SMS service; SMS_SENDER=log writes each text
	// to the log instead of Twilio, so the test reads the decisions there.
	srv := startServer(t, "DATA_DIR="+dir, "SMS_SENDER=log")
	c := newJS(t, srv)
	c.connect("bob", token(bob)) // online: the app reaches him
	c.waitCount("bob", 0)
	for _, u := range []string{alice, bob, carol} {
		srv.notifyUser(t, map[string]any{"userId": u, "title": "urgent for " + u, "priority": "urgent"})
	}
	srv.notifyUser(t, map[string]any{"userId": alice, "title": "normal for alice", "priority": "normal"})
	srv.notifyUser(t, map[string]any{"userId": alice, "title": "high for alice", "priority": "high"})

	var decisions []map[string]any
	eventually(t, 10*time.Second, func() error {
		decisions = offlineDecisions(srv.Logs())
		if len(decisions) < 2 {
			return fmt.Errorf("offline decisions logged: %v", decisions)
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond)
	decisions = offlineDecisions(srv.Logs())
	got := map[string]bool{}
	for _, d := range decisions {
		if d["to"] != "+8210****5678" {
			t.Errorf("offline text to %v, want alice's number, masked", d["to"])
		}
		title := strings.TrimPrefix(strings.SplitN(fmt.Sprint(d["text"]), "\n", 2)[0], "[FitMate] ")
		got[title] = true
	}
	if len(decisions) != 2 || !got["urgent for "+alice] || !got["high for alice"] {
		t.Errorf("offline decisions = %v, want alice's urgent and high ones", decisions)
	}
	if strings.Contains(srv.Logs(), "010-1234-5678") {
		t.Error("the log holds a whole phone number")
	}
}

// offlineDecisions are the texts the SMS service's log sender wrote (the server logs JSON).
func offlineDecisions(logs string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && strings.HasPrefix(fmt.Sprint(m["msg"]), "sms: SMS_SENDER=log") {
			out = append(out, m)
		}
	}
	return out
}

func TestExpiringNotificationLowersTheOpenBadge(t *testing.T) {
	srv := startServer(t)
	c := newJS(t, srv)
	c.connect("alice", token(alice))
	c.waitCount("alice", 0)
	srv.notifyUser(t, map[string]any{"userId": alice, "title": "stays"})
	c.waitCount("alice", 1)
	srv.notifyUser(t, map[string]any{"userId": alice, "title": "flash sale",
		"expiresAt": time.Now().Add(800 * time.Millisecond).UTC().Format(time.RFC3339Nano)})
	c.waitCount("alice", 2)
	c.waitCount("alice", 1) // pushed when it expires, with nobody touching anything
	code, res := srv.api(t, "GET", "/notifications", bearerOf(alice), nil)
	list, _ := res["notifications"].([]any)
	if code != 200 || res["totalCount"] != float64(1) || len(list) != 1 || list[0].(map[string]any)["title"] != "stays" {
		t.Errorf("list after expiry: %d %v", code, res)
	}
}
