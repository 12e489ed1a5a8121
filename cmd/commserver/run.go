package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/fitmate/commserver/chat"
	"github.com/fitmate/commserver/config"
	"github.com/fitmate/commserver/gateway"
	"github.com/fitmate/commserver/notify"
	"github.com/fitmate/commserver/presence"
	"github.com/fitmate/commserver/store"
	"github.com/redis/go-redis/v9"
)

// run wires the server and serves until ctx is canceled, then shuts down
// gracefully: /readyz turns 503, the listener closes, sockets close at the
// transport level (clients reconnect by themselves), events in flight finish,
// accepted messages are written, and the store closes. Tests call run too.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 1 {
		return fmt.Errorf("unexpected arguments %q: configuration comes from the environment", args[1:])
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := newLogger(stdout, cfg)
	log.Info("starting", "config", cfg)
	if cfg.ChatRoomPolicy == config.RoomPolicyOpen {
		log.Warn("CHAT_ROOM_POLICY=open: any authenticated user can join any chat room and read its history; use only while the main backend registers rooms")
	}
	if cfg.ServiceAPIKey == "" {
		log.Warn("SERVICE_API_KEY is not set: service routes accept only admin JWTs")
	}

	db, err := store.Open(ctx, store.Options{URI: cfg.MongoURI, Database: cfg.MongoDB, DataDir: cfg.DataDir,
		Timeout: cfg.StoreTimeout, BatchSize: cfg.MessageBatchSize}, log)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if err := db.Close(cctx); err != nil {
			log.Error("closing store", "err", err)
		}
	}()

	// Redis (REDIS_URL) for SMS and OTP; nil runs as a single instance. The
	// cluster parts (newPod) have a client of their own with short timeouts.
	var rdb redis.UniversalClient
	if cfg.RedisURL != "" {
		opt, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("REDIS_URL: %w", err)
		}
		rdb = redis.NewClient(opt)
		defer rdb.Close()
	}
	smsSvc, err := newSMS(cfg, db, rdb, log)
	var _ notify.OfflineChannel = smsSvc
	if err != nil {
		return err
	}

	metrics := gateway.NewMetrics()
	hub := gateway.NewHub(gateway.HubOptions{CORSOrigins: cfg.CORSOrigins, MaxPayloadBytes: cfg.MaxPayloadBytes,
		PingInterval: cfg.PingInterval, PingTimeout: cfg.PingTimeout}, log)
	// This pod among others (REDIS_URL): presence shared in Redis, chat
	// caches dropped across pods. Without Redis the same code runs in memory.
	self, err := newPod(cfg, nil, log)
	if err != nil {
		return err
	}
	defer self.Close()
	self.registerMetrics(metrics.Registerer())
	pres := presenceBridge{local: presence.NewMemory(), tracker: self.tracker}
	// High and urgent notifications of offline users who opted in go out as texts.
	notifySvc := notify.New(db, hub, self.tracker, smsSvc, notify.Options{}, log)
	chatSvc := chat.NewService(db, hub, self.tracker, notifySvc, self.invalidator(), chat.Options{
		OpenRooms: cfg.ChatRoomPolicy == config.RoomPolicyOpen, MaxMessageLength: cfg.MaxMessageLength,
		MaxRoomIDLength: cfg.MaxRoomIDLength}, log)
	verifier := gateway.NewVerifier(gateway.VerifierOptions{Secret: cfg.JWTSecret, PublicKey: cfg.JWTPublicKey,
		Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, UserClaim: cfg.JWTUserClaim, MaxBytes: cfg.JWTMaxBytes})
	hub.Serve(gateway.SocketDeps{Verifier: verifier, Chat: chatSvc, Unread: notifySvc, Presence: pres,
		EventsPerMinute: cfg.EventsPerMinute, EventBurst: cfg.EventBurst, Metrics: metrics})
	handler := gateway.NewHandler(gateway.HTTPDeps{Hub: hub, Verifier: verifier, ServiceAPIKey: cfg.ServiceAPIKey,
		CORSOrigins: cfg.CORSOrigins, MaxBodyBytes: cfg.MaxPayloadBytes, Chat: chatSvc, Notify: notifySvc, Metrics: metrics, Log: log,
		Ready: db.Ping, SMS: smsSvc, TrustedProxies: cfg.TrustedProxies,
		ReadTimeout: cfg.HTTPReadTimeout, WriteTimeout: cfg.HTTPWriteTimeout, PingInterval: cfg.PingInterval})

	if cfg.PprofAddr != "" {
		go servePprof(cfg.PprofAddr, log)
	}

	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		return err
	}
	// The header read is bounded here, the body read and the answer write per
	// request (gateway: a long-poll and a WebSocket need other bounds than a
	// REST call, so there is no server-wide ReadTimeout or WriteTimeout).
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: cfg.HTTPReadTimeout, IdleTimeout: cfg.HTTPIdleTimeout,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	log.Info("listening", "addr", ln.Addr().String())

	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); self.Run(bg, chatSvc) }()
	go func() { defer wg.Done(); chatSvc.Run(bg) }()
	go func() { defer wg.Done(); notifySvc.Run(bg) }()
	wg.Add(1)
	go func() { defer wg.Done(); trimMemory(bg, time.Second, 64<<20, log) }()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		stopBG()
		wg.Wait()
		hub.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	hub.Drain()
	if cfg.ShutdownDrainDelay > 0 {
		log.Info("draining: /readyz reports 503", "for", cfg.ShutdownDrainDelay)
		time.Sleep(cfg.ShutdownDrainDelay)
	}
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(sctx) }() // closes the listener, waits for requests
	hub.Close()                                // ends sockets and long-polls: clients reconnect elsewhere
	if err := hub.Wait(sctx); err != nil {
		log.Warn("events still in flight at the shutdown deadline", "err", err)
	}
	if err := <-shut; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "err", err)
	}
	stopBG()
	wg.Wait()
	log.Info("stopped")
	return nil
}

func newLogger(w io.Writer, cfg config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// servePprof serves the profiler on its own address (keep it on loopback).
func servePprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("pprof listening", "addr", addr)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		log.Warn("pprof server", "err", err)
	}
}
