package sms_test

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/sms"
)

const (
	num     = "010-1234-5678"
	numE164 = "+821012345678"
	ipA     = "203.0.113.7"
	ipB     = "198.51.100.20"
)

var sixDigits = regexp.MustCompile(`[0-9]{6}`)

// codeOf returns the code in the i-th text sent.
func codeOf(t *testing.T, f *fixture, i int) string {
	t.Helper()
	sent := f.sent.sent()
	if len(sent) <= i {
		t.Fatalf("%d texts sent, want at least %d", len(sent), i+1)
	}
	code := sixDigits.FindString(sent[i].Body)
	if code == "" {
		t.Fatalf("no code in %q", sent[i].Body)
	}
	return code
}

func wrongCode(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

func verify(t *testing.T, f *fixture, code string) bool {
	t.Helper()
	ok, err := f.svc.VerifyOTP(context.Background(), num, code, ipA)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestOTPLifecycle(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ctx := context.Background()
	if err := f.svc.RequestOTP(ctx, num, ipA); err != nil {
		t.Fatal(err)
	}
	code := codeOf(t, f, 0)
	m := f.sent.sent()[0]
	if m.To != numE164 || !strings.Contains(m.Body, "FitMate 인증번호: "+code) || strings.Contains(m.Redacted, code) ||
		!strings.Contains(m.Redacted, sms.OTPMask) {
		t.Fatalf("text %+v", m)
	}
	if verify(t, f, wrongCode(code)) {
		t.Fatal("a wrong code passed")
	}
	if !verify(t, f, code) {
		t.Fatal("the right code failed")
	}
	if verify(t, f, code) {
		t.Fatal("a used code passed again")
	}
	// A code is bound to its number.
	if err := f.svc.RequestOTP(ctx, "010-9999-8888", ipA); err != nil {
		t.Fatal(err)
	}
	if verify(t, f, codeOf(t, f, 1)) {
		t.Fatal("another number's code passed")
	}
}

func TestOTPWrongAttemptsBurnTheCode(t *testing.T) {
	for _, wrong := range []int{4, 5} {
		t.Run(map[int]string{4: "4 wrong then right passes", 5: "5 wrong burn it"}[wrong], func(t *testing.T) {
			f := newFixture(t, fixtureOpts{})
			if err := f.svc.RequestOTP(context.Background(), num, ipA); err != nil {
				t.Fatal(err)
			}
			code := codeOf(t, f, 0)
			for range wrong {
				if verify(t, f, wrongCode(code)) {
					t.Fatal("a wrong code passed")
				}
			}
			if got := verify(t, f, code); got != (wrong < 5) {
				t.Fatalf("the right code after %d wrong ones: %v", wrong, got)
			}
		})
	}
}

func TestOTPConcurrentWrongAttemptsAreAllCounted(t *testing.T) {
	for _, wrong := range []int{4, 5} {
		f := newFixture(t, fixtureOpts{})
		if err := f.svc.RequestOTP(context.Background(), num, ipA); err != nil {
			t.Fatal(err)
		}
		code := codeOf(t, f, 0)
		var wg sync.WaitGroup
		for range wrong {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if ok, err := f.svc.VerifyOTP(context.Background(), num, wrongCode(code), ipA); ok || err != nil {
					t.Errorf("wrong code: %v %v", ok, err)
				}
			}()
		}
		wg.Wait()
		if got := verify(t, f, code); got != (wrong < 5) {
			t.Errorf("the right code after %d concurrent wrong ones: %v", wrong, got)
		}
	}
}

func TestOTPConcurrentVerifyPassesOnce(t *testing.T) {
	f := newFixture(t, fixtureOpts{otp: sms.OTPOptions{Cooldown: time.Millisecond, DailyLimit: 100},
		opts: sms.Options{OTPVerifiesPerIP: 1000}})
	for round := range 10 {
		time.Sleep(2 * time.Millisecond) // past the cooldown
		if err := f.svc.RequestOTP(context.Background(), num, ipA); err != nil {
			t.Fatal(err)
		}
		code := codeOf(t, f, round)
		var passed atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ok, err := f.svc.VerifyOTP(context.Background(), num, code, ipA)
				if err != nil {
					t.Error(err)
				}
				if ok {
					passed.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if n := passed.Load(); n != 1 {
			t.Fatalf("round %d: %d of 20 concurrent checks of the right code passed, want exactly 1", round, n)
		}
	}
}

func TestOTPExpires(t *testing.T) {
	f := newFixture(t, fixtureOpts{otp: sms.OTPOptions{TTL: 400 * time.Millisecond}})
	if err := f.svc.RequestOTP(context.Background(), num, ipA); err != nil {
		t.Fatal(err)
	}
	code := codeOf(t, f, 0)
	time.Sleep(600 * time.Millisecond)
	if verify(t, f, code) {
		t.Fatal("an expired code passed")
	}
}

func rateLimited(t *testing.T, err error, most time.Duration) {
	t.Helper()
	var ce *commserver.Error
	if !errors.As(err, &ce) || ce.Code != commserver.CodeRateLimited {
		t.Fatalf("err = %v, want RATE_LIMITED", err)
	}
	if ce.RetryAfter <= 0 || ce.RetryAfter > most {
		t.Fatalf("RetryAfter = %v, want in (0, %v]", ce.RetryAfter, most)
	}
}

func TestOTPResendCooldown(t *testing.T) {
	f := newFixture(t, fixtureOpts{otp: sms.OTPOptions{Cooldown: time.Minute}})
	ctx := context.Background()
	if err := f.svc.RequestOTP(ctx, num, ipA); err != nil {
		t.Fatal(err)
	}
	rateLimited(t, f.svc.RequestOTP(ctx, num, ipB), time.Minute)
	if n := len(f.sent.sent()); n != 1 {
		t.Fatalf("%d texts sent during the cooldown", n)
	}
	// the first code still works
	if !verify(t, f, codeOf(t, f, 0)) {
		t.Fatal("the code was replaced by a refused request")
	}
	// another number is not affected
	if err := f.svc.RequestOTP(ctx, "010-2222-3333", ipA); err != nil {
		t.Fatal(err)
	}
}

func TestOTPDailyCapPerNumber(t *testing.T) {
	f := newFixture(t, fixtureOpts{otp: sms.OTPOptions{Cooldown: time.Millisecond, DailyLimit: 3}})
	ctx := context.Background()
	for i := range 3 {
		if err := f.svc.RequestOTP(ctx, num, ipA); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	rateLimited(t, f.svc.RequestOTP(ctx, num, ipB), 24*time.Hour)
	if n := len(f.sent.sent()); n != 3 {
		t.Fatalf("%d texts sent, want 3", n)
	}
}

func TestOTPLimitPerClientIP(t *testing.T) {
	f := newFixture(t, fixtureOpts{opts: sms.Options{OTPRequestsPerIP: 3, OTPVerifiesPerIP: 4, OTPIPWindow: time.Minute}})
	ctx := context.Background()
	numbers := []string{"010-1000-0001", "010-1000-0002", "010-1000-0003", "010-1000-0004"}
	for _, n := range numbers[:3] {
		if err := f.svc.RequestOTP(ctx, n, ipA); err != nil {
			t.Fatal(err)
		}
	}
	rateLimited(t, f.svc.RequestOTP(ctx, numbers[3], ipA), time.Minute)
	if err := f.svc.RequestOTP(ctx, numbers[3], ipB); err != nil {
		t.Fatalf("another address is limited too: %v", err)
	}
	for range 4 {
		if _, err := f.svc.VerifyOTP(ctx, numbers[0], "123456", ipA); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.svc.VerifyOTP(ctx, numbers[0], "123456", ipA)
	rateLimited(t, err, time.Minute)
}

func TestOTPGlobalHourlyCap(t *testing.T) {
	f := newFixture(t, fixtureOpts{opts: sms.Options{OTPGlobalHourly: 2}})
	ctx := context.Background()
	for _, n := range []string{"010-1000-0001", "010-1000-0002"} {
		if err := f.svc.RequestOTP(ctx, n, ipA); err != nil {
			t.Fatal(err)
		}
	}
	rateLimited(t, f.svc.RequestOTP(ctx, "010-1000-0003", ipB), time.Hour)
}

func unavailable(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, commserver.ErrUnavailable) {
		t.Fatalf("err = %v, want SERVICE_UNAVAILABLE", err)
	}
}

func TestOTPFailsClosed(t *testing.T) {
	ctx := context.Background()
	t.Run("Redis down", func(t *testing.T) {
		f := newFixture(t, fixtureOpts{rdb: deadRedis(t)})
		unavailable(t, f.svc.RequestOTP(ctx, num, ipA))
		_, err := f.svc.VerifyOTP(ctx, num, "123456", ipA)
		unavailable(t, err)
		if len(f.sent.sent()) != 0 || len(f.logs(t, numE164)) != 0 {
			t.Fatal("something was sent or logged with Redis down")
		}
	})
	t.Run("no Redis configured", func(t *testing.T) {
		f := newFixture(t, fixtureOpts{noRedis: true})
		unavailable(t, f.svc.RequestOTP(ctx, num, ipA))
		_, err := f.svc.VerifyOTP(ctx, num, "123456", ipA)
		unavailable(t, err)
		// the rest of SMS works
		if _, err := f.svc.Send(ctx, num, "hello"); err != nil {
			t.Fatalf("a custom text without Redis: %v", err)
		}
	})
}

func TestOTPBadInput(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ctx := context.Background()
	for _, code := range []string{"", "12345", "1234567", "12a456", "１２３４５６"} {
		_, err := f.svc.VerifyOTP(ctx, num, code, ipA)
		var ce *commserver.Error
		if !errors.As(err, &ce) || ce.Code != commserver.CodeInvalid || ce.Field != "otpCode" {
			t.Errorf("otpCode %q: %v", code, err)
		}
	}
	for _, n := range []string{"", "02-312-3456", "+1 201-555-0123"} {
		err := f.svc.RequestOTP(ctx, n, ipA)
		var ce *commserver.Error
		if !errors.As(err, &ce) || ce.Field != "phoneNumber" {
			t.Errorf("phoneNumber %q: %v", n, err)
		}
	}
	if len(f.sent.sent()) != 0 {
		t.Fatal("a text was sent for bad input")
	}
}

// Neither Redis nor smslogs may reveal a code or a number.
func TestOTPLeavesNoCodeBehind(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ctx := context.Background()
	if err := f.svc.RequestOTP(ctx, num, ipA); err != nil {
		t.Fatal(err)
	}
	code := codeOf(t, f, 0)

	keys, err := f.rdb.Keys(ctx, f.prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys %v %v", keys, err)
	}
	for _, k := range keys {
		if strings.Contains(k, "12345678") || strings.Contains(k, ipA) {
			t.Errorf("key %q names the number or the address", k)
		}
		var values []string
		switch f.rdb.Type(ctx, k).Val() {
		case "hash":
			for field, v := range f.rdb.HGetAll(ctx, k).Val() {
				values = append(values, field, v)
			}
		case "string":
			values = append(values, f.rdb.Get(ctx, k).Val())
		}
		for _, v := range values {
			if strings.Contains(v, code) {
				t.Errorf("key %q holds the code: %q", k, v)
			}
		}
	}

	logs := f.logs(t, numE164)
	if len(logs) != 1 {
		t.Fatalf("%d log entries, want 1", len(logs))
	}
	raw, _ := json.Marshal(logs)
	if strings.Contains(string(raw), code) {
		t.Fatalf("smslogs holds the code: %s", raw)
	}
	if logs[0].TemplateType != sms.TemplateOTP || !strings.Contains(logs[0].Message, sms.OTPMask) || logs[0].Status != sms.StatusQueued {
		t.Fatalf("log entry %+v", logs[0])
	}
}
