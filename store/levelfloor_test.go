package store

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// A levelFloor logger drops what is below its level, and a record that
// passes carries the attributes and groups derived before it, in order.
func TestLevelFloor(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(levelFloor{base: slog.NewTextHandler(&buf, nil), min: slog.LevelError})
	derived := l.With("query", "INSERT").WithGroup("g").With("args", 1)
	derived.Info("dropped")
	derived.Warn("dropped too")
	if buf.Len() != 0 {
		t.Fatalf("records below the floor were written: %q", buf.String())
	}
	if l.Enabled(context.Background(), slog.LevelWarn) || !l.Enabled(context.Background(), slog.LevelError) {
		t.Fatal("Enabled does not follow the floor")
	}
	derived.Error("kept", "n", 2)
	got := strings.TrimSpace(buf.String())
	for _, want := range []string{"msg=kept", "query=INSERT", "g.args=1", "g.n=2"} {
		if !strings.Contains(got, want) {
			t.Errorf("record %q lacks %q", got, want)
		}
	}
	// Siblings derived from one parent do not see each other's attributes.
	buf.Reset()
	base := l.With("a", 1)
	base.With("b", 2).Error("x")
	base.With("c", 3).Error("y")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || strings.Contains(lines[1], "b=2") || !strings.Contains(lines[1], "c=3") {
		t.Fatalf("sibling loggers share attributes: %q", lines)
	}
}
