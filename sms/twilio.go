package sms

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

var _ Sender = (*TwilioSender)(nil)

// Twilio error codes that say the number itself is the problem: they are
// permanent, never retried.
const (
	TwilioInvalidTo      = 21211 // the To number is not a valid phone number
	TwilioUnsubscribed   = 21610 // the recipient replied STOP
	TwilioNotMobile      = 21614 // the To number is not a mobile number
	TwilioTooManyRequest = 20429 // Twilio's rate limit
)

// TwilioOptions configure a TwilioSender.
type TwilioOptions struct {
	AccountSID          string
	AuthToken           string
	From                string // a Twilio phone number, or
	MessagingServiceSID string // a messaging service (preferred when both are set)
	BaseURL             string // Twilio's API (https://api.twilio.com), or a local one in tests
	Timeout             time.Duration
	MaxRetries          int           // retries of a 429, with exponential backoff and jitter
	RetryBase           time.Duration // the first backoff
	Transport           http.RoundTripper
}

// TwilioSender sends through Twilio's Messages API with twilio-go.
//
// Only a 429 (Twilio's "too many requests", which created nothing) is
// retried. A timeout or a 5xx after the request was written is reported as
// Unknown and not retried: Twilio documents that a message create is not
// idempotent, and a blind retry can send the text twice.
type TwilioSender struct {
	o    TwilioOptions
	base *url.URL
}

// NewTwilioSender returns a sender for o. It fails on an unusable BaseURL.
func NewTwilioSender(o TwilioOptions) (*TwilioSender, error) {
	if o.BaseURL == "" {
		o.BaseURL = "https://api.twilio.com"
	}
	base, err := url.Parse(strings.TrimRight(o.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("twilio: base URL %q is not an http(s) URL", o.BaseURL)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxRetries < 0 {
		o.MaxRetries = 0
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 500 * time.Millisecond
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	return &TwilioSender{o: o, base: base}, nil
}

// Send implements Sender. ctx bounds the waits between retries; each request
// is bounded by the Timeout option.
func (s *TwilioSender) Send(ctx context.Context, m Message) (Receipt, error) {
	params := &openapi.CreateMessageParams{}
	params.SetTo(m.To).SetBody(m.Body)
	if s.o.MessagingServiceSID != "" {
		params.SetMessagingServiceSid(s.o.MessagingServiceSID)
	} else {
		params.SetFrom(s.o.From)
	}
	if m.StatusCallback != "" {
		params.SetStatusCallback(m.StatusCallback)
	}
	for attempt := 0; ; attempt++ {
		rt := &twilioCall{base: s.base, next: s.o.Transport}
		msg, err := s.api(rt).CreateMessage(params)
		if err == nil {
			return receiptOf(msg), nil
		}
		se := classify(err, rt)
		if se.HTTPStatus != http.StatusTooManyRequests || attempt >= s.o.MaxRetries {
			return Receipt{}, se
		}
		wait := s.backoff(attempt, rt.retryAfter)
		select {
		case <-ctx.Done():
			return Receipt{}, se
		case <-time.After(wait):
		}
	}
}

// api is twilio-go's Messages API over one call's transport. twilio-go sends
// every request to a fixed https://api.twilio.com; the transport sends it to
// our base URL instead.
func (s *TwilioSender) api(rt *twilioCall) *openapi.ApiService {
	c := &client.Client{
		Credentials: client.NewCredentials(s.o.AccountSID, s.o.AuthToken),
		HTTPClient: &http.Client{Transport: rt, Timeout: s.o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	c.SetAccountSid(s.o.AccountSID)
	h := client.NewRequestHandler(c)
	h.Edge, h.Region = "", "" // not from TWILIO_EDGE/TWILIO_REGION: the base URL decides
	return openapi.NewApiService(h)
}

// backoff is the wait before retry attempt+1: Twilio's Retry-After when it
// gave one, else exponential from RetryBase with jitter; at most 5s, so that
// a send with its retries stays well inside a graceful shutdown.
func (s *TwilioSender) backoff(attempt int, retryAfter string) time.Duration {
	const most = 5 * time.Second
	if secs, err := strconv.Atoi(retryAfter); err == nil && secs > 0 {
		return min(time.Duration(secs)*time.Second, most)
	}
	d := min(s.o.RetryBase<<attempt, most)
	return d/2 + rand.N(d/2+1)
}

func receiptOf(msg *openapi.ApiV2010Message) Receipt {
	r := Receipt{Status: StatusQueued}
	if msg.Sid != nil {
		r.SID = *msg.Sid
	}
	if msg.Status != nil {
		if st, ok := ParseStatus(*msg.Status); ok {
			r.Status = st
		}
	}
	return r
}

// classify turns twilio-go's error into a SendError, using what the
// transport saw of the answer.
func classify(err error, rt *twilioCall) *SendError {
	se := &SendError{HTTPStatus: rt.status, Err: err}
	var re *client.TwilioRestError
	var v1 *client.RestErrorV1
	apiErr := true
	switch {
	case errors.As(err, &re):
		se.Code, se.Message = re.Code, re.Message
		if se.HTTPStatus == 0 {
			se.HTTPStatus = re.Status
		}
	case errors.As(err, &v1):
		se.Code, se.Message = v1.Code, v1.Message
		if se.HTTPStatus == 0 {
			se.HTTPStatus = v1.HttpStatusCode
		}
	default:
		apiErr = false
	}
	if se.Code == TwilioTooManyRequest {
		se.HTTPStatus = http.StatusTooManyRequests
	}
	switch {
	case rt.status == 0 && apiErr:
		// twilio-go refused before sending (its credential check): nothing went out.
	case rt.status == 0 && neverSent(err):
		se.Message = "Twilio could not be reached: " + shortError(err)
	case rt.status == 0:
		se.Unknown = true
		se.Message = "no answer from Twilio (" + shortError(err) + "); the message may have been sent"
	case rt.status >= 500:
		se.Unknown = true
		if se.Message == "" {
			se.Message = "Twilio answered " + http.StatusText(rt.status)
		}
		se.Message += "; the message may have been sent"
	case rt.status < 300:
		se.Unknown = true
		se.Message = "Twilio's answer could not be read; the message may have been sent"
	case se.Message == "":
		se.Message = http.StatusText(rt.status)
	}
	if se.Code == TwilioInvalidTo || se.Code == TwilioUnsubscribed || se.Code == TwilioNotMobile {
		se.Permanent = true
	}
	return se
}

// neverSent reports whether a transport error happened before the request
// could reach Twilio (no connection), so nothing can have been created.
func neverSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// shortError is err without the URL net/http puts in front (it holds the account SID).
func shortError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return err.Error()
}

// twilioCall is the transport of one create: it sends to the configured base
// URL and remembers what Twilio answered. twilio-go gives its requests no
// context of ours; each is bounded by TwilioOptions.Timeout instead, which is
// what a send wants: a caller going away must not cut a create in half and
// leave its outcome unknown.
type twilioCall struct {
	base       *url.URL
	next       http.RoundTripper
	status     int
	retryAfter string
}

func (c *twilioCall) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.URL.Scheme, r.URL.Host = c.base.Scheme, c.base.Host
	r.URL.Path = c.base.Path + req.URL.Path
	r.URL.RawPath = ""
	r.Host = ""
	resp, err := c.next.RoundTrip(r)
	if resp != nil {
		c.status = resp.StatusCode
		c.retryAfter = resp.Header.Get("Retry-After")
	}
	return resp, err
}

// ValidSignature reports whether signature is Twilio's X-Twilio-Signature of
// a webhook POSTed to fullURL (the public URL Twilio called, query included)
// with form, under authToken.
func ValidSignature(authToken, fullURL string, form url.Values, signature string) bool {
	if authToken == "" || signature == "" {
		return false
	}
	params := make(map[string]string, len(form))
	for k, v := range form {
		if len(v) != 1 {
			return false // Twilio's callbacks never repeat a parameter
		}
		params[k] = v[0]
	}
	rv := client.NewRequestValidator(authToken)
	return rv.Validate(fullURL, params, signature)
}
