package scheduler

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// A job's runs are named by their slot: the time the schedule fired (or
// would have fired) at or before the run started. A scheduled run, a manual
// run, a retry and a catch-up of the same firing share the slot, and so the
// records that make them send nothing twice.

// slotTolerance absorbs a timer that fires a moment before its time.
const slotTolerance = 2 * time.Second

// parseSchedule parses a standard five-field cron expression in loc, as
// gocron does (it prefixes CRON_TZ the same way).
func parseSchedule(spec string, loc *time.Location) (cron.Schedule, error) {
	if strings.HasPrefix(spec, "@every") || strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, fmt.Errorf("schedule %q: want a calendar cron expression (the time zone is SCHEDULER_TIMEZONE)", spec)
	}
	s, err := cron.ParseStandard("CRON_TZ=" + loc.String() + " " + spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", spec, err)
	}
	return s, nil
}

// latestSlot returns the last time at or before t that s fires, or the zero
// time when it did not fire in the last year.
func latestSlot(s cron.Schedule, t time.Time) time.Time {
	for _, back := range []time.Duration{2 * time.Hour, 50 * time.Hour, 9 * 24 * time.Hour, 40 * 24 * time.Hour, 370 * 24 * time.Hour} {
		n := s.Next(t.Add(-back))
		if n.IsZero() || n.After(t) {
			continue
		}
		for {
			next := s.Next(n)
			if next.IsZero() || next.After(t) {
				return n
			}
			n = next
		}
	}
	return time.Time{}
}

// periodKey names a slot in loc, minute precision: 2025-01-15T09:00+09:00.
func periodKey(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02T15:04Z07:00")
}

// weekOf returns the start (Monday 00:00 in loc) and the ISO name
// (2025-W03) of t's week.
func weekOf(t time.Time, loc *time.Location) (time.Time, string) {
	l := t.In(loc)
	y, w := l.ISOWeek()
	back := (int(l.Weekday()) + 6) % 7 // days since Monday
	start := time.Date(l.Year(), l.Month(), l.Day()-back, 0, 0, 0, 0, loc)
	return start, fmt.Sprintf("%04d-W%02d", y, w)
}

// monthOf returns the start (the 1st, 00:00 in loc) and the name (2025-01) of t's month.
func monthOf(t time.Time, loc *time.Location) (time.Time, string) {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, loc), l.Format("2006-01")
}

// dayOf names t's calendar day in loc.
func dayOf(t time.Time, loc *time.Location) string { return t.In(loc).Format("2006-01-02") }

// deliveryKey names what one job owes one recipient in one period: the
// unique key of the delivery record.
func deliveryKey(job, period, recipient string) string {
	return job + "@" + period + "/" + recipient
}

// notificationID derives the id of the notification a delivery creates: an
// ObjectId whose time is at (the period's start) and whose other 8 bytes
// come from the delivery key. Every attempt at a delivery computes the same
// id, so the notifications collection's unique _id lets at most one of them
// insert it: a run killed between the insert and its record, or two runs at
// once, cannot notify twice.
func notificationID(at time.Time, key string) string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], uint32(at.Unix()))
	sum := sha256.Sum256([]byte(key))
	copy(b[4:], sum[:8])
	return hex.EncodeToString(b[:])
}
