package sms_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/sms"
	twiliomock "github.com/fitmate/commserver/test/twilio-mock"
)

const publicURL = "https://comm.example.com"

func codeIs(t *testing.T, err error, code commserver.Code, field string) *commserver.Error {
	t.Helper()
	var ce *commserver.Error
	if !errors.As(err, &ce) || ce.Code != code || ce.Field != field {
		t.Fatalf("err = %v, want %s on %q", err, code, field)
	}
	return ce
}

// The whole path with the real twilio-go against Twilio's spec: texts, log, statistics.
func TestServiceSendsThroughTwilioAndLogs(t *testing.T) {
	prism := twiliomock.StartPrism(t)
	f := newFixture(t, fixtureOpts{sender: newTwilio(t, prism),
		opts: sms.Options{AppURL: "https://app.fitmate.example", PublicURL: publicURL + "/", TwilioAuthToken: twiliomock.AuthToken}})
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	r, err := f.svc.SendWorkoutReminder(ctx, num, "김철수", "하체")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != sms.StatusQueued || !strings.HasPrefix(r.SID, "SM") {
		t.Fatalf("result %+v", r)
	}
	if _, err := f.svc.SendWorkoutRecommendation(ctx, num, "김철수", []string{"스쿼트", "런지"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Send(ctx, "+82 10 1234 5678", "오늘도 화이팅!"); err != nil {
		t.Fatal(err)
	}
	logs := f.logs(t, numE164)
	if len(logs) != 3 {
		t.Fatalf("%d log entries, want 3", len(logs))
	}
	byTemplate := map[sms.Template]sms.LogEntry{}
	for _, e := range logs {
		byTemplate[e.TemplateType] = e
		if e.Status != sms.StatusQueued || e.TwilioSID == "" || e.PhoneNumber != numE164 {
			t.Errorf("entry %+v", e)
		}
	}
	if m := byTemplate[sms.TemplateWorkoutReminder].Message; !strings.HasPrefix(m, "안녕하세요 김철수님!") ||
		!strings.HasSuffix(m, "앱에서 확인: https://app.fitmate.example") {
		t.Errorf("reminder text %q", m)
	}
	if m := byTemplate[sms.TemplateWorkoutRecommendation].Message; !strings.Contains(m, "\n\n스쿼트, 런지\n\n") {
		t.Errorf("recommendation text %q", m)
	}
	if m := byTemplate[sms.TemplateCustom].Message; m != "오늘도 화이팅!" {
		t.Errorf("custom text %q", m)
	}
	stats, err := f.svc.Statistics(ctx, before, time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 1 || stats[0] != (sms.Stat{Status: sms.StatusQueued, Count: 3}) {
		t.Fatalf("statistics %+v", stats)
	}
}

func TestServiceAsksForStatusCallbacksAtThePublicURL(t *testing.T) {
	f := newFixture(t, fixtureOpts{opts: sms.Options{PublicURL: publicURL + "/", TwilioAuthToken: twiliomock.AuthToken}})
	r, err := f.svc.Send(context.Background(), num, "hi")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.sent.sent()[0].StatusCallback, publicURL+"/sms/status-callback?log="+r.LogID; got != want {
		t.Fatalf("StatusCallback = %q, want %q", got, want)
	}
	g := newFixture(t, fixtureOpts{})
	if _, err := g.svc.Send(context.Background(), num, "hi"); err != nil {
		t.Fatal(err)
	}
	if cb := g.sent.sent()[0].StatusCallback; cb != "" {
		t.Fatalf("StatusCallback without PUBLIC_URL: %q", cb)
	}
}

// A timeout or 5xx is not retried; the entry says unknown until Twilio's
// signed callback settles it, and only forward.
func TestServiceUnknownOutcomeSettledByCallback(t *testing.T) {
	fake := twiliomock.StartFake(t, twiliomock.Reply{Status: 500, Code: 20500, Message: "Internal Server Error"})
	f := newFixture(t, fixtureOpts{sender: newTwilio(t, fake.URL),
		opts: sms.Options{PublicURL: publicURL, TwilioAuthToken: twiliomock.AuthToken}})
	ctx := context.Background()
	_, err := f.svc.Send(ctx, num, "hi")
	ce := codeIs(t, err, commserver.CodeUpstream, "")
	if !strings.Contains(ce.Message, "unknown") {
		t.Errorf("message %q does not say the outcome is unknown", ce.Message)
	}
	if n := len(fake.Creates()); n != 1 {
		t.Fatalf("%d creates: a 5xx was retried", n)
	}
	logs := f.logs(t, numE164)
	if len(logs) != 1 || logs[0].Status != sms.StatusUnknown || logs[0].ErrorCode != 20500 {
		t.Fatalf("log %+v", logs)
	}
	cbURL := fake.Creates()[0].Get("StatusCallback")
	uri := strings.TrimPrefix(cbURL, publicURL)
	callback := func(status, sig string) (bool, error) {
		form := url.Values{"MessageSid": {"SM0123456789abcdef0123456789abcdef"}, "MessageStatus": {status},
			"AccountSid": {twiliomock.AccountSID}}
		if sig == "" {
			sig = twiliomock.Sign(twiliomock.AuthToken, cbURL, form)
		}
		return f.svc.HandleStatusCallback(ctx, uri, form, sig)
	}
	if _, err := callback("delivered", "bm90IGEgc2lnbmF0dXJl"); !errors.Is(err, commserver.ErrForbidden) {
		t.Fatalf("bad signature: %v", err)
	}
	if f.logs(t, numE164)[0].Status != sms.StatusUnknown {
		t.Fatal("a forged callback changed the entry")
	}
	for _, step := range []struct {
		status string
		moved  bool
		want   sms.Status
	}{{"sent", true, sms.StatusSent}, {"sent", false, sms.StatusSent}, {"queued", false, sms.StatusSent},
		{"delivered", true, sms.StatusDelivered}, {"failed", false, sms.StatusDelivered}} {
		moved, err := callback(step.status, "")
		if err != nil || moved != step.moved {
			t.Fatalf("callback %s: moved=%v err=%v", step.status, moved, err)
		}
		e := f.logs(t, numE164)[0]
		if e.Status != step.want || e.TwilioSID != "SM0123456789abcdef0123456789abcdef" {
			t.Fatalf("after %s: %+v", step.status, e)
		}
	}
	if _, err := callback("pending", ""); !errors.Is(err, commserver.ErrInvalid) {
		t.Fatalf("our own status from a callback: %v", err)
	}
}

func TestServiceStatusCallbackNeedsPublicURL(t *testing.T) {
	f := newFixture(t, fixtureOpts{opts: sms.Options{TwilioAuthToken: twiliomock.AuthToken}})
	form := url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"sent"}}
	_, err := f.svc.HandleStatusCallback(context.Background(), "/sms/status-callback", form,
		twiliomock.Sign(twiliomock.AuthToken, "http://127.0.0.1/sms/status-callback", form))
	if !errors.Is(err, commserver.ErrForbidden) {
		t.Fatalf("err = %v", err)
	}
}

func TestServiceTwilioRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("invalid number: permanent, 502 on phoneNumber, logged failed", func(t *testing.T) {
		fake := twiliomock.StartFake(t, twiliomock.Reply{Status: 400, Code: 21211, Message: "The 'To' number is not a valid phone number."})
		f := newFixture(t, fixtureOpts{sender: newTwilio(t, fake.URL)})
		_, err := f.svc.Send(ctx, num, "hi")
		ce := codeIs(t, err, commserver.CodeUpstream, "phoneNumber")
		if !strings.Contains(ce.Message, "21211") {
			t.Errorf("message %q lacks Twilio's code", ce.Message)
		}
		e := f.logs(t, numE164)[0]
		if e.Status != sms.StatusFailed || e.ErrorCode != 21211 || e.ErrorMessage == "" {
			t.Fatalf("log %+v", e)
		}
	})
	t.Run("no credentials: refused, logged failed, as the seed did", func(t *testing.T) {
		f := newFixture(t, fixtureOpts{sender: sms.Unconfigured("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set")})
		_, err := f.svc.Send(ctx, num, "hi")
		ce := codeIs(t, err, commserver.CodeUnavailable, "")
		if !strings.Contains(ce.Message, "TWILIO_ACCOUNT_SID") {
			t.Errorf("message %q", ce.Message)
		}
		e := f.logs(t, numE164)[0]
		if e.Status != sms.StatusFailed || !strings.Contains(e.ErrorMessage, "not set") {
			t.Fatalf("log %+v", e)
		}
	})
	t.Run("OTP send fails: the code is in no error and no log", func(t *testing.T) {
		f := newFixture(t, fixtureOpts{})
		// A provider echoing the text back is the worst case.
		f.sent.echo = true
		for i, se := range []*sms.SendError{
			{HTTPStatus: 400, Code: 21408, Message: "Permission to send an SMS has not been enabled"},
			{HTTPStatus: 400, Code: 21211, Permanent: true},
			{HTTPStatus: 500, Unknown: true},
		} {
			f.sent.err = se
			err := f.svc.RequestOTP(ctx, fmt.Sprintf("010-3000-000%d", i), ipA)
			var ce *commserver.Error
			if !errors.As(err, &ce) || ce.Code != commserver.CodeUpstream {
				t.Fatalf("err = %v", err)
			}
			code := codeOf(t, f, i)
			entry := f.logs(t, fmt.Sprintf("+82103000000%d", i))[0]
			if strings.Contains(err.Error(), code) || strings.Contains(ce.Message, code) || strings.Contains(entry.ErrorMessage, code) {
				t.Fatalf("the code leaked: %v / %q", err, entry.ErrorMessage)
			}
		}
	})
}

func TestServiceValidation(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ctx := context.Background()
	_, err := f.svc.Send(ctx, num, "")
	codeIs(t, err, commserver.CodeInvalid, "message")
	_, err = f.svc.Send(ctx, num, strings.Repeat("가", sms.MaxBodyRunes+1))
	codeIs(t, err, commserver.CodeInvalid, "message")
	_, err = f.svc.Send(ctx, num, "bell\a")
	codeIs(t, err, commserver.CodeInvalid, "message")
	_, err = f.svc.Send(ctx, "02-312-3456", "hi")
	codeIs(t, err, commserver.CodeInvalid, "phoneNumber")
	_, err = f.svc.Send(ctx, "+44 7400 123456", "hi")
	codeIs(t, err, sms.CodeCountryNotAllowed, "phoneNumber")
	_, err = f.svc.SendWorkoutReminder(ctx, num, "", "하체")
	codeIs(t, err, commserver.CodeInvalid, "userName")
	_, err = f.svc.SendWorkoutReminder(ctx, num, "김철수", " ")
	codeIs(t, err, commserver.CodeInvalid, "workoutType")
	_, err = f.svc.SendWorkoutRecommendation(ctx, num, "김철수", nil)
	codeIs(t, err, commserver.CodeInvalid, "exercises")
	_, err = f.svc.SendWorkoutRecommendation(ctx, num, "김철수", []string{"스쿼트", ""})
	codeIs(t, err, commserver.CodeInvalid, "exercises[1]")
	_, err = f.svc.Statistics(ctx, time.Now(), time.Now().Add(-time.Hour))
	codeIs(t, err, commserver.CodeInvalid, "endDate")
	if n := len(f.sent.sent()); n != 0 {
		t.Fatalf("%d texts sent for bad input", n)
	}
}

// The notification service's offline channel: same path, and capped so a
// storm of notifications cannot become a storm of texts.
func TestSendOfflineIsCapped(t *testing.T) {
	f := newFixture(t, fixtureOpts{opts: sms.Options{AppURL: "https://app", NotificationHourlyLimit: 2, NumberDailyLimit: 3}})
	ctx := context.Background()
	for i := range 2 {
		if err := f.svc.SendOffline(ctx, "aaaaaaaaaaaaaaaaaaaaaaa1", num, "목표 달성! 🏆", "10km 달리기 목표를 달성했습니다!"); err != nil {
			t.Fatalf("notification %d: %v", i+1, err)
		}
	}
	rateLimited(t, f.svc.SendOffline(ctx, "aaaaaaaaaaaaaaaaaaaaaaa1", num, "again", "body"), time.Hour)
	// the daily cap counts every kind of text to the number
	if _, err := f.svc.Send(ctx, num, "custom"); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Send(ctx, num, "one too many")
	rateLimited(t, err, 24*time.Hour)
	if n := len(f.sent.sent()); n != 3 {
		t.Fatalf("%d texts sent, want 3", n)
	}
	got := f.sent.sent()[0].Body
	if got != "[FitMate] 목표 달성! 🏆\n\n10km 달리기 목표를 달성했습니다!\n\n앱에서 확인: https://app" {
		t.Errorf("notification text %q", got)
	}
	e := f.logs(t, numE164)
	if e[len(e)-1].TemplateType != sms.TemplateNotification {
		t.Errorf("template %q", e[len(e)-1].TemplateType)
	}
	err = f.svc.SendOffline(ctx, "u", "02-312-3456", "t", "b")
	codeIs(t, err, commserver.CodeInvalid, "phoneNumber")
}

func TestLimiters(t *testing.T) {
	rdb, prefix := testRedis(t)
	for name, l := range map[string]sms.Limiter{"memory": sms.NewMemoryLimiter(), "redis": sms.NewRedisLimiter(rdb, prefix)} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			for i := range 3 {
				if ok, _, err := l.Allow(ctx, "k", 3, 300*time.Millisecond); !ok || err != nil {
					t.Fatalf("event %d: %v %v", i+1, ok, err)
				}
			}
			ok, wait, err := l.Allow(ctx, "k", 3, 300*time.Millisecond)
			if ok || err != nil || wait <= 0 || wait > 300*time.Millisecond {
				t.Fatalf("4th event: ok=%v wait=%v err=%v", ok, wait, err)
			}
			if ok, _, _ := l.Allow(ctx, "other", 3, 300*time.Millisecond); !ok {
				t.Fatal("keys share a window")
			}
			time.Sleep(wait + 50*time.Millisecond)
			if ok, _, _ := l.Allow(ctx, "k", 3, 300*time.Millisecond); !ok {
				t.Fatal("the window did not end")
			}
		})
	}
	_, _, err := sms.NewRedisLimiter(deadRedis(t), "x:").Allow(context.Background(), "k", 1, time.Second)
	unavailable(t, err)
}
