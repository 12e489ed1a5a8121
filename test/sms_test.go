package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fitmate/commserver/sms"
	"github.com/fitmate/commserver/store"
	twiliomock "github.com/fitmate/commserver/test/twilio-mock"
	"github.com/redis/go-redis/v9"
)

const (
	redisURL   = "redis://127.0.0.1:6379"
	publicURL  = "https://comm.example.com"
	phoneLocal = "010-1234-5678"
	phoneE164  = "+821012345678"
)

// redisNamespace returns a key prefix of this test's own; its keys go with the test.
func redisNamespace(t *testing.T) string {
	t.Helper()
	_, prefix := testRedis(t, "test:e2e-sms:")
	return prefix
}

// testRedis connects to the shared Redis and returns a key prefix (under
// base) of this test's own; the test's keys are deleted when it ends.
func testRedis(t *testing.T, base string) (*redis.Client, string) {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := base + hex.EncodeToString(b) + ":"
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("these tests need Redis at %s (CI runs one): %v", redisURL, err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		rdb.Close()
	})
	return rdb, prefix
}

// twilioEnv points the server at a local Twilio with the test credentials.
func twilioEnv(base string) []string {
	return []string{"TWILIO_ACCOUNT_SID=" + twiliomock.AccountSID, "TWILIO_AUTH_TOKEN=" + twiliomock.AuthToken,
		"TWILIO_PHONE_NUMBER=" + twiliomock.From, "TWILIO_API_BASE_URL=" + base, "APP_URL=https://app.fitmate.example"}
}

// smsServer starts the server with Redis (its own namespace) and Twilio at base.
func smsServer(t *testing.T, base string, extra ...string) *server {
	t.Helper()
	env := append([]string{"REDIS_URL=" + redisURL, "SMS_REDIS_PREFIX=" + redisNamespace(t), "TWILIO_TIMEOUT=2s"}, twilioEnv(base)...)
	return startServer(t, append(env, extra...)...)
}

func (r reply) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.raw, &m); err != nil {
		t.Fatalf("not a JSON object (%d): %s", r.status, r.raw)
	}
	return m
}

// errorOf is the { code, field } of an error answer.
func (r reply) errorOf(t *testing.T) (code, field string) {
	t.Helper()
	m := r.obj(t)
	e, _ := m["error"].(map[string]any)
	if m["success"] != false || e == nil {
		t.Fatalf("not an error answer (%d): %s", r.status, r.raw)
	}
	code, _ = e["code"].(string)
	field, _ = e["field"].(string)
	return code, field
}

func with(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func statsPath() string {
	return "/sms/statistics?startDate=" + url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)) +
		"&endDate=" + url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
}

// stats reads GET /sms/statistics for the last and next hour as status → count.
func stats(t *testing.T, srv *server) map[string]int {
	t.Helper()
	r := srv.do(t, "GET", statsPath(), serviceKey(), nil)
	var rows []struct {
		ID    string `json:"_id"`
		Count int    `json:"count"`
	}
	if r.status != 200 || json.Unmarshal(r.raw, &rows) != nil {
		t.Fatalf("statistics: %d %s", r.status, r.raw)
	}
	out := map[string]int{}
	for _, row := range rows {
		out[row.ID] = row.Count
	}
	return out
}

var serviceRoutes = []struct {
	method, path string
	body         any
}{
	{"POST", "/sms/send", map[string]any{"phoneNumber": phoneLocal, "message": "오늘도 화이팅!"}},
	{"POST", "/sms/workout-reminder", map[string]any{"phoneNumber": phoneLocal, "userName": "김철수", "workoutType": "하체"}},
	{"POST", "/sms/workout-recommendation", map[string]any{"phoneNumber": phoneLocal, "userName": "김철수", "exercises": []string{"스쿼트", "런지"}}},
	{"GET", "", nil}, // statistics; path set at run time
}

func TestSMSServiceRoutesRefuseCallersWithoutTheServiceCredential(t *testing.T) {
	fake := twiliomock.StartFake(t)
	srv := smsServer(t, fake.URL)
	for _, rt := range serviceRoutes {
		path := rt.path
		if path == "" {
			path = statsPath()
		}
		for _, c := range []struct {
			name    string
			headers map[string]string
			status  int
			code    string
		}{
			{"no credential", nil, 401, "UNAUTHENTICATED"},
			{"wrong key", map[string]string{"X-API-Key": "not-the-service-key-0123"}, 401, "API_KEY_INVALID"},
			{"a user's token", bearerOf(alice), 403, "FORBIDDEN"},
			{"expired admin token", bearerOf(admin, "role", "admin", "exp", time.Now().Add(-time.Minute).Unix()), 401, "TOKEN_EXPIRED"},
		} {
			r := srv.do(t, rt.method, path, c.headers, rt.body)
			if code, _ := r.errorOf(t); r.status != c.status || code != c.code {
				t.Errorf("%s %s with %s: %d %s, want %d %s", rt.method, rt.path, c.name, r.status, r.raw, c.status, c.code)
			}
		}
	}
	if n := len(fake.Creates()); n != 0 {
		t.Fatalf("%d texts sent for refused callers", n)
	}
	for _, rt := range serviceRoutes {
		path := rt.path
		if path == "" {
			path = statsPath()
		}
		for name, h := range map[string]map[string]string{"key": serviceKey(), "admin": bearerOf(admin, "role", "admin")} {
			if r := srv.do(t, rt.method, path, h, rt.body); r.status != 200 {
				t.Errorf("%s %s with the %s: %d %s", rt.method, rt.path, name, r.status, r.raw)
			}
		}
	}
	if n := len(fake.Creates()); n != 6 {
		t.Fatalf("%d texts sent, want 6", n)
	}
}

func TestSMSBadInputIsA4xxNamingTheField(t *testing.T) {
	fake := twiliomock.StartFake(t)
	srv := smsServer(t, fake.URL)
	huge := strings.Repeat("가", sms.MaxBodyRunes+1)
	tests := []struct {
		name, method, path string
		body               any
		status             int
		code, field        string
	}{
		{"landline", "POST", "/sms/send", map[string]any{"phoneNumber": "02-312-3456", "message": "hi"}, 400, "INVALID_ARGUMENT", "phoneNumber"},
		{"garbage number", "POST", "/sms/send", map[string]any{"phoneNumber": "call me", "message": "hi"}, 400, "INVALID_ARGUMENT", "phoneNumber"},
		{"missing number", "POST", "/sms/workout-reminder", map[string]any{"userName": "a", "workoutType": "b"}, 400, "INVALID_ARGUMENT", "phoneNumber"},
		{"number as a JSON number", "POST", "/sms/send", `{"phoneNumber": 1012345678, "message": "hi"}`, 400, "INVALID_ARGUMENT", "phoneNumber"},
		{"foreign number", "POST", "/sms/send", map[string]any{"phoneNumber": "+44 7400 123456", "message": "hi"}, 400, "SMS_COUNTRY_NOT_ALLOWED", "phoneNumber"},
		{"empty body", "POST", "/sms/send", "", 400, "INVALID_ARGUMENT", ""},
		{"not JSON", "POST", "/sms/send", "phoneNumber=010", 400, "INVALID_ARGUMENT", ""},
		{"missing message", "POST", "/sms/send", map[string]any{"phoneNumber": phoneLocal}, 400, "INVALID_ARGUMENT", "message"},
		{"oversize message", "POST", "/sms/send", map[string]any{"phoneNumber": phoneLocal, "message": huge}, 400, "INVALID_ARGUMENT", "message"},
		{"oversize body", "POST", "/sms/send", map[string]any{"phoneNumber": phoneLocal, "message": "hi", "pad": strings.Repeat("x", 20_000)}, 413, "PAYLOAD_TOO_LARGE", ""},
		{"no exercises", "POST", "/sms/workout-recommendation", map[string]any{"phoneNumber": phoneLocal, "userName": "a", "exercises": []string{}}, 400, "INVALID_ARGUMENT", "exercises"},
		{"exercises not an array", "POST", "/sms/workout-recommendation", `{"phoneNumber":"010-1234-5678","userName":"a","exercises":"squat"}`, 400, "INVALID_ARGUMENT", "exercises"},
		{"missing userName", "POST", "/sms/workout-reminder", map[string]any{"phoneNumber": phoneLocal, "workoutType": "b"}, 400, "INVALID_ARGUMENT", "userName"},
		{"missing startDate", "GET", "/sms/statistics?endDate=2025-01-31", nil, 400, "INVALID_ARGUMENT", "startDate"},
		{"bad startDate", "GET", "/sms/statistics?startDate=yesterday&endDate=2025-01-31", nil, 400, "INVALID_ARGUMENT", "startDate"},
		{"bad endDate", "GET", "/sms/statistics?startDate=2025-01-01&endDate=2025-13-45", nil, 400, "INVALID_ARGUMENT", "endDate"},
		{"reversed dates", "GET", "/sms/statistics?startDate=2025-02-01&endDate=2025-01-01", nil, 400, "INVALID_ARGUMENT", "endDate"},
		{"OTP without number", "POST", "/sms/request-otp", map[string]any{}, 400, "INVALID_ARGUMENT", "phoneNumber"},
		{"OTP empty body", "POST", "/sms/request-otp", "", 400, "INVALID_ARGUMENT", ""},
		{"OTP bad number", "POST", "/sms/request-otp", map[string]any{"phoneNumber": "12345"}, 400, "INVALID_ARGUMENT", "phoneNumber"},
		{"OTP code not 6 digits", "POST", "/sms/verify-otp", map[string]any{"phoneNumber": phoneLocal, "otpCode": "12ab"}, 400, "INVALID_ARGUMENT", "otpCode"},
		{"OTP code as a number", "POST", "/sms/verify-otp", `{"phoneNumber":"010-1234-5678","otpCode":123456}`, 400, "INVALID_ARGUMENT", "otpCode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := srv.do(t, tt.method, tt.path, serviceKey(), tt.body)
			code, field := r.errorOf(t)
			if r.status != tt.status || code != tt.code || field != tt.field {
				t.Fatalf("%d %s, want %d %s on %q", r.status, r.raw, tt.status, tt.code, tt.field)
			}
		})
	}
	if n := len(fake.Creates()); n != 0 {
		t.Fatalf("%d texts sent for bad input", n)
	}
	if got := stats(t, srv); len(got) != 0 {
		t.Fatalf("bad input was logged: %v", got)
	}
}

// The real binary, the real twilio-go, and Twilio's spec: every request the
// server makes must be one the real API would accept.
func TestSMSRoutesThroughTwiliosSpec(t *testing.T) {
	prism := twiliomock.StartPrism(t)
	srv := smsServer(t, prism)
	r := srv.do(t, "POST", "/sms/send", serviceKey(), map[string]any{"phoneNumber": phoneLocal, "message": "오늘도 화이팅!"})
	if m := r.obj(t); r.status != 200 || m["success"] != true || m["message"] != "SMS 전송 성공" || m["status"] != "queued" {
		t.Fatalf("send: %d %s", r.status, r.raw)
	}
	for _, rt := range serviceRoutes[1:3] {
		if r := srv.do(t, rt.method, rt.path, serviceKey(), rt.body); r.status != 200 || r.obj(t)["success"] != true {
			t.Fatalf("%s: %d %s", rt.path, r.status, r.raw)
		}
	}
	if r := srv.do(t, "POST", "/sms/request-otp", nil, map[string]any{"phoneNumber": "010-5555-6666"}); r.status != 200 ||
		string(r.raw) != `{"success":true}`+"\n" && string(r.raw) != `{"success":true}` {
		t.Fatalf("request-otp: %d %s", r.status, r.raw)
	}
	if got := stats(t, srv); got["queued"] != 4 || len(got) != 1 {
		t.Fatalf("statistics %v, want 4 queued", got)
	}
}

var sixDigits = regexp.MustCompile(`[0-9]{6}`)

func TestOTPOverHTTP(t *testing.T) {
	fake := twiliomock.StartFake(t)
	srv := smsServer(t, fake.URL, "OTP_IP_REQUESTS=4", "OTP_RESEND_COOLDOWN=1m")
	from := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }

	// The same answer for any valid number: nothing says whether it is a user's.
	first := srv.do(t, "POST", "/sms/request-otp", from("203.0.113.1"), map[string]any{"phoneNumber": phoneLocal})
	other := srv.do(t, "POST", "/sms/request-otp", from("203.0.113.1"), map[string]any{"phoneNumber": "010-9876-5432"})
	if first.status != 200 || !bytes.Equal(first.raw, other.raw) || first.obj(t)["success"] != true {
		t.Fatalf("request-otp answers differ: %d %s / %d %s", first.status, first.raw, other.status, other.raw)
	}
	creates := fake.Creates()
	code := sixDigits.FindString(creates[0].Get("Body"))
	if creates[0].Get("To") != phoneE164 || !strings.HasPrefix(creates[0].Get("Body"), "FitMate 인증번호: "+code) {
		t.Fatalf("text sent: %v", creates[0])
	}

	verify := func(c string) map[string]any {
		r := srv.do(t, "POST", "/sms/verify-otp", from("203.0.113.1"), map[string]any{"phoneNumber": phoneLocal, "otpCode": c})
		if r.status != 200 {
			t.Fatalf("verify-otp: %d %s", r.status, r.raw)
		}
		return r.obj(t)
	}
	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	if m := verify(wrong); m["success"] != false || m["message"] != "인증번호가 일치하지 않습니다." {
		t.Fatalf("wrong code: %v", m)
	}
	if m := verify(code); m["success"] != true || m["message"] != "인증 성공" {
		t.Fatalf("right code: %v", m)
	}
	if m := verify(code); m["success"] != false {
		t.Fatalf("used code: %v", m)
	}

	// Resend cooldown: 429 with Retry-After.
	r := srv.do(t, "POST", "/sms/request-otp", from("203.0.113.1"), map[string]any{"phoneNumber": phoneLocal})
	if code, field := r.errorOf(t); r.status != 429 || code != "RATE_LIMITED" || field != "phoneNumber" {
		t.Fatalf("resend in the cooldown: %d %s", r.status, r.raw)
	}
	if s, _ := strconv.Atoi(r.header.Get("Retry-After")); s < 1 || s > 60 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}

	// Per client IP (through the trusted proxy's X-Forwarded-For): 4 requests
	// (the refused one counts), then 429.
	for i := range 1 {
		if r := srv.do(t, "POST", "/sms/request-otp", from("203.0.113.1"), map[string]any{"phoneNumber": fmt.Sprintf("010-4000-000%d", i)}); r.status != 200 {
			t.Fatalf("request %d: %d %s", i+3, r.status, r.raw)
		}
	}
	r = srv.do(t, "POST", "/sms/request-otp", from("203.0.113.1"), map[string]any{"phoneNumber": "010-4000-0009"})
	if code, _ := r.errorOf(t); r.status != 429 || code != "RATE_LIMITED" || r.header.Get("Retry-After") == "" {
		t.Fatalf("5th request from one address: %d %s", r.status, r.raw)
	}
	// A spoofed left-most hop does not escape the limit; another client does.
	r = srv.do(t, "POST", "/sms/request-otp", from("1.2.3.4, 203.0.113.1"), map[string]any{"phoneNumber": "010-4000-0009"})
	if r.status != 429 {
		t.Fatalf("spoofed X-Forwarded-For escaped the limit: %d %s", r.status, r.raw)
	}
	if r := srv.do(t, "POST", "/sms/request-otp", from("198.51.100.2"), map[string]any{"phoneNumber": "010-4000-0009"}); r.status != 200 {
		t.Fatalf("another address: %d %s", r.status, r.raw)
	}
	var codes []string
	for _, c := range fake.Creates() {
		codes = append(codes, sixDigits.FindString(c.Get("Body")))
	}
	if len(codes) != 4 || slices.Contains(codes, "") {
		t.Fatalf("codes sent: %q", codes)
	}

	// No code anywhere: not in smslogs, not in the server's logs.
	logs := srv.Logs()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(context.Background(), store.Options{DataDir: srv.DataDir}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	entries, err := db.SMSLogsTo(context.Background(), phoneE164, 10)
	if err != nil || len(entries) != 1 {
		t.Fatalf("smslogs for %s: %v %v", phoneE164, entries, err)
	}
	if e := entries[0]; e.TemplateType != sms.TemplateOTP || !strings.Contains(e.Message, sms.OTPMask) || e.Status != sms.StatusQueued {
		t.Fatalf("entry %+v", e)
	}
	var all []sms.LogEntry
	for _, n := range []string{phoneE164, "+821098765432", "+821040000000", "+821040000009"} {
		es, err := db.SMSLogsTo(context.Background(), n, 10)
		if err != nil || len(es) == 0 {
			t.Fatalf("smslogs for %s: %v %v", n, es, err)
		}
		all = append(all, es...)
	}
	raw, _ := json.Marshal(all)
	for _, c := range codes {
		if strings.Contains(string(raw), c) {
			t.Errorf("smslogs holds code %s: %s", c, raw)
		}
		if regexp.MustCompile(`(^|[^0-9])` + c + `([^0-9]|$)`).MatchString(logs) {
			t.Errorf("the server's log holds code %s", c)
		}
	}
	if strings.Contains(logs, "인증번호: ") && !strings.Contains(logs, "인증번호: "+sms.OTPMask) {
		t.Error("the server's log holds an OTP text")
	}
}

func TestOTPFailsClosedWithoutRedis(t *testing.T) {
	t.Run("no REDIS_URL", func(t *testing.T) {
		srv := startServer(t, "SMS_SENDER=log")
		r := srv.do(t, "POST", "/sms/request-otp", nil, map[string]any{"phoneNumber": phoneLocal})
		if code, _ := r.errorOf(t); r.status != 503 || code != "SERVICE_UNAVAILABLE" || !strings.Contains(string(r.raw), "Redis") {
			t.Fatalf("request-otp: %d %s", r.status, r.raw)
		}
		r = srv.do(t, "POST", "/sms/verify-otp", nil, map[string]any{"phoneNumber": phoneLocal, "otpCode": "123456"})
		if r.status != 503 {
			t.Fatalf("verify-otp: %d %s", r.status, r.raw)
		}
		// The rest of SMS works, and the development sender says it did not send.
		r = srv.do(t, "POST", "/sms/send", serviceKey(), map[string]any{"phoneNumber": phoneLocal, "message": "dev text"})
		if m := r.obj(t); r.status != 200 || m["success"] != true || m["status"] != "logged" {
			t.Fatalf("send with SMS_SENDER=log: %d %s", r.status, r.raw)
		}
		eventually(t, 5*time.Second, func() error {
			if !strings.Contains(srv.Logs(), "NOT sent") || !strings.Contains(srv.Logs(), "dev text") {
				return fmt.Errorf("the log does not show the unsent text")
			}
			return nil
		})
		if got := stats(t, srv); got["logged"] != 1 {
			t.Fatalf("statistics %v", got)
		}
	})
	t.Run("Redis down", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := l.Addr().String()
		l.Close()
		fake := twiliomock.StartFake(t)
		srv := startServer(t, append(twilioEnv(fake.URL), "REDIS_URL=redis://"+dead)...)
		r := srv.do(t, "POST", "/sms/request-otp", nil, map[string]any{"phoneNumber": phoneLocal})
		if code, _ := r.errorOf(t); r.status != 503 || code != "SERVICE_UNAVAILABLE" {
			t.Fatalf("request-otp: %d %s", r.status, r.raw)
		}
		r = srv.do(t, "POST", "/sms/verify-otp", nil, map[string]any{"phoneNumber": phoneLocal, "otpCode": "123456"})
		if r.status != 503 {
			t.Fatalf("verify-otp: %d %s", r.status, r.raw)
		}
		if n := len(fake.Creates()); n != 0 {
			t.Fatalf("%d texts sent with Redis down", n)
		}
	})
}

func TestSMSWithoutTwilioCredentialsIsRefusedAndLogged(t *testing.T) {
	srv := startServer(t)
	r := srv.do(t, "POST", "/sms/send", serviceKey(), map[string]any{"phoneNumber": phoneLocal, "message": "hi"})
	if code, _ := r.errorOf(t); r.status != 503 || code != "SERVICE_UNAVAILABLE" || !strings.Contains(string(r.raw), "TWILIO_ACCOUNT_SID") {
		t.Fatalf("send: %d %s", r.status, r.raw)
	}
	if got := stats(t, srv); got["failed"] != 1 || len(got) != 1 {
		t.Fatalf("statistics %v, want 1 failed", got)
	}
}

func TestSMSTwilioFailuresOverHTTP(t *testing.T) {
	fake := twiliomock.StartFake(t, twiliomock.Reply{Status: 400, Code: 21211, Message: "The 'To' number +821012345678 is not a valid phone number."},
		twiliomock.Reply{Status: 503, Code: 20503, Message: "Service Unavailable"})
	srv := smsServer(t, fake.URL)
	r := srv.do(t, "POST", "/sms/send", serviceKey(), map[string]any{"phoneNumber": phoneLocal, "message": "hi"})
	if code, field := r.errorOf(t); r.status != 502 || code != "UPSTREAM_ERROR" || field != "phoneNumber" || !strings.Contains(string(r.raw), "21211") {
		t.Fatalf("21211: %d %s", r.status, r.raw)
	}
	r = srv.do(t, "POST", "/sms/send", serviceKey(), map[string]any{"phoneNumber": phoneLocal, "message": "hi"})
	if code, _ := r.errorOf(t); r.status != 502 || code != "UPSTREAM_ERROR" || !strings.Contains(string(r.raw), "unknown") {
		t.Fatalf("503: %d %s", r.status, r.raw)
	}
	if n := len(fake.Creates()); n != 2 {
		t.Fatalf("%d creates: a refusal or a 5xx was retried", n)
	}
	if got := stats(t, srv); got["failed"] != 1 || got["unknown"] != 1 {
		t.Fatalf("statistics %v", got)
	}
}

func TestSMSStatusCallbackOverHTTP(t *testing.T) {
	fake := twiliomock.StartFake(t)
	srv := smsServer(t, fake.URL, "PUBLIC_URL="+publicURL)
	r := srv.do(t, "POST", "/sms/send", serviceKey(), map[string]any{"phoneNumber": phoneLocal, "message": "hi"})
	if r.status != 200 {
		t.Fatalf("send: %d %s", r.status, r.raw)
	}
	logID, _ := r.obj(t)["logId"].(string)
	cb := fake.Creates()[0].Get("StatusCallback")
	if cb != publicURL+"/sms/status-callback?log="+logID {
		t.Fatalf("StatusCallback %q (log %s)", cb, logID)
	}
	// Twilio calls the public URL; Nginx forwards it here over plain HTTP.
	post := func(status, sig string) int {
		form := url.Values{"MessageSid": {"SM0123456789abcdef0123456789abcdef"}, "MessageStatus": {status},
			"AccountSid": {twiliomock.AccountSID}, "To": {phoneE164}}
		if sig == "" {
			sig = twiliomock.Sign(twiliomock.AuthToken, cb, form)
		}
		req, _ := http.NewRequest("POST", srv.URL+strings.TrimPrefix(cb, publicURL), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("delivered", twiliomock.Sign(twiliomock.AuthToken, srv.URL+"/sms/status-callback?log="+logID, url.Values{})); got != 403 {
		t.Fatalf("bad signature: %d", got)
	}
	if got := post("delivered", "x"); got != 403 {
		t.Fatalf("garbage signature: %d", got)
	}
	if got := stats(t, srv); got["queued"] != 1 {
		t.Fatalf("a forged callback changed the log: %v", got)
	}
	for _, st := range []string{"sent", "delivered", "delivered", "sent", "undelivered"} {
		if got := post(st, ""); got != 204 {
			t.Fatalf("callback %s: %d", st, got)
		}
	}
	if got := stats(t, srv); got["delivered"] != 1 || len(got) != 1 {
		t.Fatalf("statistics after the callbacks %v, want 1 delivered", got)
	}
}
