package commserver_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	commserver "github.com/fitmate/commserver"
)

func TestErrorIs(t *testing.T) {
	err := fmt.Errorf("save: %w", commserver.Errorf(commserver.CodeNotFound, "no message %q", "x"))
	if !errors.Is(err, commserver.ErrNotFound) {
		t.Fatal("wrapped not-found error does not match ErrNotFound")
	}
	if errors.Is(err, commserver.ErrForbidden) {
		t.Fatal("not-found error matches ErrForbidden")
	}
	if got := commserver.ErrorCode(err); got != commserver.CodeNotFound {
		t.Fatalf("ErrorCode = %s", got)
	}
	if got := commserver.ErrorMessage(err); got != `no message "x"` {
		t.Fatalf("ErrorMessage = %q", got)
	}
}

func TestInternalErrorsHideTheirText(t *testing.T) {
	err := errors.New("mongo: connection refused at 10.0.0.3")
	if got := commserver.ErrorCode(err); got != commserver.CodeInternal {
		t.Fatalf("ErrorCode = %s", got)
	}
	if got := commserver.ErrorMessage(err); got != "internal error" {
		t.Fatalf("ErrorMessage leaks %q", got)
	}
}

func TestIsObjectID(t *testing.T) {
	for s, want := range map[string]bool{
		"0123456789abcdef01234567":  true,
		"0123456789ABCDEF01234567":  true,
		"0123456789abcdef0123456":   false, // 23
		"0123456789abcdef012345678": false,
		"0123456789abcdef0123456g":  false,
		"":                          false,
	} {
		if got := commserver.IsObjectID(s); got != want {
			t.Errorf("IsObjectID(%q) = %v", s, got)
		}
	}
}

func TestJSTimeWritesDatesAsJavaScript(t *testing.T) {
	for in, want := range map[time.Time]string{
		time.Date(2025, 3, 1, 12, 30, 45, 590_000_000, time.UTC):                      `"2025-03-01T12:30:45.590Z"`,
		time.Date(2025, 3, 1, 12, 30, 45, 0, time.UTC):                                `"2025-03-01T12:30:45.000Z"`,
		time.Date(2025, 3, 1, 21, 30, 45, 123_456_789, time.FixedZone("KST", 9*3600)): `"2025-03-01T12:30:45.123Z"`,
	} {
		got, _ := commserver.JSTime(in).MarshalJSON()
		if string(got) != want {
			t.Errorf("%v → %s, want %s", in, got, want)
		}
	}
}
