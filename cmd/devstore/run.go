package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/fitmate/commserver/store"
)

// run serves the store until ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "./devdata", "directory of the SQLite files (created if needed)")
	addr := fs.String("addr", "127.0.0.1:27017", "loopback address to listen on (port 0 picks one)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, err := store.StartEmbedded(*dir, *addr, log)
	if err != nil {
		return err
	}
	// Its clients create collections as they go: index their _id as they appear.
	indexed := make(chan struct{})
	go func() { defer close(indexed); e.KeepIndexingIDs(ctx, time.Second) }()
	fmt.Fprintln(stdout, e.URI)
	<-ctx.Done()
	<-indexed
	e.Close()
	return nil
}
