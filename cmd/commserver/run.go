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
	"time"

	"github.com/fitmate/commserver/chat"
	"github.com/fitmate/commserver/config"
	"github.com/fitmate/commserver/gateway"
	"github.com/fitmate/commserver/goals"
	"github.com/fitmate/commserver/internal/gcfloor"
	"github.com/fitmate/commserver/notify"
	"github.com/fitmate/commserver/presence"
	"github.com/fitmate/commserver/scheduler"
	"github.com/fitmate/commserver/store"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
)

// run wires the server and serves until ctx is canceled (or a part of it
// fails), then shuts down gracefully (see stop): the scheduler stops at a
// recipient boundary, /readyz turns 503, the listener closes, sockets close
// at the transport level (clients reconnect by themselves), events in flight
// finish, accepted messages are written, and the store closes. Tests call run too.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 1 {
		return fmt.Errorf("unexpected arguments %q: configuration comes from the environment", args[1:])
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := newLogger(stdout, cfg)
	// go-redis's own messages (a dial failure per attempt during an outage)
	// go to our log at debug: each component reports an outage once itself.
	redis.SetLogger(redisLog{log.With("component", "go-redis")})
	log.Info("starting", "config", cfg)
	if cfg.ChatRoomPolicy == config.RoomPolicyOpen {
		log.Warn("CHAT_ROOM_POLICY=open: any authenticated user can join any chat room and read its history; use only while the main backend registers rooms")
	}
	if cfg.ServiceAPIKey == "" {
		log.Warn("SERVICE_API_KEY is not set: service routes accept only admin JWTs")
	}
	defer gcfloor.Start(uint64(cfg.GCFloorMB) << 20).Stop()

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
	// Socket.IO across pods (REDIS_URL): every namespace's broadcasts, room
	// operations and recovery go through Redis Streams. Built before the hub
	// that uses it, closed after the hub (the deferred Close runs after stop).
	podID := presence.NewPodID()
	adapters, err := newAdapters(cfg, podID, log)
	if err != nil {
		return err
	}
	hubOpts := gateway.HubOptions{CORSOrigins: cfg.CORSOrigins, MaxPayloadBytes: cfg.MaxPayloadBytes,
		PingInterval: cfg.PingInterval, PingTimeout: cfg.PingTimeout, RecoveryWindow: cfg.RecoveryWindow}
	if adapters != nil {
		defer adapters.Close()
		hubOpts.Adapter = adapters.For
	}
	hub, err := gateway.NewHub(hubOpts, log)
	if err != nil {
		return err
	}
	// This pod among others (REDIS_URL): presence shared in Redis, chat
	// caches dropped across pods. Without Redis the same code runs in memory.
	// The presence Tracker decides who comes online and goes offline,
	// cluster-wide, and the hub announces it.
	self, err := newPod(cfg, podID, adapters, func(c presence.Change) { hub.AnnouncePresence(c.UserID, c.SocketID, c.Online) }, log)
	if err != nil {
		return err
	}
	defer self.Close()
	self.registerMetrics(metrics.Registerer())
	// High and urgent notifications of offline users who opted in go out as texts.
	notifySvc := notify.New(db, hub, self.tracker, smsSvc, notify.Options{}, log)
	chatSvc := chat.NewService(db, hub, self.tracker, notifySvc, self.invalidator(), chat.Options{
		OpenRooms: cfg.ChatRoomPolicy == config.RoomPolicyOpen, MaxMessageLength: cfg.MaxMessageLength,
		MaxRoomIDLength: cfg.MaxRoomIDLength, StoreTimeout: cfg.StoreTimeout}, log)
	// Every connection is noted for the scheduler's "active user" (written debounced, in batches,
	// and before each job run).
	connections := scheduler.NewConnectionRecorder(db, scheduler.RecorderOptions{}, log)
	sched, err := newScheduler(cfg, db, notifySvc, smsSvc, rdb, metrics, connections, log)
	if err != nil {
		return err
	}
	verifier := gateway.NewVerifier(gateway.VerifierOptions{Secret: cfg.JWTSecret, PublicKey: cfg.JWTPublicKey,
		Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, UserClaim: cfg.JWTUserClaim, MaxBytes: cfg.JWTMaxBytes})
	hub.Serve(gateway.SocketDeps{Verifier: verifier, Chat: chatSvc, Unread: notifySvc,
		Presence:        recordingPresence{Presence: self.tracker, seen: connections},
		EventsPerMinute: cfg.EventsPerMinute, EventBurst: cfg.EventBurst, Metrics: metrics})
	handler := gateway.NewHandler(gateway.HTTPDeps{Hub: hub, Verifier: verifier, ServiceAPIKey: cfg.ServiceAPIKey,
		CORSOrigins: cfg.CORSOrigins, MaxBodyBytes: cfg.MaxPayloadBytes, Chat: chatSvc, Notify: notifySvc, Metrics: metrics, Log: log,
		Ready: db.Ping, Degraded: self.degraded, SMS: smsSvc, TrustedProxies: cfg.TrustedProxies, Jobs: sched, Goals: goals.New(db, nil),
		ReadTimeout: cfg.HTTPReadTimeout, WriteTimeout: cfg.HTTPWriteTimeout, PingInterval: cfg.PingInterval})

	var pprofSrv *http.Server
	var pprofLn net.Listener
	if cfg.PprofAddr != "" {
		if pprofLn, err = net.Listen("tcp", cfg.PprofAddr); err != nil {
			return fmt.Errorf("PPROF_ADDR: %w", err)
		}
		pprofSrv = newPprofServer()
		log.Info("pprof listening", "addr", pprofLn.Addr().String())
	}
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		if pprofLn != nil {
			pprofLn.Close()
		}
		return err
	}
	// The header read is bounded here, the body read and the answer write per
	// request (gateway: a long-poll and a WebSocket need other bounds than a
	// REST call, so there is no server-wide ReadTimeout or WriteTimeout).
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: cfg.HTTPReadTimeout, IdleTimeout: cfg.HTTPIdleTimeout,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	log.Info("listening", "addr", ln.Addr().String())

	// One group owns everything that runs until shutdown. A member that fails
	// (the listener) cancels gctx as a signal cancels ctx, and both paths
	// stop everything through stop, in one order.
	bg, stopBG := context.WithCancel(context.Background())          // background workers
	schedCtx, stopSched := context.WithCancel(context.Background()) // the scheduler
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
		return nil
	})
	if pprofSrv != nil {
		g.Go(func() error {
			if err := pprofSrv.Serve(pprofLn); !errors.Is(err, http.ErrServerClosed) {
				log.Warn("pprof server stopped; the server goes on", "err", err)
			}
			return nil
		})
	}
	g.Go(func() error { return sched.Run(schedCtx) })
	g.Go(func() error { self.Run(bg, chatSvc); return nil })
	g.Go(func() error { chatSvc.Run(bg); return nil })
	g.Go(func() error { notifySvc.Run(bg); return nil })
	g.Go(func() error { connections.Run(bg); return nil })
	g.Go(func() error {
		trimMemory(bg, time.Second, 64<<20, func() int64 { return hub.Stats().Connects }, log)
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		stop(ctx, cfg, log, hub, srv, pprofSrv, stopSched, stopBG)
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// stop shuts everything down, in this order, on every path: the scheduler is
// asked to stop (no new run; a running job stops at its next recipient
// boundary and the next run finishes it); /readyz turns 503 for
// SHUTDOWN_DRAIN_DELAY; the listener closes and requests in flight finish
// while sockets close at the transport level (no Socket.IO DISCONNECT: the
// React app reconnects by itself) and events in flight finish; the pprof
// server closes; the background workers stop (what they accepted is written).
// The store closes after the group has returned (run's deferred Close), so
// accepted messages are written.
func stop(ctx context.Context, cfg config.Config, log *slog.Logger, hub *gateway.Hub, srv, pprofSrv *http.Server,
	stopSched, stopBG context.CancelFunc) {
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	stopSched()
	hub.Drain()
	if cfg.ShutdownDrainDelay > 0 && ctx.Err() != nil { // a signal; a dead listener has nobody to drain
		log.Info("draining: /readyz reports 503", "for", cfg.ShutdownDrainDelay)
		time.Sleep(cfg.ShutdownDrainDelay)
	}
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(sctx) }() // closes the listener, waits for requests
	hub.Close(sctx)                            // ends sockets and long-polls: clients reconnect elsewhere
	if err := hub.Wait(sctx); err != nil {
		log.Warn("events still in flight at the shutdown deadline", "err", err)
	}
	if err := <-shut; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "err", err)
	}
	if pprofSrv != nil {
		_ = pprofSrv.Shutdown(sctx)
	}
	stopBG()
}

func newLogger(w io.Writer, cfg config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// newPprofServer serves the profiler on its own address (keep it on loopback).
func newPprofServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}
