package store

import (
	"context"
	"reflect"
	"testing"
)

// TestRoomsOfUsers answers for many users in one query, ObjectId-looking
// and plain ids alike, in room-id order, each user's list capped.
func TestRoomsOfUsers(t *testing.T) {
	d := openTestDB(t)
	ctx := context.Background()
	const oid = "aaaaaaaaaaaaaaaaaaaaaaa1"
	for room, members := range map[string][]string{
		"r-b": {oid, "plain"},
		"r-a": {oid},
		"r-c": {"other"},
		"r-d": {"plain", oid},
	} {
		if _, _, err := d.PutRoom(ctx, room, members); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		users []string
		limit int
		want  map[string][]string
	}{
		{"several users", []string{oid, "plain", "nobody"}, 10,
			map[string][]string{oid: {"r-a", "r-b", "r-d"}, "plain": {"r-b", "r-d"}}},
		{"capped per user", []string{oid, "plain"}, 2,
			map[string][]string{oid: {"r-a", "r-b"}, "plain": {"r-b", "r-d"}}},
		{"one user", []string{"other"}, 10, map[string][]string{"other": {"r-c"}}},
		{"nobody asked", nil, 10, map[string][]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.RoomsOfUsers(ctx, tt.users, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("RoomsOfUsers = %v, want %v", got, tt.want)
			}
		})
	}
}
