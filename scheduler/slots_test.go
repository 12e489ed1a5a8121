package scheduler_test

import (
	"testing"
	"time"

	"github.com/fitmate/commserver/scheduler"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// Slots are the schedule's firings in Seoul: 09:00 KST is 00:00 UTC,
// Sunday 18:00 KST is Sunday 09:00 UTC.
func TestLatestSlotInSeoul(t *testing.T) {
	for _, c := range []struct {
		spec, now, want string
	}{
		{"0 9 * * *", "2025-01-15T00:00:00Z", "2025-01-15T00:00:00Z"}, // 09:00 KST is 00:00 UTC
		{"0 9 * * *", "2025-01-14T23:59:59Z", "2025-01-14T00:00:00Z"},
		{"0 9 * * *", "2025-01-15T14:59:00Z", "2025-01-15T00:00:00Z"},
		{"0 18 * * 0", "2025-01-19T09:00:00Z", "2025-01-19T09:00:00Z"}, // Sunday 18:00 KST is Sunday 09:00 UTC
		{"0 18 * * 0", "2025-01-19T08:59:00Z", "2025-01-12T09:00:00Z"},
		{"0 18 * * 0", "2025-01-25T20:00:00Z", "2025-01-19T09:00:00Z"},
		{"0 * * * *", "2025-01-15T10:30:00Z", "2025-01-15T10:00:00Z"},
		{"0 0 * * *", "2025-01-15T14:59:00Z", "2025-01-14T15:00:00Z"}, // midnight KST is 15:00 UTC the day before
		{"0 0 1 * *", "2025-03-10T00:00:00Z", "2025-02-28T15:00:00Z"},
	} {
		s, err := scheduler.ParseSchedule(c.spec, seoul)
		if err != nil {
			t.Fatal(err)
		}
		if got := scheduler.LatestSlot(s, at(c.now)); !got.Equal(at(c.want)) {
			t.Errorf("%q at %s: slot %s, want %s", c.spec, c.now, got.UTC().Format(time.RFC3339), c.want)
		}
	}
	if got := scheduler.PeriodKey(at("2025-01-15T00:00:00Z"), seoul); got != "2025-01-15T09:00+09:00" {
		t.Errorf("period key %q", got)
	}
}

// Weeks start on Monday 00:00 and months on the 1st 00:00, in Seoul.
func TestWeeksAndMonthsInSeoul(t *testing.T) {
	for _, c := range []struct {
		now, weekStart, week, monthStart, month string
	}{
		{"2025-01-19T14:59:00Z", "2025-01-12T15:00:00Z", "2025-W03", "2024-12-31T15:00:00Z", "2025-01"}, // Sunday 23:59 KST
		{"2025-01-19T15:00:00Z", "2025-01-19T15:00:00Z", "2025-W04", "2024-12-31T15:00:00Z", "2025-01"}, // Monday 00:00 KST
		{"2025-01-31T15:30:00Z", "2025-01-26T15:00:00Z", "2025-W05", "2025-01-31T15:00:00Z", "2025-02"}, // Feb 1st 00:30 KST
		{"2024-12-30T01:00:00Z", "2024-12-29T15:00:00Z", "2025-W01", "2024-11-30T15:00:00Z", "2024-12"}, // ISO week of the new year
	} {
		ws, w := scheduler.WeekOf(at(c.now), seoul)
		ms, m := scheduler.MonthOf(at(c.now), seoul)
		if !ws.Equal(at(c.weekStart)) || w != c.week || !ms.Equal(at(c.monthStart)) || m != c.month {
			t.Errorf("%s: week %s %s, month %s %s; want %s %s, %s %s", c.now, ws.UTC().Format(time.RFC3339), w,
				ms.UTC().Format(time.RFC3339), m, c.weekStart, c.week, c.monthStart, c.month)
		}
	}
}

func TestNotificationIDIsStablePerKey(t *testing.T) {
	start := at("2025-01-15T00:00:00Z")
	a := scheduler.NotificationID(start, scheduler.DeliveryKey("daily-workout-reminder", "2025-01-15T09:00+09:00", oid(1)))
	b := scheduler.NotificationID(start, scheduler.DeliveryKey("daily-workout-reminder", "2025-01-15T09:00+09:00", oid(1)))
	c := scheduler.NotificationID(start, scheduler.DeliveryKey("daily-workout-reminder", "2025-01-15T09:00+09:00", oid(2)))
	if a != b || a == c || len(a) != 24 || a[:8] != "6786fa80" { // 0x6786fa80 = 2025-01-15T00:00:00Z
		t.Fatalf("ids %s %s %s", a, b, c)
	}
}
