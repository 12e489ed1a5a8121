package sms_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fitmate/commserver/sms"
	twiliomock "github.com/fitmate/commserver/test/twilio-mock"
)

func newTwilio(t *testing.T, base string, mod ...func(*sms.TwilioOptions)) *sms.TwilioSender {
	t.Helper()
	o := sms.TwilioOptions{AccountSID: twiliomock.AccountSID, AuthToken: twiliomock.AuthToken, From: twiliomock.From,
		BaseURL: base, Timeout: 5 * time.Second, MaxRetries: 2, RetryBase: 10 * time.Millisecond}
	for _, m := range mod {
		m(&o)
	}
	s, err := sms.NewTwilioSender(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var koreanText = sms.Message{To: "+821012345678", Body: "안녕하세요 김철수님! 🏃♂️\n\n오늘 하체 운동 시간입니다.",
	Redacted: "안녕하세요", StatusCallback: "https://comm.example.com/sms/status-callback?log=65f000000000000000000001"}

// The real twilio-go client against Twilio's OpenAPI spec: Prism would
// refuse any request the real API refuses.
func TestTwilioSenderAgainstTwiliosSpec(t *testing.T) {
	prism := twiliomock.StartPrism(t)
	ctx := context.Background()

	t.Run("from a phone number", func(t *testing.T) {
		rc, err := newTwilio(t, prism).Send(ctx, koreanText)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(rc.SID, "SM") || rc.Status != sms.StatusQueued {
			t.Errorf("receipt %+v", rc)
		}
	})
	t.Run("from a messaging service", func(t *testing.T) {
		s := newTwilio(t, prism, func(o *sms.TwilioOptions) { o.From, o.MessagingServiceSID = "", "MG0123456789abcdef0123456789abcdef" })
		if _, err := s.Send(ctx, koreanText); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("an account SID the API would refuse", func(t *testing.T) {
		s := newTwilio(t, prism, func(o *sms.TwilioOptions) { o.AccountSID = "AC123" })
		_, err := s.Send(ctx, koreanText)
		var se *sms.SendError
		if !errors.As(err, &se) || se.Unknown || se.HTTPStatus < 400 || se.HTTPStatus >= 500 {
			t.Fatalf("err = %#v, want a definite 4xx refusal", err)
		}
	})
}

// Prism is strict: a create without To, or without credentials, is refused
// as the real API would refuse it. Without this the test above proves little.
func TestPrismRefusesWhatTwilioRefuses(t *testing.T) {
	prism := twiliomock.StartPrism(t)
	post := func(form url.Values, auth bool) int {
		req, _ := http.NewRequest("POST", prism+"/2010-04-01/Accounts/"+twiliomock.AccountSID+"/Messages.json",
			strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth {
			req.SetBasicAuth(twiliomock.AccountSID, twiliomock.AuthToken)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	full := url.Values{"To": {"+821012345678"}, "From": {twiliomock.From}, "Body": {"hi"}}
	if got := post(full, true); got != http.StatusCreated {
		t.Fatalf("a well-formed create: %d", got)
	}
	noTo := url.Values{"From": {twiliomock.From}, "Body": {"hi"}}
	if got := post(noTo, true); got < 400 || got >= 500 {
		t.Errorf("a create without To: %d, want 4xx", got)
	}
	if got := post(full, false); got != http.StatusUnauthorized {
		t.Errorf("a create without credentials: %d, want 401", got)
	}
}

func TestTwilioRetriesOnlyWhatIsSafe(t *testing.T) {
	ctx := context.Background()
	r429 := twiliomock.Reply{Status: 429, Code: 20429, Message: "Too Many Requests"}
	tests := []struct {
		name      string
		replies   []twiliomock.Reply
		timeout   time.Duration
		creates   int
		ok        bool
		unknown   bool
		permanent bool
		code      int
	}{
		{"429 then created: retried", []twiliomock.Reply{r429, r429, {}}, 0, 3, true, false, false, 0},
		{"429 throughout: gives up after the retries", []twiliomock.Reply{r429}, 0, 3, false, false, false, 20429},
		{"500: not retried, outcome unknown", []twiliomock.Reply{{Status: 500, Code: 20500, Message: "Internal Server Error"}}, 0, 1, false, true, false, 20500},
		{"503 without JSON: not retried, unknown", []twiliomock.Reply{{Status: 503, Raw: "<html>upstream down</html>"}}, 0, 1, false, true, false, 0},
		{"timeout: not retried, unknown", []twiliomock.Reply{{Delay: 2 * time.Second}}, 300 * time.Millisecond, 1, false, true, false, 0},
		{"21211 invalid number: permanent", []twiliomock.Reply{{Status: 400, Code: 21211, Message: "The 'To' number is not a valid phone number."}}, 0, 1, false, false, true, 21211},
		{"21610 unsubscribed: permanent", []twiliomock.Reply{{Status: 400, Code: 21610, Message: "Attempt to send to unsubscribed recipient"}}, 0, 1, false, false, true, 21610},
		{"21614 not mobile: permanent", []twiliomock.Reply{{Status: 400, Code: 21614, Message: "'To' number is not a valid mobile number"}}, 0, 1, false, false, true, 21614},
		{"other 4xx: not retried, failed", []twiliomock.Reply{{Status: 400, Code: 21606, Message: "The From phone number is not a valid, SMS-capable number"}}, 0, 1, false, false, false, 21606},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := twiliomock.StartFake(t, tt.replies...)
			s := newTwilio(t, fake.URL, func(o *sms.TwilioOptions) {
				if tt.timeout > 0 {
					o.Timeout = tt.timeout
				}
			})
			rc, err := s.Send(ctx, koreanText)
			if got := len(fake.Creates()); got != tt.creates {
				t.Errorf("Twilio received %d creates, want %d", got, tt.creates)
			}
			if tt.ok {
				if err != nil || rc.SID == "" {
					t.Fatalf("Send = %+v, %v", rc, err)
				}
				return
			}
			var se *sms.SendError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *SendError", err)
			}
			if se.Unknown != tt.unknown || se.Permanent != tt.permanent || se.Code != tt.code {
				t.Errorf("SendError %+v: want unknown=%v permanent=%v code=%d", se, tt.unknown, tt.permanent, tt.code)
			}
			if strings.Contains(se.Error(), koreanText.Body) || strings.Contains(se.Error(), twiliomock.AuthToken) {
				t.Errorf("the error shows the body or the token: %v", se)
			}
		})
	}
}

func TestTwilioSendsTheRequestTwilioDocuments(t *testing.T) {
	fake := twiliomock.StartFake(t)
	if _, err := newTwilio(t, fake.URL).Send(context.Background(), koreanText); err != nil {
		t.Fatal(err)
	}
	got := fake.Creates()[0]
	want := url.Values{"To": {koreanText.To}, "From": {twiliomock.From}, "Body": {koreanText.Body},
		"StatusCallback": {koreanText.StatusCallback}}
	for k, v := range want {
		if got.Get(k) != v[0] {
			t.Errorf("%s = %q, want %q", k, got.Get(k), v[0])
		}
	}
}

func TestTwilioUnreachableIsNotUnknown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	_, err = newTwilio(t, "http://"+addr).Send(context.Background(), koreanText)
	var se *sms.SendError
	if !errors.As(err, &se) || se.Unknown || se.HTTPStatus != 0 {
		t.Fatalf("err = %#v: a refused connection sent nothing", err)
	}
}

func TestValidSignature(t *testing.T) {
	const u = "https://comm.example.com/sms/status-callback?log=65f000000000000000000001"
	form := url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"delivered"}, "AccountSid": {twiliomock.AccountSID}}
	sig := twiliomock.Sign(twiliomock.AuthToken, u, form)
	if !sms.ValidSignature(twiliomock.AuthToken, u, form, sig) {
		t.Fatal("a correct signature is refused")
	}
	tampered := url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"failed"}, "AccountSid": {twiliomock.AccountSID}}
	cases := map[string]bool{
		"wrong token":      sms.ValidSignature("ffffffffffffffffffffffffffffffff", u, form, sig),
		"tampered status":  sms.ValidSignature(twiliomock.AuthToken, u, tampered, sig),
		"another URL":      sms.ValidSignature(twiliomock.AuthToken, "http://10.0.0.5:3000/sms/status-callback?log=65f000000000000000000001", form, sig),
		"another log id":   sms.ValidSignature(twiliomock.AuthToken, strings.Replace(u, "0001", "0002", 1), form, sig),
		"no signature":     sms.ValidSignature(twiliomock.AuthToken, u, form, ""),
		"no token":         sms.ValidSignature("", u, form, sig),
		"repeated a param": sms.ValidSignature(twiliomock.AuthToken, u, url.Values{"MessageSid": {"SM1", "SM2"}}, sig),
	}
	for name, valid := range cases {
		if valid {
			t.Errorf("%s: accepted", name)
		}
	}
}

// twilio-go refuses a token with symbols before sending: nothing went out,
// so the outcome is a definite failure, not unknown.
func TestTwilioClientSideRefusalIsNotUnknown(t *testing.T) {
	fake := twiliomock.StartFake(t)
	s := newTwilio(t, fake.URL, func(o *sms.TwilioOptions) { o.AuthToken = "not-a-token!" })
	_, err := s.Send(context.Background(), koreanText)
	var se *sms.SendError
	if !errors.As(err, &se) || se.Unknown || se.Code != 21224 {
		t.Fatalf("err = %#v", err)
	}
	if n := len(fake.Creates()); n != 0 {
		t.Fatalf("%d creates", n)
	}
	if strings.Contains(se.Error(), "not-a-token!") {
		t.Fatalf("the error shows the token: %v", se)
	}
}
