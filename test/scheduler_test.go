package test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// schedulerEnv runs the real binary's scheduler on the real Redis, with no
// catch-up at start (a run then depends on the hour the test runs at).
func schedulerEnv(t *testing.T) []string {
	ns := redisNamespace(t)
	return []string{"REDIS_URL=" + redisURL, "SMS_REDIS_PREFIX=" + ns + "sms:", "SCHEDULER_REDIS_PREFIX=" + ns + "jobs:",
		"SCHEDULER_CATCHUP_WINDOW=0", "SMS_SENDER=log"}
}

func jobOf(t *testing.T, body map[string]any, name string) map[string]any {
	t.Helper()
	list, _ := body["jobs"].([]any)
	for _, j := range list {
		if m, _ := j.(map[string]any); m["name"] == name {
			return m
		}
	}
	t.Fatalf("no job %s in %v", name, body)
	return nil
}

// The goals routes: service credential, validated with stable codes naming the field.
func TestGoalsRoutes(t *testing.T) {
	srv := startServer(t, schedulerEnv(t)...)
	goal := map[string]any{"name": "주 3회 운동", "metric": "workouts", "target": 3, "period": "week"}
	path := "/goals/" + alice + "/weekly-3"

	code, body := srv.api(t, "PUT", path, serviceKey(), goal)
	if code != 200 || body["created"] != true {
		t.Fatalf("create: %d %v", code, body)
	}
	goal["target"] = 4
	code, body = srv.api(t, "PUT", path, serviceKey(), goal)
	g, _ := body["goal"].(map[string]any)
	if code != 200 || body["created"] != false || g["target"] != 4.0 || g["userId"] != alice || g["goalId"] != "weekly-3" {
		t.Fatalf("replace: %d %v", code, body)
	}
	if code, body = srv.api(t, "GET", path, serviceKey(), nil); code != 200 || body["goal"].(map[string]any)["name"] != "주 3회 운동" {
		t.Fatalf("get: %d %v", code, body)
	}
	if code, body = srv.api(t, "GET", "/goals/"+alice, serviceKey(), nil); code != 200 || len(body["goals"].([]any)) != 1 {
		t.Fatalf("list: %d %v", code, body)
	}

	for _, c := range []struct {
		path  string
		body  any
		field string
	}{
		{path, map[string]any{"metric": "workouts", "target": 3, "period": "week"}, "name"},
		{path, map[string]any{"name": "x", "metric": "steps", "target": 3, "period": "week"}, "metric"},
		{path, map[string]any{"name": "x", "metric": "workouts", "target": -1, "period": "week"}, "target"},
		{path, map[string]any{"name": "x", "metric": "workouts", "target": 2.5, "period": "week"}, "target"},
		{path, map[string]any{"name": "x", "metric": "workoutDays", "target": 8, "period": "week"}, "target"},
		{path, map[string]any{"name": "x", "metric": "workouts", "target": 3, "period": "day"}, "period"},
		{path, map[string]any{"name": "x", "metric": "workouts", "target": "3", "period": "week"}, "target"},
		{"/goals/" + alice + "/bad%20id", goal, "goalId"},
	} {
		code, body := srv.api(t, "PUT", c.path, serviceKey(), c.body)
		e, _ := body["error"].(map[string]any)
		if code != 400 || e["code"] != "INVALID_ARGUMENT" || e["field"] != c.field || body["success"] != false {
			t.Errorf("PUT %s %v: %d %v; want 400 on %s", c.path, c.body, code, body, c.field)
		}
	}
	if code, _ := srv.api(t, "PUT", path, nil, goal); code != 401 {
		t.Errorf("without a credential: %d", code)
	}
	if code, _ := srv.api(t, "GET", path, bearerOf(alice), nil); code != 403 {
		t.Errorf("a user's token: %d", code)
	}
	if code, body = srv.api(t, "DELETE", path, serviceKey(), nil); code != 200 || body["goalId"] != "weekly-3" {
		t.Fatalf("delete: %d %v", code, body)
	}
	for _, m := range []string{"DELETE", "GET"} {
		code, body := srv.api(t, m, path, serviceKey(), nil)
		if e, _ := body["error"].(map[string]any); code != 404 || e["code"] != "NOT_FOUND" {
			t.Errorf("%s after delete: %d %v", m, code, body)
		}
	}
}

// GET /admin/jobs lists the jobs in Korea's time; POST /admin/jobs/:name/run
// starts one (202 with its run id) whose result the list then shows, and
// the metrics count it.
func TestAdminJobsRoutes(t *testing.T) {
	srv := startServer(t, append(schedulerEnv(t), "SCHEDULER_GOAL_CHECK=off", "SCHEDULER_CLEANUP=30 3 * * *")...)
	code, body := srv.api(t, "GET", "/admin/jobs", serviceKey(), nil)
	if code != 200 {
		t.Fatalf("list: %d %v", code, body)
	}
	for name, want := range map[string]string{"daily-workout-reminder": "0 9 * * *", "weekly-report": "0 18 * * 0",
		"goal-check": "off", "cleanup": "30 3 * * *"} {
		j := jobOf(t, body, name)
		if j["schedule"] != want || j["timeZone"] != "Asia/Seoul" || j["enabled"] != (want != "off") {
			t.Errorf("%s: %v", name, j)
		}
		if next, _ := j["nextRun"].(string); (want != "off") != (next != "") {
			t.Errorf("%s: nextRun %v", name, j["nextRun"])
		}
	}
	if next, _ := time.Parse(time.RFC3339, jobOf(t, body, "daily-workout-reminder")["nextRun"].(string)); next.UTC().Hour() != 0 ||
		next.UTC().Minute() != 0 {
		t.Errorf("the reminder's next run %v is not 09:00 KST (00:00 UTC)", next)
	}

	if code, body := srv.api(t, "POST", "/admin/jobs/nope/run", serviceKey(), nil); code != 404 ||
		body["error"].(map[string]any)["code"] != "NOT_FOUND" {
		t.Errorf("unknown job: %d %v", code, body)
	}
	if code, _ := srv.api(t, "POST", "/admin/jobs/cleanup/run", bearerOf(alice), nil); code != 403 {
		t.Errorf("a user's token: %d", code)
	}
	code, body = srv.api(t, "POST", "/admin/jobs/cleanup/run", serviceKey(), nil)
	runID, _ := body["runId"].(string)
	if code != 202 || runID == "" || body["job"] != "cleanup" {
		t.Fatalf("run: %d %v", code, body)
	}
	eventually(t, 10*time.Second, func() error {
		_, body := srv.api(t, "GET", "/admin/jobs", serviceKey(), nil)
		last, _ := jobOf(t, body, "cleanup")["lastRun"].(map[string]any)
		if last["runId"] != runID || last["result"] != "ok" || last["trigger"] != "manual" || last["finishedAt"] == nil {
			return fmt.Errorf("cleanup's last run: %v", last)
		}
		return nil
	})
	metrics := srv.do(t, "GET", "/metrics", nil, nil)
	if !strings.Contains(string(metrics.raw), `commserver_job_runs_total{job="cleanup",result="ok",trigger="manual"} 1`) {
		t.Errorf("metrics lack the run:\n%s", grepLines(string(metrics.raw), "commserver_job"))
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A user who connects is active: the reminder run by hand reaches their
// socket, once, however often it is run in the same period.
func TestReminderReachesAConnectedUserOnce(t *testing.T) {
	srv := startServer(t, schedulerEnv(t)...)
	c := newJS(t, srv)
	c.connect("alice", token(alice))
	c.waitEvent("alice", "unreadNotificationCount")
	// The connection is written before the run (the recorder's own interval is 30 s).
	var got map[string]any
	eventually(t, 20*time.Second, func() error {
		code, body := srv.api(t, "POST", "/admin/jobs/daily-workout-reminder/run", serviceKey(), nil)
		if code != 202 && code != 409 {
			t.Fatalf("run: %d %v", code, body)
		}
		args, err := c.tryWait("alice", "newNotification", time.Second)
		if err != nil {
			return err
		}
		got, _ = args[0].(map[string]any)
		return nil
	})
	if got["title"] != "운동 시간이에요! ⏰" || got["type"] != "workout_reminder" || got["userId"] != alice {
		t.Fatalf("newNotification %v", got)
	}
	eventually(t, 10*time.Second, func() error { // the next run, in the same period, finds alice served
		code, body := srv.api(t, "POST", "/admin/jobs/daily-workout-reminder/run", serviceKey(), nil)
		if code != 202 {
			return fmt.Errorf("run: %d %v", code, body)
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		_, body := srv.api(t, "GET", "/admin/jobs", serviceKey(), nil)
		last, _ := jobOf(t, body, "daily-workout-reminder")["lastRun"].(map[string]any)
		counts, _ := last["counts"].(map[string]any)
		if last["result"] != "ok" || counts["skipped"] != 1.0 || counts["sent"] != 0.0 {
			return fmt.Errorf("last run %v", last)
		}
		return nil
	})
	c.noEvent("alice", "newNotification", 500*time.Millisecond)
	code, body := srv.api(t, "GET", "/notifications?"+url.Values{"limit": {"100"}}.Encode(), bearerOf(alice), nil)
	if code != 200 || body["totalCount"] != 1.0 {
		t.Fatalf("alice's notifications: %d %v", code, body)
	}
}
