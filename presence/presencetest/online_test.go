package presencetest

import (
	"context"
	"testing"
)

func TestOnlineFirstAndLastSocket(t *testing.T) {
	ctx := context.Background()
	m := NewOnline()
	steps := []struct {
		op         string
		user, sock string
		want       bool
	}{
		{"connect", "u1", "a", true},
		{"connect", "u1", "b", false},
		{"connect", "u2", "c", true},
		{"disconnect", "u1", "a", false},
		{"disconnect", "u1", "a", false}, // twice: still not the last
		{"disconnect", "u1", "b", true},
		{"disconnect", "u1", "b", false}, // already gone
		{"connect", "u1", "d", true},
	}
	for i, s := range steps {
		var got bool
		if s.op == "connect" {
			got, _ = m.Connect(ctx, s.user, s.sock)
		} else {
			got, _ = m.Disconnect(ctx, s.user, s.sock)
		}
		if got != s.want {
			t.Fatalf("step %d %s %s/%s = %v, want %v", i, s.op, s.user, s.sock, got, s.want)
		}
	}
	on, _ := m.Online(ctx, []string{"u1", "u2", "u3"})
	if !on["u1"] || !on["u2"] || on["u3"] {
		t.Fatalf("online = %v", on)
	}
}
