package notify_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fitmate/commserver/notify"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestNotificationJSON pins the JSON the app gets: Mongoose's toJSON shape,
// dates as JavaScript writes them, optional fields left out when unset.
func TestNotificationJSON(t *testing.T) {
	created := time.Date(2025, 3, 1, 9, 30, 0, 120_000_000, time.FixedZone("KST", 9*3600))
	expires := time.Date(2025, 3, 8, 0, 0, 0, 0, time.UTC)
	read := time.Date(2025, 3, 1, 1, 0, 0, 0, time.UTC)
	list := []notify.Notification{
		{ID: "65e1a2b3c4d5e6f708192a3b", UserID: "aaaaaaaaaaaaaaaaaaaaaaa1", Title: "운동 시간이에요! ⏰",
			Message: "오늘의 운동을 시작해보세요. 건강한 하루를 만들어가요!", Type: notify.TypeWorkoutReminder,
			CreatedAt: created, UpdatedAt: created, Priority: notify.PriorityNormal},
		{ID: "65e1a2b3c4d5e6f708192a3c", UserID: "aaaaaaaaaaaaaaaaaaaaaaa1", Title: "새 메시지 💬", Message: "hi",
			Type: notify.TypeChatMessage, Data: map[string]any{"chatRoomId": "room-1", "messageId": "65e1a2b3c4d5e6f708192a00"},
			IsRead: true, ReadAt: &read, CreatedAt: created, UpdatedAt: read, ExpiresAt: &expires, Priority: notify.PriorityUrgent},
	}
	got, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "notifications.golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("JSON differs from %s:\n%s", path, got)
	}
}
