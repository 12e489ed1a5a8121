package socketio

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fitmate/commserver/gateway/socketio/engine"
)

func testNamespace(t *testing.T, o Options) (*Namespace, *MemoryAdapter) {
	t.Helper()
	srv, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(t.Context()) })
	nsp := srv.Of("/")
	return nsp, nsp.adapter.(*MemoryAdapter)
}

func fakeSocket(nsp *Namespace, id string) *Socket {
	s := &Socket{nsp: nsp, id: id}
	s.state.Store(stateConnected)
	nsp.add(s)
	return s
}

// Memberships stay consistent on both sides through any sequence of joins
// and leaves (they are two slices with cross indices, no maps).
func TestMemoryAdapterRooms(t *testing.T) {
	nsp, a := testNamespace(t, Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	socks := make([]*Socket, 40)
	model := map[*Socket]map[string]bool{}
	for i := range socks {
		socks[i] = fakeSocket(nsp, fmt.Sprintf("s%02d", i))
		model[socks[i]] = map[string]bool{}
	}
	for step := range 5000 {
		s := socks[rng.IntN(len(socks))]
		room := fmt.Sprintf("r%d", rng.IntN(12))
		switch rng.IntN(10) {
		case 0:
			a.DelAll(s)
			model[s] = map[string]bool{}
		case 1, 2, 3:
			a.Del(s, room)
			delete(model[s], room)
		default:
			a.AddAll(s, []string{room, room})
			model[s][room] = true
		}
		if step%50 == 0 {
			checkRooms(t, a, model)
		}
	}
	checkRooms(t, a, model)
}

func checkRooms(t *testing.T, a *MemoryAdapter, model map[*Socket]map[string]bool) {
	t.Helper()
	a.mu.RLock()
	defer a.mu.RUnlock()
	members := map[string]int{}
	for s, want := range model {
		var got []string
		for k, sr := range s.rooms {
			got = append(got, sr.r.name)
			if m := sr.r.members[sr.ri]; m.s != s || int(m.mi) != k {
				t.Fatalf("socket %s: membership %d points at the wrong entry", s.id, k)
			}
			if a.rooms[sr.r.name] != sr.r {
				t.Fatalf("socket %s in a room the adapter dropped", s.id)
			}
		}
		var exp []string
		for r := range want {
			exp = append(exp, r)
			members[r]++
		}
		sort.Strings(got)
		sort.Strings(exp)
		if !slices.Equal(got, exp) {
			t.Fatalf("socket %s rooms %v, want %v", s.id, got, exp)
		}
	}
	for name, r := range a.rooms {
		if len(r.members) != members[name] || len(r.members) == 0 {
			t.Fatalf("room %s has %d members, want %d (empty rooms are dropped)", name, len(r.members), members[name])
		}
	}
}

// A broadcast reaches each selected socket once: rooms are a union, a
// socket id is a room, exceptions win.
func TestMemoryAdapterSelection(t *testing.T) {
	nsp, a := testNamespace(t, Options{})
	s := map[string]*Socket{}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		s[id] = fakeSocket(nsp, id)
	}
	a.AddAll(s["a"], []string{"r1", "r2"})
	a.AddAll(s["b"], []string{"r1"})
	a.AddAll(s["c"], []string{"r2"})
	a.AddAll(s["e"], []string{"r3"})
	tests := []struct {
		rooms, except []string
		want          string
	}{
		{nil, nil, "a b c d e"},
		{[]string{"r1"}, nil, "a b"},
		{[]string{"r1", "r2"}, nil, "a b c"},
		{[]string{"r1", "r2", "r1"}, nil, "a b c"},
		{[]string{"r1"}, []string{"r2"}, "b"},
		{[]string{"r1", "r2"}, []string{"a"}, "b c"},
		{nil, []string{"r1", "e"}, "c d"},
		{[]string{"d"}, nil, "d"},
		{[]string{"r1", "a", "d"}, nil, "a b d"},
		{[]string{"nope"}, nil, ""},
		{[]string{"r3"}, []string{"r3"}, ""},
	}
	for _, tt := range tests {
		var got []string
		a.forEach(BroadcastOptions{Rooms: tt.rooms, Except: tt.except}, func(x *Socket) { got = append(got, x.id) })
		sort.Strings(got)
		if strings.Join(got, " ") != tt.want {
			t.Errorf("rooms %v except %v: %v, want %s", tt.rooms, tt.except, got, tt.want)
		}
	}
}

func TestRecoveryLog(t *testing.T) {
	w := engine.NewWheel(10*time.Millisecond, 64)
	defer w.Stop()
	o := RecoveryOptions{MaxDisconnection: time.Minute, MaxPackets: 5, MaxBytes: 1 << 20, MaxSessions: 10}
	l := newRecoveryLog(o, w)
	defer l.close()
	text := func(i int) []byte { return []byte(fmt.Sprintf(`2["ev",%d]`, i)) }
	offsets := []string{}
	for i := range 3 {
		rooms := []string{"r1"}
		if i == 1 {
			rooms = []string{"other"}
		}
		m := l.append(text(i), nil, BroadcastOptions{Rooms: rooms})
		f := string(m.Frames()[2:])
		offsets = append(offsets, f[strings.LastIndex(f, ",")+2:len(f)-2])
	}
	if strings.Join(offsets, " ") != "1 2 3" {
		t.Fatalf("offsets %v", offsets)
	}
	persist := func(pid string) {
		l.persist(SessionToPersist{SID: "sid", PID: pid, Rooms: []string{"sid", "r1"}, Data: "d"})
	}
	persist("p1")
	sess := l.restore("p1", "1")
	if sess == nil || len(sess.Missed) != 1 || sess.Data != "d" {
		t.Fatalf("restore after offset 1: %+v", sess)
	}
	if l.restore("p1", "1") != nil {
		t.Fatal("a session restored twice")
	}
	persist("p2")
	if s := l.restore("p2", "3"); s == nil || len(s.Missed) != 0 {
		t.Fatalf("restore at the newest offset: %+v", s)
	}
	for _, off := range []string{"4", "x", "", "-1"} {
		persist("p3")
		if l.restore("p3", off) != nil {
			t.Fatalf("restored with offset %q", off)
		}
	}
	// Past MaxPackets the oldest go; an offset whose successors were dropped fails.
	for i := 3; i < 8; i++ {
		l.append(text(i), nil, BroadcastOptions{})
	}
	persist("p4")
	if l.restore("p4", "1") != nil {
		t.Fatal("restored although packet 2 was dropped")
	}
	persist("p5")
	if s := l.restore("p5", "3"); s == nil || len(s.Missed) != 5 {
		t.Fatalf("restore from the oldest kept: %+v", s)
	}
	// Packets sent to the socket's own id are replayed; those excepting it are not.
	l.append(text(9), nil, BroadcastOptions{Rooms: []string{"sid"}})
	l.append(text(10), nil, BroadcastOptions{Except: []string{"sid"}})
	persist("p6")
	if s := l.restore("p6", "8"); s == nil || len(s.Missed) != 1 {
		t.Fatalf("own-id and except: %+v", s)
	}
}

func TestRecoveryLogLimits(t *testing.T) {
	w := engine.NewWheel(10*time.Millisecond, 64)
	defer w.Stop()
	l := newRecoveryLog(RecoveryOptions{MaxDisconnection: 50 * time.Millisecond, MaxPackets: 1000, MaxBytes: 200, MaxSessions: 2}, w)
	defer l.close()
	for i := range 20 {
		l.append([]byte(fmt.Sprintf(`2["ev","%030d"]`, i)), nil, BroadcastOptions{})
	}
	l.mu.Lock()
	n, bytes := l.len(), l.bytes
	l.mu.Unlock()
	if bytes > 200 || n == 0 || n > 5 {
		t.Fatalf("%d packets, %d bytes kept; the cap is 200 bytes", n, bytes)
	}
	for _, pid := range []string{"a", "b", "c"} {
		l.persist(SessionToPersist{SID: pid, PID: pid})
	}
	if l.restore("c", "20") != nil {
		t.Fatal("a session over MaxSessions was kept")
	}
	l.persist(SessionToPersist{SID: "c", PID: "late"})
	time.Sleep(80 * time.Millisecond)
	if l.restore("a", "20") != nil {
		t.Fatal("an expired session was restored")
	}
}
