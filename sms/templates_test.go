package sms

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// seedTemplates reads the template literals of the seed's SmsService
// (sms.service.ts in ../shared/seed), in order: reminder, recommendation, OTP.
func seedTemplates(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../../shared/seed/fitmate-communication-server.md")
	if err != nil {
		t.Skipf("the seed is not at ../shared: %v", err)
	}
	var out []string
	for _, m := range regexp.MustCompile("const message = `([^`]*)`").FindAllStringSubmatch(string(raw), -1) {
		out = append(out, strings.ReplaceAll(m[1], `\n`, "\n"))
	}
	if len(out) != 3 {
		t.Fatalf("found %d template literals in the seed, want 3", len(out))
	}
	return out
}

// render substitutes a template literal's ${...} the way JavaScript would.
func render(literal string, vars map[string]string) string {
	return regexp.MustCompile(`\$\{([^}]*)\}`).ReplaceAllStringFunc(literal, func(m string) string {
		return vars[m[2:len(m)-1]]
	})
}

func TestTemplatesAreTheSeedsByteForByte(t *testing.T) {
	seed := seedTemplates(t)
	const app = "https://fitmate.example.com"
	vars := map[string]string{
		"userName": "김철수", "workoutType": "하체", "this.configService.get('APP_URL')": app,
		"exerciseList": "스쿼트, 런지, 플랭크", "otpCode": "123456",
	}
	if got, want := workoutReminderText("김철수", "하체", app), render(seed[0], vars); got != want {
		t.Errorf("reminder:\n%q\nseed:\n%q", got, want)
	}
	if got, want := workoutRecommendationText("김철수", []string{"스쿼트", "런지", "플랭크"}, app), render(seed[1], vars); got != want {
		t.Errorf("recommendation:\n%q\nseed:\n%q", got, want)
	}
	if got, want := otpText("123456", 5*time.Minute), render(seed[2], vars); got != want {
		t.Errorf("otp:\n%q\nseed:\n%q", got, want)
	}
}

func TestOTPTextMaskHidesTheCode(t *testing.T) {
	masked := otpText(OTPMask, 5*time.Minute)
	if regexp.MustCompile(`[0-9]{6}`).MatchString(masked) || !strings.Contains(masked, OTPMask) {
		t.Fatalf("masked text %q", masked)
	}
	if got := otpText("000123", 3*time.Minute); !strings.Contains(got, "000123") || !strings.Contains(got, "3분") {
		t.Errorf("text follows the code and the lifetime: %q", got)
	}
}

func TestStatusOrder(t *testing.T) {
	before := func(s Status) map[Status]bool {
		m := map[Status]bool{}
		for _, b := range StatusesBefore(s) {
			m[b] = true
		}
		return m
	}
	chain := []Status{StatusPending, StatusUnknown, StatusQueued, StatusSending, StatusSent, StatusDelivered, StatusRead}
	for i, s := range chain {
		b := before(s)
		for j, o := range chain {
			if (j < i) != b[o] {
				t.Errorf("%s may follow %s: %v", s, o, b[o])
			}
		}
	}
	for _, final := range []Status{StatusDelivered, StatusUndelivered, StatusFailed, StatusCanceled, StatusLogged} {
		for _, other := range []Status{StatusDelivered, StatusUndelivered, StatusFailed, StatusCanceled} {
			if before(other)[final] {
				t.Errorf("%s may follow the final %s", other, final)
			}
		}
	}
	if StatusesBefore("bogus") != nil {
		t.Error("an unknown status has predecessors")
	}
}
