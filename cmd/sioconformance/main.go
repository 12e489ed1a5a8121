// Command sioconformance serves, on the project's own Socket.IO layer, what
// the official protocol test suites expect (../shared/conformance):
//
//	MODE=sio (default)  Socket.IO at /socket.io/: on connection to "/" and
//	                    "/custom" emit "auth" with the handshake's auth; on
//	                    "message" emit "message-back" with the same arguments;
//	                    answer "message-with-ack" with its arguments.
//	MODE=eio            Engine.IO at $EIO_PATH (default /engine.io/), echoing
//	                    every message.
//
// Environment: HOST (127.0.0.1), PORT (3000), PING_INTERVAL_MS (300),
// PING_TIMEOUT_MS (200), MAX_PAYLOAD (1000000), CONNECT_TIMEOUT_MS (1000),
// RECOVERY (off; "on" enables connection state recovery), and JWT_SECRET:
// when set, "/" and "/custom" require auth.token, an HS256 JWT with exp (as the
// harness's reference server and the bench expect).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/fitmate/commserver/gateway/socketio"
	"github.com/fitmate/commserver/gateway/socketio/engine"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, nil); err != nil {
		fmt.Fprintln(os.Stderr, "sioconformance:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends; ready (if not nil) gets the address once listening.
func run(ctx context.Context, getenv func(string) string, ready chan<- string) error {
	env := func(k string, d int) (int, error) {
		v := getenv(k)
		if v == "" {
			return d, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", k, err)
		}
		return n, nil
	}
	port, err := env("PORT", 3000)
	if err != nil {
		return err
	}
	pingInterval, err := env("PING_INTERVAL_MS", 300)
	if err != nil {
		return err
	}
	pingTimeout, err := env("PING_TIMEOUT_MS", 200)
	if err != nil {
		return err
	}
	maxPayload, err := env("MAX_PAYLOAD", 1_000_000)
	if err != nil {
		return err
	}
	connectTimeout, err := env("CONNECT_TIMEOUT_MS", 1000)
	if err != nil {
		return err
	}
	host := getenv("HOST")
	if host == "" {
		host = "127.0.0.1"
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cors := &engine.CORS{Origins: []string{"*"}}
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }

	mux := http.NewServeMux()
	var closeFn func(context.Context) error
	if getenv("MODE") == "eio" {
		eng, err := engine.NewServer(engine.Options{
			Handler: echo{}, Logger: log, CORS: cors, MaxPayload: maxPayload,
			PingInterval: ms(pingInterval), PingTimeout: ms(pingTimeout),
		})
		if err != nil {
			return err
		}
		path := getenv("EIO_PATH")
		if path == "" {
			path = "/engine.io/"
		}
		mux.Handle(path, eng)
		closeFn = eng.Close
	} else {
		io, err := socketio.NewServer(socketio.Options{
			Logger: log, CORS: cors, MaxPayload: maxPayload,
			PingInterval: ms(pingInterval), PingTimeout: ms(pingTimeout), ConnectTimeout: ms(connectTimeout),
			DisableRecovery: getenv("RECOVERY") != "on",
		})
		if err != nil {
			return err
		}
		suiteHandlers(io, getenv("JWT_SECRET"))
		mux.Handle("/socket.io/", io)
		closeFn = io.Close
	}
	if addr := getenv("PPROF_ADDR"); addr != "" {
		go servePprof(addr)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = closeFn(sctx)
		_ = srv.Shutdown(sctx)
	}()
	if ready != nil {
		ready <- ln.Addr().String()
	}
	err = srv.Serve(ln)
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// suiteHandlers installs the socket.io-protocol suite's handlers.
func suiteHandlers(io *socketio.Server, jwtSecret string) {
	custom := io.Of("/custom")
	if jwtSecret != "" {
		mw := jwtMiddleware([]byte(jwtSecret))
		io.Use(mw)
		custom.Use(mw)
	}
	emitAuth := func(s *socketio.Socket) {
		auth := s.Handshake().Auth
		if auth == nil {
			auth = map[string]any{}
		}
		_ = s.Emit("auth", auth)
	}
	io.OnConnection(emitAuth)
	custom.OnConnection(emitAuth)
	io.OnEvent("message", func(s *socketio.Socket, args []any, _ socketio.AckFunc) {
		_ = s.Emit("message-back", args...)
	})
	io.OnEvent("message-with-ack", func(s *socketio.Socket, args []any, ack socketio.AckFunc) {
		if ack != nil {
			ack(args...)
		}
	})
}
