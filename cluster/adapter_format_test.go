package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// readFixture reads an entry of testdata/adapter_v1: "id <id>" then one
// field a line, its value Go-quoted; # starts a comment.
func readFixture(t *testing.T, path string) (string, map[string]any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var id string
	values := map[string]any{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, val, _ := strings.Cut(line, " ")
		if name == "id" {
			id = val
			continue
		}
		v, err := strconv.Unquote(val)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, name, err)
		}
		values[name] = v
	}
	return id, values
}

// Entries written by release 1 (the fixtures, as Redis returns them) decode
// to what they meant. A later release keeps this test: it proves it still
// reads what a pod of this release writes during a rolling update.
func TestAdapterFormatV1Fixtures(t *testing.T) {
	t.Parallel()
	want := map[string]entry{
		"broadcast_binary": {Kind: kindBroadcast, From: "web-1-abc", Seq: 42, Rooms: []string{"chat:1", "admin-room"},
			Except: []string{"Zx8kq3Hn2mX0aB1cD2eF"},
			Text:   []byte(`51-["newMessage",{"roomId":"1","file":{"_placeholder":true,"num":0}}]`),
			Bins:   [][]byte{{0, 1, 0xff, 0xfe, '\n', '"'}}},
		"broadcast_volatile": {Kind: kindBroadcast, From: "web-2-def", Seq: 7, Volatile: true,
			Text: []byte(`2["userOnline",{"userId":"u1","socketId":"s1"}]`)},
		"leave": {Kind: kindLeave, From: "web-1-abc", Seq: 43, Rooms: []string{"user:a", "user:b"},
			Target: []string{"chat:1"}},
		"disconnect": {Kind: kindDisconnect, From: "web-1-abc", Seq: 44, Rooms: []string{"user:a"}, Close: true},
		"fetch_reply": {Kind: kindFetchReply, From: "web-2-def", Seq: 8, Req: "web-1-abc:1", To: "web-1-abc",
			Sockets: []socketInfo{{ID: "s1", Rooms: []string{"s1", "chat:1"}, Data: json.RawMessage(`{"user":"u1"}`),
				Address: "10.0.0.1"}}},
		"ack_count": {Kind: kindAckCount, From: "web-2-def", Seq: 9, Req: "web-1-abc:2", To: "web-1-abc", Count: 3},
		"server_emit": {Kind: kindServerEmit, From: "web-1-abc", Seq: 45,
			Text: []byte(`61-0["hello","x",{"_placeholder":true,"num":0}]`), Bins: [][]byte{{0, 0xff, 1}}},
		"unknown_kind": {Kind: "rebalance", From: "web-3-ghi", Seq: 1},
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "adapter_v1", "*.txt"))
	if len(files) != len(want)+1 {
		t.Fatalf("%d fixtures, want %d", len(files), len(want)+1)
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".txt")
		id, values := readFixture(t, path)
		if _, ok := parseStreamID(id); !ok {
			t.Errorf("%s: id %q", name, id)
		}
		got, err := decodeEntry(values)
		if name == "other_version" {
			if !errors.Is(err, errEntryVersion) {
				t.Errorf("%s: err = %v, want errEntryVersion", name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if w := want[name]; !reflect.DeepEqual(got, w) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, w)
		}
	}
	// The server-emit fixture's arguments, binary included.
	_, values := readFixture(t, filepath.Join("testdata", "adapter_v1", "server_emit.txt"))
	e, _ := decodeEntry(values)
	args, err := decodeArgs(e.Text, e.Bins)
	if err != nil || len(args) != 3 || args[0] != "hello" || string(args[2].([]byte)) != "\x00\xff\x01" {
		t.Fatalf("server-emit args = %#v, %v", args, err)
	}
}

// What fields() writes comes back from real Redis as the same entry, binary
// bytes intact: the fixtures' form is what Redis returns.
func TestAdapterFormatRoundTrip(t *testing.T) {
	t.Parallel()
	rdb, err := NewClient(testRedisURL(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx := context.Background()
	key := "test:adapter-format:" + strconv.FormatInt(time.Now().UnixNano(), 36)
	defer rdb.Del(ctx, key)
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	in := []entry{
		{Kind: kindBroadcast, From: "p", Seq: 1, Rooms: []string{"a", "b"}, Except: []string{"c"},
			Text: []byte(`51-["e",{"_placeholder":true,"num":0}]`), Bins: [][]byte{allBytes}},
		{Kind: kindJoin, From: "p", Seq: 2, Target: []string{"r"}},
		{Kind: kindAck, From: "p", Seq: 3, Req: "q:1", To: "q", Text: []byte(`30["ok"]`)},
		{Kind: kindFetchReply, From: "p", Seq: 4, Req: "q:2", To: "q", Sockets: []socketInfo{}},
	}
	for _, e := range in {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: e.fields()}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := rdb.XRange(ctx, key, "-", "+").Result()
	if err != nil || len(msgs) != len(in) {
		t.Fatalf("XRANGE: %d, %v", len(msgs), err)
	}
	for i, m := range msgs {
		got, err := decodeEntry(m.Values)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, in[i]) {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, got, in[i])
		}
	}
}

func testRedisURL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379"
}
