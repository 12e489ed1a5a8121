package config

import (
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // SCHEDULER_TIMEZONE resolves in a container without zoneinfo

	"github.com/robfig/cron/v3"
)

// SchedulerJobs names the scheduled jobs, each re-timed by the variable
// SchedulerEnv(name): SCHEDULER_ and the name in upper case with '-' as '_'
// (daily-workout-reminder → SCHEDULER_DAILY_WORKOUT_REMINDER). Package
// scheduler defines the jobs and their default schedules; a test there
// checks this list against them.
var SchedulerJobs = []string{"daily-workout-reminder", "weekly-report", "goal-check", "cleanup"}

// SchedulerEnv is the variable that re-times a job: a cron expression, or off.
func SchedulerEnv(job string) string {
	return "SCHEDULER_" + strings.ToUpper(strings.ReplaceAll(job, "-", "_"))
}

// Scheduler is the scheduler's configuration (see README.md, docs/scheduler.md).
type Scheduler struct {
	Enabled  bool           // SCHEDULER_ENABLED (true)
	Location *time.Location // SCHEDULER_TIMEZONE (Asia/Seoul): schedules and calendar days, weeks, months
	// Schedules holds the jobs re-timed by SCHEDULER_<NAME>: a standard
	// five-field cron expression or "off". Jobs not in it keep their default.
	Schedules                 map[string]string
	ActiveWindow              time.Duration // SCHEDULER_ACTIVE_WINDOW (168h): how recent an active user's activity is
	ActiveSources             []string      // SCHEDULER_ACTIVE_SOURCES (connections,workouts,users)
	BatchSize                 int           // SCHEDULER_BATCH_SIZE (100): recipients or messages per batch
	CatchUpWindow             time.Duration // SCHEDULER_CATCHUP_WINDOW (6h): how late a missed run is still run; 0 never
	LockTTL                   time.Duration // SCHEDULER_LOCK_TTL (30s): the cluster lock's lifetime, extended while a run goes on
	RedisPrefix               string        // SCHEDULER_REDIS_PREFIX (fitmate:scheduler:)
	ReadNotificationRetention time.Duration // SCHEDULER_READ_NOTIFICATION_RETENTION (720h): read notifications kept
	ChatArchiveAfter          time.Duration // SCHEDULER_CHAT_ARCHIVE_AFTER (2160h): chat messages kept before archiving
}

var activeSources = []string{"connections", "workouts", "users"}

// loadScheduler reads the SCHEDULER_* variables.
func (l *loader) loadScheduler() Scheduler {
	s := Scheduler{
		Enabled:                   l.boolean("SCHEDULER_ENABLED", true),
		Schedules:                 map[string]string{},
		ActiveWindow:              l.duration("SCHEDULER_ACTIVE_WINDOW", 7*24*time.Hour),
		BatchSize:                 l.intIn("SCHEDULER_BATCH_SIZE", 100, 1, 10_000),
		CatchUpWindow:             l.duration("SCHEDULER_CATCHUP_WINDOW", 6*time.Hour),
		LockTTL:                   l.duration("SCHEDULER_LOCK_TTL", 30*time.Second),
		RedisPrefix:               l.str("SCHEDULER_REDIS_PREFIX", "fitmate:scheduler:"),
		ReadNotificationRetention: l.duration("SCHEDULER_READ_NOTIFICATION_RETENTION", 30*24*time.Hour),
		ChatArchiveAfter:          l.duration("SCHEDULER_CHAT_ARCHIVE_AFTER", 90*24*time.Hour),
	}
	tz := l.str("SCHEDULER_TIMEZONE", "Asia/Seoul")
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "Local" {
		l.fail("SCHEDULER_TIMEZONE=%q: want an IANA time zone such as Asia/Seoul", tz)
		loc, _ = time.LoadLocation("Asia/Seoul")
	}
	s.Location = loc
	for _, job := range SchedulerJobs {
		name := SchedulerEnv(job)
		v := strings.TrimSpace(l.getenv(name))
		switch {
		case v == "":
		case strings.EqualFold(v, "off"):
			s.Schedules[job] = "off"
		default:
			if err := checkCron(v, loc); err != "" {
				l.fail("%s=%q: %s", name, v, err)
				continue
			}
			s.Schedules[job] = v
		}
	}
	for _, src := range strings.Split(l.str("SCHEDULER_ACTIVE_SOURCES", strings.Join(activeSources, ",")), ",") {
		src = strings.ToLower(strings.TrimSpace(src))
		if src == "" {
			continue
		}
		known := false
		for _, a := range activeSources {
			known = known || a == src
		}
		if !known {
			l.fail("SCHEDULER_ACTIVE_SOURCES: %q is not one of connections, workouts, users", src)
			continue
		}
		s.ActiveSources = append(s.ActiveSources, src)
	}
	if len(s.ActiveSources) == 0 && !l.failed("SCHEDULER_ACTIVE_SOURCES") {
		l.fail("SCHEDULER_ACTIVE_SOURCES must name at least one of connections, workouts, users")
	}
	if s.ActiveWindow < time.Hour {
		l.fail("SCHEDULER_ACTIVE_WINDOW must be at least 1h")
	}
	if s.LockTTL < 3*time.Second {
		l.fail("SCHEDULER_LOCK_TTL must be at least 3s (it is extended every third of it)")
	}
	if s.ReadNotificationRetention < 24*time.Hour || s.ChatArchiveAfter < 24*time.Hour {
		l.fail("SCHEDULER_READ_NOTIFICATION_RETENTION and SCHEDULER_CHAT_ARCHIVE_AFTER must be at least 24h")
	}
	return s
}

// checkCron validates a schedule as gocron will read it (standard five
// fields, in loc) and refuses what has no calendar slots.
func checkCron(spec string, loc *time.Location) string {
	if strings.HasPrefix(spec, "@every") || strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return "want a five-field cron expression such as \"0 9 * * *\" (the time zone is SCHEDULER_TIMEZONE), or off"
	}
	sched, err := cron.ParseStandard("CRON_TZ=" + loc.String() + " " + spec)
	if err != nil {
		return "want a five-field cron expression such as \"0 9 * * *\", or off: " + err.Error()
	}
	if sched.Next(time.Now()).IsZero() {
		return "it never fires"
	}
	return ""
}

func (l *loader) boolean(name string, def bool) bool {
	v := strings.TrimSpace(l.getenv(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		l.fail("%s=%q: want true or false", name, v)
		return def
	}
	return b
}
