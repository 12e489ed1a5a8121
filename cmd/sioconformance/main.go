// Command sioconformance serves what the official Socket.IO and Engine.IO
// protocol test suites expect, on the project's own layer.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fitmate/commserver/gateway/socketio/engine"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "sioconformance:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	eng, err := engine.NewServer(engine.Options{
		Handler:      echo{},
		Logger:       log,
		PingInterval: 300 * time.Millisecond,
		PingTimeout:  200 * time.Millisecond,
		MaxPayload:   1_000_000,
		CORS:         &engine.CORS{Origins: []string{"*"}},
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", eng)
	ln, err := net.Listen("tcp", "127.0.0.1:3000")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	err = srv.Serve(ln)
	_ = eng.Close(context.Background())
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}
