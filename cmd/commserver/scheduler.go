package main

import (
	"log/slog"

	"github.com/fitmate/commserver/config"
	"github.com/fitmate/commserver/gateway"
	"github.com/fitmate/commserver/notify"
	"github.com/fitmate/commserver/scheduler"
	"github.com/fitmate/commserver/sms"
	"github.com/fitmate/commserver/store"
	"github.com/redis/go-redis/v9"
)

// newScheduler builds the scheduled jobs: locked in Redis across instances,
// or in memory for a single instance (no REDIS_URL).
func newScheduler(cfg config.Config, db *store.DB, notifySvc *notify.Service, smsSvc *sms.Service,
	rdb redis.UniversalClient, metrics *gateway.Metrics, seen *scheduler.ConnectionRecorder, log *slog.Logger) (*scheduler.Scheduler, error) {
	sc := cfg.Scheduler
	var locker scheduler.Locker = scheduler.NewLocalLocker(nil)
	if rdb != nil {
		locker = scheduler.NewRedisLocker(rdb, sc.RedisPrefix)
	} else if sc.Enabled {
		log.Info("no REDIS_URL: scheduled jobs are locked in this process only (run a single instance)")
	}
	return scheduler.New(scheduler.Deps{Store: db, Notify: notifySvc, SMS: smsSvc, Locker: locker,
		Metrics: metrics.Registerer(), Log: log, Activity: seen}, scheduler.Options{
		Enabled: sc.Enabled, Location: sc.Location, Schedules: sc.Schedules, ActiveWindow: sc.ActiveWindow,
		ActiveSources: sc.ActiveSources, BatchSize: sc.BatchSize, CatchUpWindow: sc.CatchUpWindow, LockTTL: sc.LockTTL,
		ReadNotificationRetention: sc.ReadNotificationRetention, ChatArchiveAfter: sc.ChatArchiveAfter,
		StopTimeout: cfg.ShutdownTimeout,
	})
}

// recordingPresence notes each connection for the scheduler's active users,
// then records presence as usual.
type recordingPresence struct {
	gateway.Presence
	seen *scheduler.ConnectionRecorder
}

func (p recordingPresence) Connect(userID, socketID string) {
	p.seen.Seen(userID)
	p.Presence.Connect(userID, socketID)
}
