package sms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	commserver "github.com/fitmate/commserver"
)

// Text limits. Twilio refuses bodies over 1600 characters.
const (
	MaxBodyRunes         = 1600
	maxNameRunes         = 50
	maxExercises         = 20
	maxNotificationTitle = 60
	maxNotificationBody  = 200
)

// Options configure a Service.
type Options struct {
	AppURL string // the app's address in the texts (APP_URL)
	// PublicURL is where Twilio reaches this server (PUBLIC_URL). When set,
	// sends ask Twilio for status callbacks at PublicURL/sms/status-callback,
	// and callbacks are checked against it: TLS ends at Nginx, so the URL
	// this process sees is not the one Twilio signed.
	PublicURL       string
	TwilioAuthToken string // keys X-Twilio-Signature

	NumberDailyLimit        int // texts per number per 24 hours, codes excluded (20)
	NotificationHourlyLimit int // offline-notification texts per number per hour (3)

	OTPRequestsPerIP int           // code requests per client IP per OTPIPWindow (20)
	OTPVerifiesPerIP int           // code checks per client IP per OTPIPWindow (60)
	OTPIPWindow      time.Duration // (10m)
	OTPGlobalHourly  int           // code requests per hour across all numbers; 0 is no cap

	Pepper []byte           // keys the hashes that name numbers and addresses in limiter keys
	Now    func() time.Time // clock, for tests
}

// The notification service's OfflineChannel (declared in package notify),
// implemented here without importing notify.
var _ interface {
	SendOffline(ctx context.Context, userID, phoneNumber, title, body string) error
} = (*Service)(nil)

// Service sends texts, logs them, and runs phone verification.
type Service struct {
	store   Store
	sender  Sender
	limits  Limiter
	otp     *Verifications // nil without Redis: verification fails closed
	numbers *Numbers
	o       Options
	log     *slog.Logger
}

// NewService returns a Service. otp may be nil (no Redis): the OTP methods
// then fail with commserver.ErrUnavailable and everything else works.
func NewService(store Store, sender Sender, limits Limiter, otp *Verifications, numbers *Numbers, o Options, log *slog.Logger) *Service {
	if o.NumberDailyLimit <= 0 {
		o.NumberDailyLimit = 20
	}
	if o.NotificationHourlyLimit <= 0 {
		o.NotificationHourlyLimit = 3
	}
	if o.OTPRequestsPerIP <= 0 {
		o.OTPRequestsPerIP = 20
	}
	if o.OTPVerifiesPerIP <= 0 {
		o.OTPVerifiesPerIP = 60
	}
	if o.OTPIPWindow <= 0 {
		o.OTPIPWindow = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	return &Service{store: store, sender: sender, limits: limits, otp: otp, numbers: numbers, o: o, log: log}
}

// Result is what became of one send.
type Result struct {
	LogID  string // the smslogs entry
	SID    string // Twilio's message SID, when Twilio accepted it
	Status Status
}

// Send sends a custom text (the seed's POST /sms/send).
func (s *Service) Send(ctx context.Context, phoneNumber, message string) (Result, error) {
	to, err := s.numbers.Normalize("phoneNumber", phoneNumber)
	if err != nil {
		return Result{}, err
	}
	if err := checkText("message", message, MaxBodyRunes); err != nil {
		return Result{}, err
	}
	if err := s.allowNumber(ctx, to); err != nil {
		return Result{}, err
	}
	return s.deliver(ctx, to, TemplateCustom, message, message, "")
}

// SendWorkoutReminder sends the seed's workout reminder.
func (s *Service) SendWorkoutReminder(ctx context.Context, phoneNumber, userName, workoutType string) (Result, error) {
	to, err := s.numbers.Normalize("phoneNumber", phoneNumber)
	if err != nil {
		return Result{}, err
	}
	if err := checkText("userName", userName, maxNameRunes); err != nil {
		return Result{}, err
	}
	if err := checkText("workoutType", workoutType, maxNameRunes); err != nil {
		return Result{}, err
	}
	if err := s.allowNumber(ctx, to); err != nil {
		return Result{}, err
	}
	text := workoutReminderText(userName, workoutType, s.o.AppURL)
	return s.deliver(ctx, to, TemplateWorkoutReminder, text, text, "")
}

// SendWorkoutRecommendation sends the seed's recommendation of exercises.
func (s *Service) SendWorkoutRecommendation(ctx context.Context, phoneNumber, userName string, exercises []string) (Result, error) {
	to, err := s.numbers.Normalize("phoneNumber", phoneNumber)
	if err != nil {
		return Result{}, err
	}
	if err := checkText("userName", userName, maxNameRunes); err != nil {
		return Result{}, err
	}
	if len(exercises) == 0 {
		return Result{}, commserver.Invalid("exercises", "exercises is required: a non-empty array of exercise names")
	}
	if len(exercises) > maxExercises {
		return Result{}, commserver.Invalid("exercises", "exercises has %d names; the limit is %d", len(exercises), maxExercises)
	}
	for i, e := range exercises {
		if err := checkText(fmt.Sprintf("exercises[%d]", i), e, maxNameRunes); err != nil {
			return Result{}, err
		}
	}
	if err := s.allowNumber(ctx, to); err != nil {
		return Result{}, err
	}
	text := workoutRecommendationText(userName, exercises, s.o.AppURL)
	return s.deliver(ctx, to, TemplateWorkoutRecommendation, text, text, "")
}

// SendOffline texts a notification to a user who is not connected: the
// notification service calls it for high and urgent notifications of users
// who opted in to SMS. It goes through the same normalization, allowlist, log
// and limits as every send, and a per-number hourly cap of its own, so a
// storm of notifications cannot become a storm of texts. Errors: those of
// Send, and commserver.ErrRateLimited when a cap is reached.
func (s *Service) SendOffline(ctx context.Context, userID, phoneNumber, title, body string) error {
	to, err := s.numbers.Normalize("phoneNumber", phoneNumber)
	if err != nil {
		return err
	}
	title, body = strings.TrimSpace(title), strings.TrimSpace(body)
	if title == "" {
		return commserver.Invalid("title", "title is required")
	}
	ok, wait, err := s.limits.Allow(ctx, "notify:"+subject(s.o.Pepper, "phone", to.E164), s.o.NotificationHourlyLimit, time.Hour)
	if err != nil {
		return err
	}
	if !ok {
		return &commserver.Error{Code: commserver.CodeRateLimited, Field: "phoneNumber", RetryAfter: wait,
			Message: fmt.Sprintf("this number has had %d notification texts this hour", s.o.NotificationHourlyLimit)}
	}
	if err := s.allowNumber(ctx, to); err != nil {
		return err
	}
	text := notificationText(commserver.Truncate(title, maxNotificationTitle), commserver.Truncate(body, maxNotificationBody), s.o.AppURL)
	res, err := s.deliver(ctx, to, TemplateNotification, text, text, "")
	if err == nil {
		s.log.Debug("sms: offline notification sent", "user_id", userID, "log_id", res.LogID)
	}
	return err
}

// RequestOTP sends a new verification code to the number. It answers the
// same for every valid, allowed number: it never looks the number up.
// Errors: commserver.ErrInvalid and CodeCountryNotAllowed for the number;
// commserver.ErrRateLimited (with RetryAfter) per client IP, per number
// (cooldown, daily limit) and globally; commserver.ErrUnavailable without
// Redis (it fails closed); the send's errors.
func (s *Service) RequestOTP(ctx context.Context, phoneNumber, clientIP string) error {
	to, err := s.numbers.Normalize("phoneNumber", phoneNumber)
	if err != nil {
		return err
	}
	if s.otp == nil {
		return otpOff
	}
	if err := s.allowIP(ctx, "otp:ip:request:", clientIP, s.o.OTPRequestsPerIP); err != nil {
		return err
	}
	if s.o.OTPGlobalHourly > 0 {
		ok, wait, err := s.limits.Allow(ctx, "otp:global", s.o.OTPGlobalHourly, time.Hour)
		if err != nil {
			return err
		}
		if !ok {
			s.log.Warn("sms: the hourly cap on verification codes is reached; refusing code requests", "cap", s.o.OTPGlobalHourly)
			return &commserver.Error{Code: commserver.CodeRateLimited, RetryAfter: wait,
				Message: "phone verification is busy; try again later"}
		}
	}
	code, err := s.otp.Issue(ctx, to.E164)
	if err != nil {
		return err
	}
	text, redacted := otpText(code, s.otp.TTL()), otpText(OTPMask, s.otp.TTL())
	_, err = s.deliver(ctx, to, TemplateOTP, text, redacted, code)
	return err
}

// VerifyOTP checks a code and consumes it when right. A wrong, expired, used
// or burned code, and a number that never had one, are all just false.
// Errors: commserver.ErrInvalid for a malformed number or code;
// commserver.ErrRateLimited per client IP; commserver.ErrUnavailable without Redis.
func (s *Service) VerifyOTP(ctx context.Context, phoneNumber, code, clientIP string) (bool, error) {
	to, err := s.numbers.Normalize("phoneNumber", phoneNumber)
	if err != nil {
		return false, err
	}
	if len(code) != 6 || strings.IndexFunc(code, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return false, commserver.Invalid("otpCode", "otpCode must be the 6 digits sent by SMS")
	}
	if s.otp == nil {
		return false, otpOff
	}
	if err := s.allowIP(ctx, "otp:ip:verify:", clientIP, s.o.OTPVerifiesPerIP); err != nil {
		return false, err
	}
	return s.otp.Check(ctx, to.E164, code)
}

var otpOff = &commserver.Error{Code: commserver.CodeUnavailable,
	Message: "phone verification is not available on this server: it needs Redis (REDIS_URL is not set)"}

// Statistics counts the texts logged in [from, to] by status (the seed's
// aggregate). Errors: commserver.ErrInvalid on field endDate when to is before from.
func (s *Service) Statistics(ctx context.Context, from, to time.Time) ([]Stat, error) {
	if to.Before(from) {
		return nil, commserver.Invalid("endDate", "endDate is before startDate")
	}
	return s.store.SMSStatistics(ctx, from, to)
}

// twilioStatuses are the statuses a status callback may report.
var twilioStatuses = map[Status]bool{
	StatusAccepted: true, StatusScheduled: true, StatusQueued: true, StatusSending: true, StatusSent: true,
	StatusDelivered: true, StatusUndelivered: true, StatusFailed: true, StatusCanceled: true, StatusRead: true,
}

// HandleStatusCallback applies Twilio's status callback, POSTed to
// requestURI (path and query as this server received them) with form, once
// its X-Twilio-Signature is checked against PublicURL+requestURI. The log
// entry's status only moves forward: a duplicate or late callback changes
// nothing. Errors: commserver.ErrForbidden for a missing or wrong signature
// (or when callbacks are not configured); commserver.ErrInvalid for a signed
// callback without a known MessageStatus.
func (s *Service) HandleStatusCallback(ctx context.Context, requestURI string, form url.Values, signature string) (bool, error) {
	if s.o.PublicURL == "" || s.o.TwilioAuthToken == "" {
		return false, commserver.Errorf(commserver.CodeForbidden, "status callbacks are not accepted: PUBLIC_URL and TWILIO_AUTH_TOKEN must be set")
	}
	if !ValidSignature(s.o.TwilioAuthToken, s.o.PublicURL+requestURI, form, signature) {
		return false, commserver.Errorf(commserver.CodeForbidden, "X-Twilio-Signature is missing or does not match")
	}
	st := Status(form.Get("MessageStatus"))
	if !twilioStatuses[st] {
		return false, commserver.Invalid("MessageStatus", "MessageStatus %q is not a Twilio message status", form.Get("MessageStatus"))
	}
	u := StatusUpdate{SID: form.Get("MessageSid"), Status: st}
	if ru, err := url.ParseRequestURI(requestURI); err == nil {
		if id := ru.Query().Get("log"); commserver.IsObjectID(id) {
			u.LogID = id
		}
	}
	if u.LogID == "" && u.SID == "" {
		return false, commserver.Invalid("MessageSid", "MessageSid is required")
	}
	if code, err := strconv.Atoi(form.Get("ErrorCode")); err == nil && code != 0 {
		u.ErrorCode = code
		u.ErrorMessage = fmt.Sprintf("twilio error %d reported by the status callback", code)
	}
	return s.store.AdvanceSMSLog(ctx, u)
}

// deliver logs the send, sends, and records the outcome. The log entry is
// written first (status pending), so the status callback always finds it.
// secret, when set, is masked in anything stored or returned.
func (s *Service) deliver(ctx context.Context, to Phone, tpl Template, body, redacted, secret string) (Result, error) {
	// The caller going away must not cut a send in half: its outcome would be unknown.
	ctx = context.WithoutCancel(ctx)
	now := s.o.Now().UTC().Truncate(time.Millisecond)
	id, err := s.store.InsertSMSLog(ctx, LogEntry{PhoneNumber: to.E164, Message: redacted, TemplateType: tpl,
		Status: StatusPending, Timestamp: now, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		return Result{}, err
	}
	rc, err := s.sender.Send(ctx, Message{To: to.E164, Body: body, Redacted: redacted, StatusCallback: s.callbackURL(id)})
	if err == nil {
		if _, err := s.store.AdvanceSMSLog(ctx, StatusUpdate{LogID: id, SID: rc.SID, Status: rc.Status}); err != nil {
			s.log.Warn("sms: sent, but its log entry could not be updated; the status callback will", "log_id", id, "err", err)
		}
		s.log.Info("sms sent", "template", tpl, "to", maskPhone(to.E164), "status", rc.Status, "sid", rc.SID, "log_id", id)
		return Result{LogID: id, SID: rc.SID, Status: rc.Status}, nil
	}
	var se *SendError
	if !errors.As(err, &se) {
		se = &SendError{Unknown: true, Message: err.Error()}
	}
	se.Message = scrub(se.Message, secret)
	msg := scrub(se.Error(), secret)
	st := StatusFailed
	if se.Unknown {
		st = StatusUnknown
	}
	if _, err := s.store.AdvanceSMSLog(ctx, StatusUpdate{LogID: id, Status: st, ErrorCode: se.Code, ErrorMessage: msg}); err != nil {
		s.log.Warn("sms: its log entry could not be updated", "log_id", id, "status", st, "err", err)
	}
	return Result{LogID: id, Status: st}, callerError(se, msg, id)
}

// callerError is what the caller hears of a failed send. Its cause is the
// scrubbed message, never the provider's raw error.
func callerError(se *SendError, msg, logID string) error {
	cause := errors.New(msg)
	switch {
	case se.NotConfigured:
		return &commserver.Error{Code: commserver.CodeUnavailable, Err: cause,
			Message: "SMS is not configured on this server (" + se.Message + "); the attempt is logged as failed"}
	case se.Unknown:
		return &commserver.Error{Code: commserver.CodeUpstream, Err: cause,
			Message: "Twilio did not confirm the message (" + msg + "). Its outcome is unknown: smslogs entry " + logID +
				" says so until Twilio's status callback settles it. Do not resend blindly."}
	case se.HTTPStatus == 429:
		return &commserver.Error{Code: commserver.CodeUnavailable, Err: cause, RetryAfter: 5 * time.Second,
			Message: "Twilio is rate limiting this account; try again shortly"}
	case se.HTTPStatus == 0:
		return &commserver.Error{Code: commserver.CodeUnavailable, Err: cause, Message: msg}
	case se.Permanent:
		return &commserver.Error{Code: commserver.CodeUpstream, Field: "phoneNumber", Err: cause,
			Message: fmt.Sprintf("Twilio refused the number (error %d: %s); it will not be retried", se.Code, se.Message)}
	default:
		return &commserver.Error{Code: commserver.CodeUpstream, Err: cause,
			Message: fmt.Sprintf("Twilio refused the message (error %d, HTTP %d: %s)", se.Code, se.HTTPStatus, se.Message)}
	}
}

func (s *Service) callbackURL(logID string) string {
	if s.o.PublicURL == "" {
		return ""
	}
	return s.o.PublicURL + "/sms/status-callback?log=" + logID
}

// allowNumber counts a text to the number against its daily limit.
func (s *Service) allowNumber(ctx context.Context, to Phone) error {
	ok, wait, err := s.limits.Allow(ctx, "daily:"+subject(s.o.Pepper, "phone", to.E164), s.o.NumberDailyLimit, 24*time.Hour)
	if err != nil {
		return err
	}
	if !ok {
		return &commserver.Error{Code: commserver.CodeRateLimited, Field: "phoneNumber", RetryAfter: wait,
			Message: fmt.Sprintf("this number has had %d texts in the last day", s.o.NumberDailyLimit)}
	}
	return nil
}

// allowIP counts a verification call from the client's address.
func (s *Service) allowIP(ctx context.Context, kind, ip string, limit int) error {
	ok, wait, err := s.limits.Allow(ctx, kind+subject(s.o.Pepper, "ip", ip), limit, s.o.OTPIPWindow)
	if err != nil {
		return err
	}
	if !ok {
		return &commserver.Error{Code: commserver.CodeRateLimited, RetryAfter: wait,
			Message: "too many verification requests from your network; try again later"}
	}
	return nil
}

// checkText requires a non-blank text of at most limit characters without control characters.
func checkText(field, v string, limit int) error {
	if strings.TrimSpace(v) == "" {
		return commserver.Invalid(field, "%s is required", field)
	}
	if !utf8.ValidString(v) {
		return commserver.Invalid(field, "%s is not valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(v); n > limit {
		return commserver.Invalid(field, "%s is %d characters; the limit is %d", field, n, limit)
	}
	if strings.IndexFunc(v, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' }) >= 0 {
		return commserver.Invalid(field, "%s contains control characters", field)
	}
	return nil
}

// scrub masks secret in s.
func scrub(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, OTPMask)
}
