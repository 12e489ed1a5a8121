// Command stickyproxy is a small reverse proxy with session affinity in
// front of several commserver pods, standing in for Nginx on a machine
// without one (`make cluster`). HTTP and WebSocket; see package
// internal/stickyproxy for the affinities.
//
//	stickyproxy -listen 127.0.0.1:3000 -affinity sid http://127.0.0.1:3001 http://127.0.0.1:3002
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fitmate/commserver/internal/stickyproxy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "stickyproxy:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done.
func run(ctx context.Context, args []string, _ func(string) string, stdout io.Writer) error {
	return serve(ctx, args, stdout, nil)
}

// serve is run; ready, when not nil, receives the address once it listens.
func serve(ctx context.Context, args []string, stdout io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("stickyproxy", flag.ContinueOnError)
	fs.SetOutput(stdout)
	listen := fs.String("listen", "127.0.0.1:3000", "address to listen on")
	affinity := fs.String("affinity", "sid", "sid (Engine.IO session id), cookie, ip (client address) or none (round robin)")
	verbose := fs.Bool("v", false, "log every proxy error at debug level")
	fs.Usage = func() {
		fmt.Fprintln(stdout, "usage: stickyproxy [-listen addr] [-affinity sid|cookie|ip|none] backend-url...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	aff, err := stickyproxy.ParseAffinity(*affinity)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: level}))
	px, err := stickyproxy.New(fs.Args(), stickyproxy.Options{Affinity: aff}, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: px, ReadHeaderTimeout: 10 * time.Second}
	log.Info("stickyproxy listening", "addr", ln.Addr().String(), "affinity", aff.String(), "backends", fs.Args())
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Hijacked WebSockets are not waited for: the pods' clients reconnect.
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
