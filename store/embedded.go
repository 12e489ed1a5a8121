package store

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// embedded is FerretDB running in this process over SQLite files, listening
// on a loopback port only this process uses.
type embedded struct {
	uri    string
	cancel context.CancelFunc
	done   chan struct{}
}

func startEmbedded(_ context.Context, dir string, log *slog.Logger) (*embedded, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store: embedded: %w", err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("store: embedded: %w", err)
	}
	// FerretDB logs every failed command at WARN with the whole wire message
	// (including the "not implemented" answers we expect); keep its errors only.
	flog := slog.New(log.Handler()).With("component", "ferretdb")
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
		Logger:    slog.New(levelFloor{flog.Handler(), slog.LevelError}),
	})
	if err != nil {
		return nil, fmt.Errorf("store: embedded: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &embedded{uri: f.MongoDBURI(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		_ = f.Run(ctx) // returns when ctx is canceled
	}()
	return e, nil
}

func (e *embedded) close() {
	e.cancel()
	<-e.done
}

// levelFloor drops records below a level.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }
func (h levelFloor) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFloor{h.Handler.WithAttrs(a), h.min}
}
func (h levelFloor) WithGroup(n string) slog.Handler {
	return levelFloor{h.Handler.WithGroup(n), h.min}
}
