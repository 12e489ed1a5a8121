package scheduler_test

import (
	"context"
	"testing"
	"time"

	"github.com/fitmate/commserver/goals"
	"github.com/fitmate/commserver/notify"
	"github.com/fitmate/commserver/scheduler"
	"github.com/jonboulle/clockwork"
)

func workoutData(name string, duration, calories any) map[string]any {
	d := map[string]any{"exerciseName": name}
	if duration != nil {
		d["duration"] = duration
	}
	if calories != nil {
		d["calories"] = calories
	}
	return d
}

// The weekly report of Sunday 2025-01-19 18:00 KST (09:00 UTC) counts the
// workouts of the 7 days before it, days as Seoul sees them. User A's week
// has two workouts on one Seoul day that are on two UTC days (08:00 and
// 10:00 KST on the 15th); user B's has two Seoul days within one UTC day
// (23:30 KST on the 13th and 00:30 KST on the 14th).
func TestWeeklyReportFromWorkouts(t *testing.T) {
	a, b, c, d := oid(1), oid(2), oid(3), oid(4)
	w := newWorld(t)
	w.workout(a, at("2025-01-14T23:00:00Z"), workoutData("스쿼트", 20, 100))      // Wed 15th 08:00 KST
	w.workout(a, at("2025-01-15T01:00:00Z"), workoutData("런닝", 40, 150.4))     // Wed 15th 10:00 KST
	w.workout(a, at("2025-01-17T03:00:00Z"), workoutData("요가", 31, 99.8))      // Fri 17th 12:00 KST
	w.workout(a, at("2025-01-19T09:00:00Z"), workoutData("late", 999, 999))    // at the slot: next week's
	w.workout(b, at("2025-01-13T14:30:00Z"), workoutData("수영", 30, 200))       // Mon 13th 23:30 KST
	w.workout(b, at("2025-01-13T15:30:00Z"), workoutData("자전거", 45, 300))      // Tue 14th 00:30 KST
	w.workout(b, at("2025-01-13T16:00:00Z"), workoutData("걷기", nil, 50))       // Tue 14th 01:00 KST, no duration
	w.workout(c, at("2025-01-12T08:59:00Z"), workoutData("too early", 10, 10)) // before the window
	w.connected(at("2025-01-18T00:00:00Z"), d)                                 // active, no workout: no report

	pod := w.instance("pod-a", setup{options: func(o *scheduler.Options) {
		o.Clock = clockwork.NewFakeClockAt(at("2025-01-19T09:00:30Z"))
	}})
	r, err := pod.RunNow(context.Background(), scheduler.JobWeeklyReport)
	if err != nil || r.Counts.Sent != 2 || r.Period != "2025-01-19T18:00+09:00" {
		t.Fatalf("run: %+v, %v", r, err)
	}
	for _, want := range []struct {
		user    string
		message string
		data    map[string]any
	}{
		{a, "이번 주 2일 운동했어요! 총 350칼로리 소모!",
			map[string]any{"workoutDays": 2.0, "totalCalories": 350.0, "totalWorkouts": 3.0, "averageWorkoutTime": 30.0}},
		{b, "이번 주 2일 운동했어요! 총 550칼로리 소모!",
			map[string]any{"workoutDays": 2.0, "totalCalories": 550.0, "totalWorkouts": 3.0, "averageWorkoutTime": 38.0}},
	} {
		got := w.ofType(want.user, notify.TypeWeeklyReport)
		if len(got) != 1 {
			t.Fatalf("user %s has %d weekly reports", want.user, len(got))
		}
		n := got[0]
		if n.Title != "주간 운동 리포트 📊" || n.Message != want.message {
			t.Errorf("user %s: %q / %q", want.user, n.Title, n.Message)
		}
		for k, v := range want.data {
			if n.Data[k] != v {
				t.Errorf("user %s: data.%s = %v, want %v (data %v)", want.user, k, n.Data[k], v, n.Data)
			}
		}
	}
	for _, u := range []string{c, d} {
		if got := w.ofType(u, notify.TypeWeeklyReport); len(got) != 0 {
			t.Errorf("user %s had nothing to report and got %v", u, got)
		}
	}
	again, err := pod.RunNow(context.Background(), scheduler.JobWeeklyReport)
	if err != nil || again.Counts.Sent != 0 || again.Counts.Skipped != 2 {
		t.Fatalf("second run: %+v, %v", again.Counts, err)
	}
}

func putGoal(t *testing.T, svc *goals.Service, userID, goalID, name, metric, period string, target float64) {
	t.Helper()
	if _, _, err := svc.Put(context.Background(), userID, goalID, goals.Input{Name: &name, Metric: &metric, Period: &period, Target: &target}); err != nil {
		t.Fatal(err)
	}
}

// Goals are measured over Seoul weeks (from Monday 00:00 KST, Sunday 15:00
// UTC) and months, and a goal reached gets one notification per period.
func TestGoalCheckOncePerGoalAndPeriod(t *testing.T) {
	a, b := oid(1), oid(2)
	w := newWorld(t)
	svc := goals.New(w.db, nil)
	putGoal(t, svc, a, "week-workouts", "주 3회 운동", "workouts", "week", 3)
	putGoal(t, svc, a, "week-minutes", "주 100분 운동", "minutes", "week", 100)
	putGoal(t, svc, a, "month-calories", "월 300칼로리", "calories", "month", 300)
	putGoal(t, svc, a, "week-days", "주 2일 운동", "workoutDays", "week", 2)
	putGoal(t, svc, b, "week-once", "주 1회", "workouts", "week", 1)
	putGoal(t, svc, b, "month-once", "월 1회", "workouts", "month", 1)

	w.workout(a, at("2025-01-14T23:00:00Z"), workoutData("스쿼트", 20, 100)) // Wed 15th KST
	w.workout(a, at("2025-01-15T01:00:00Z"), workoutData("런닝", 40, 150))  // Wed 15th KST
	w.workout(a, at("2025-01-17T03:00:00Z"), workoutData("요가", 31, 99))   // Fri 17th KST
	w.workout(b, at("2025-01-12T14:30:00Z"), workoutData("수영", 30, 200))  // Sun 12th 23:30 KST: last week

	clock := clockwork.NewFakeClockAt(at("2025-01-19T14:30:00Z")) // Sunday 23:30 KST
	pod := w.instance("pod-a", setup{options: func(o *scheduler.Options) { o.Clock = clock }})
	run := func(want int64) {
		t.Helper()
		r, err := pod.RunNow(context.Background(), scheduler.JobGoalCheck)
		if err != nil || r.Counts.Sent != want {
			t.Fatalf("goal-check at %s: %+v, %v; want %d sent", clock.Now().UTC().Format(time.RFC3339), r.Counts, err, want)
		}
	}
	achieved := func(user string) map[string][]string { // goal -> periods notified
		out := map[string][]string{}
		for _, n := range w.ofType(user, notify.TypeGoalAchieved) {
			out[n.Data["goalId"].(string)] = append(out[n.Data["goalId"].(string)], n.Data["periodKey"].(string))
		}
		return out
	}

	run(4) // A: 3 workouts, 2 days, 349 calories (91 minutes: not yet); B: January, not this week
	run(0) // the next hour's run, or a second instance: nothing again
	gotA, gotB := achieved(a), achieved(b)
	if len(gotA) != 3 || len(gotA["week-workouts"]) != 1 || len(gotA["week-days"]) != 1 || gotA["month-calories"][0] != "2025-01" ||
		len(gotB) != 1 || gotB["month-once"][0] != "2025-01" {
		t.Fatalf("achieved: A %v, B %v", gotA, gotB)
	}
	for _, n := range w.ofType(a, notify.TypeGoalAchieved) {
		if n.Data["goalId"] == "week-workouts" && (n.Title != "목표 달성! 🏆" || n.Message != "주 3회 운동 목표를 달성했습니다! 축하드려요!" ||
			n.Data["progress"] != 3.0 || n.Data["target"] != 3.0 || n.Data["periodKey"] != "2025-W03") {
			t.Errorf("notification %+v", n)
		}
	}

	// Monday 00:10 KST: a new week. A long workout reaches the minutes goal of week 4 only.
	w.workout(a, at("2025-01-19T15:10:00Z"), workoutData("등산", 200, 10))
	clock.Advance(time.Hour) // Monday 00:30 KST
	run(1)
	if got := achieved(a)["week-minutes"]; len(got) != 1 || got[0] != "2025-W04" {
		t.Fatalf("week-minutes notified for %v", got)
	}

	// February 1st 00:10 KST (January 31st 15:10 UTC): a new month.
	w.workout(a, at("2025-01-31T15:10:00Z"), workoutData("복싱", 10, 400))
	clock.Advance(at("2025-01-31T15:30:00Z").Sub(clock.Now()))
	run(1)
	if got := achieved(a)["month-calories"]; len(got) != 2 || got[1] != "2025-02" && got[0] != "2025-02" {
		t.Fatalf("month-calories notified for %v", got)
	}
	if total := len(w.ofType(a, notify.TypeGoalAchieved)) + len(w.ofType(b, notify.TypeGoalAchieved)); total != 6 {
		t.Errorf("%d goal notifications in all, want 6", total)
	}
}
