package goals

import (
	"errors"
	"strings"
	"testing"

	commserver "github.com/fitmate/commserver"
)

func TestValidate(t *testing.T) {
	s := func(v string) *string { return &v }
	f := func(v float64) *float64 { return &v }
	for _, c := range []struct {
		in    Input
		field string // "" when valid
	}{
		{Input{s("주 3회"), s("workouts"), f(3), s("week")}, ""},
		{Input{s(" 월 1000분 "), s("minutes"), f(1000.5), s("month")}, ""},
		{Input{s("x"), s("workoutDays"), f(31), s("month")}, ""},
		{Input{nil, s("workouts"), f(3), s("week")}, "name"},
		{Input{s("  "), s("workouts"), f(3), s("week")}, "name"},
		{Input{s(strings.Repeat("가", 101)), s("workouts"), f(3), s("week")}, "name"},
		{Input{s("a\nb"), s("workouts"), f(3), s("week")}, "name"},
		{Input{s("x"), s("steps"), f(3), s("week")}, "metric"},
		{Input{s("x"), nil, f(3), s("week")}, "metric"},
		{Input{s("x"), s("workouts"), f(3), s("day")}, "period"},
		{Input{s("x"), s("workouts"), nil, s("week")}, "target"},
		{Input{s("x"), s("workouts"), f(0), s("week")}, "target"},
		{Input{s("x"), s("workouts"), f(2.5), s("week")}, "target"},
		{Input{s("x"), s("calories"), f(2e9), s("week")}, "target"},
		{Input{s("x"), s("workoutDays"), f(8), s("week")}, "target"},
		{Input{s("x"), s("workoutDays"), f(32), s("month")}, "target"},
	} {
		g, err := validate(c.in)
		var ce *commserver.Error
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%+v: %v", c.in, err)
		case c.field == "" && g.Name != strings.TrimSpace(*c.in.Name):
			t.Errorf("name %q", g.Name)
		case c.field != "" && (!errors.As(err, &ce) || ce.Code != commserver.CodeInvalid || ce.Field != c.field):
			t.Errorf("%+v: %v; want INVALID_ARGUMENT on %s", c.in, err, c.field)
		}
	}
}

func TestValidateIDs(t *testing.T) {
	for _, c := range []struct{ user, goal, field string }{
		{"aaaaaaaaaaaaaaaaaaaaaaa1", "weekly-3", ""},
		{"user:42", "a.b_c:d", ""},
		{"", "g", "userId"},
		{"a/b", "g", "userId"},
		{"a b", "g", "userId"},
		{strings.Repeat("u", 129), "g", "userId"},
		{"u", "", "goalId"},
		{"u", "bad id", "goalId"},
		{"u", "목표", "goalId"},
		{"u", strings.Repeat("g", 65), "goalId"},
	} {
		err := ValidateIDs(c.user, c.goal)
		var ce *commserver.Error
		if c.field == "" && err != nil || c.field != "" && (!errors.As(err, &ce) || ce.Field != c.field) {
			t.Errorf("%q %q: %v; want field %q", c.user, c.goal, err, c.field)
		}
	}
}
