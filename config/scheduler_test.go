package config

import (
	"strings"
	"testing"
	"time"
)

func TestSchedulerDefaults(t *testing.T) {
	c, err := Load(env(map[string]string{"JWT_SECRET": secret}))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Scheduler
	if !s.Enabled || s.Location.String() != "Asia/Seoul" || len(s.Schedules) != 0 || s.ActiveWindow != 7*24*time.Hour ||
		strings.Join(s.ActiveSources, ",") != "connections,workouts,users" || s.BatchSize != 100 ||
		s.CatchUpWindow != 6*time.Hour || s.LockTTL != 30*time.Second || s.RedisPrefix != "fitmate:scheduler:" ||
		s.ReadNotificationRetention != 30*24*time.Hour || s.ChatArchiveAfter != 90*24*time.Hour {
		t.Fatalf("scheduler defaults: %+v", s)
	}
}

func TestSchedulerEnvNames(t *testing.T) {
	want := map[string]string{"daily-workout-reminder": "SCHEDULER_DAILY_WORKOUT_REMINDER", "weekly-report": "SCHEDULER_WEEKLY_REPORT",
		"goal-check": "SCHEDULER_GOAL_CHECK", "cleanup": "SCHEDULER_CLEANUP"}
	for _, job := range SchedulerJobs {
		if got := SchedulerEnv(job); got != want[job] {
			t.Errorf("SchedulerEnv(%q) = %q, want %q", job, got, want[job])
		}
	}
}

func TestSchedulerSettings(t *testing.T) {
	c, err := Load(env(map[string]string{"JWT_SECRET": secret, "SCHEDULER_ENABLED": "false", "SCHEDULER_TIMEZONE": "UTC",
		"SCHEDULER_GOAL_CHECK": "OFF", "SCHEDULER_DAILY_WORKOUT_REMINDER": "30 7 * * 1-5", "SCHEDULER_CATCHUP_WINDOW": "0",
		"SCHEDULER_ACTIVE_SOURCES": "users, connections"}))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Scheduler
	if s.Enabled || s.Location != time.UTC || s.Schedules["goal-check"] != "off" ||
		s.Schedules["daily-workout-reminder"] != "30 7 * * 1-5" || s.CatchUpWindow != 0 ||
		strings.Join(s.ActiveSources, ",") != "users,connections" {
		t.Fatalf("scheduler settings: %+v", s)
	}
}

// A bad schedule is listed with every other problem, each naming its variable.
func TestSchedulerProblemsListedAtOnce(t *testing.T) {
	_, err := Load(env(map[string]string{"JWT_SECRET": secret, "PORT": "x",
		"SCHEDULER_WEEKLY_REPORT": "0 18 * *", "SCHEDULER_CLEANUP": "@every 1h", "SCHEDULER_GOAL_CHECK": "0 0 30 2 *",
		"SCHEDULER_TIMEZONE": "Mars/Olympus", "SCHEDULER_ENABLED": "maybe", "SCHEDULER_ACTIVE_SOURCES": "logins",
		"SCHEDULER_LOCK_TTL": "1s"}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"PORT=", "SCHEDULER_WEEKLY_REPORT=", "SCHEDULER_CLEANUP=", "SCHEDULER_GOAL_CHECK=\"0 0 30 2 *\": it never fires",
		"SCHEDULER_TIMEZONE=", "SCHEDULER_ENABLED=", `"logins" is not one of`, "SCHEDULER_LOCK_TTL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
