package gateway

import (
	"errors"
	"net/http"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/sms"
	"github.com/gin-gonic/gin"
)

// smsMaxBody is the largest body an SMS route reads: a text is at most 1600
// characters, so anything near this is not a real request.
const smsMaxBody = 16 << 10

// The seed's answers (sms.controller.ts).
const (
	smsSentMessage     = "SMS 전송 성공"
	otpVerifiedMessage = "인증 성공"
	otpMismatchMessage = "인증번호가 일치하지 않습니다."
)

// decodeSMS reads an SMS route's JSON body, at most smsMaxBody bytes.
func decodeSMS(c *gin.Context, dst any) error {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, smsMaxBody)
	return decodeJSON(c, dst)
}

// smsSent answers a send with the seed's body plus the log entry (compatible additions).
func smsSent(c *gin.Context, res sms.Result, seed gin.H) {
	fields := gin.H{"status": res.Status, "logId": res.LogID}
	for k, v := range seed {
		fields[k] = v
	}
	ok(c, fields)
}

// smsSend: POST /sms/send { phoneNumber, message } → { success, message: 'SMS 전송 성공' }.
func (a *api) smsSend(c *gin.Context) {
	var body struct {
		PhoneNumber string `json:"phoneNumber"`
		Message     string `json:"message"`
	}
	if err := decodeSMS(c, &body); err != nil {
		a.writeError(c, err)
		return
	}
	res, err := a.SMS.Send(c.Request.Context(), body.PhoneNumber, body.Message)
	if err != nil {
		a.writeError(c, err)
		return
	}
	smsSent(c, res, gin.H{"message": smsSentMessage})
}

// smsWorkoutReminder: POST /sms/workout-reminder { phoneNumber, userName, workoutType } → { success }.
func (a *api) smsWorkoutReminder(c *gin.Context) {
	var body struct {
		PhoneNumber string `json:"phoneNumber"`
		UserName    string `json:"userName"`
		WorkoutType string `json:"workoutType"`
	}
	if err := decodeSMS(c, &body); err != nil {
		a.writeError(c, err)
		return
	}
	res, err := a.SMS.SendWorkoutReminder(c.Request.Context(), body.PhoneNumber, body.UserName, body.WorkoutType)
	if err != nil {
		a.writeError(c, err)
		return
	}
	smsSent(c, res, nil)
}

// smsWorkoutRecommendation: POST /sms/workout-recommendation { phoneNumber, userName, exercises[] } → { success }.
func (a *api) smsWorkoutRecommendation(c *gin.Context) {
	var body struct {
		PhoneNumber string   `json:"phoneNumber"`
		UserName    string   `json:"userName"`
		Exercises   []string `json:"exercises"`
	}
	if err := decodeSMS(c, &body); err != nil {
		a.writeError(c, err)
		return
	}
	res, err := a.SMS.SendWorkoutRecommendation(c.Request.Context(), body.PhoneNumber, body.UserName, body.Exercises)
	if err != nil {
		a.writeError(c, err)
		return
	}
	smsSent(c, res, nil)
}

// smsRequestOTP: POST /sms/request-otp { phoneNumber } → { success }. Public,
// rate-limited; the same answer whether or not the number belongs to a user.
func (a *api) smsRequestOTP(c *gin.Context) {
	var body struct {
		PhoneNumber string `json:"phoneNumber"`
	}
	if err := decodeSMS(c, &body); err != nil {
		a.writeError(c, err)
		return
	}
	if err := a.SMS.RequestOTP(c.Request.Context(), body.PhoneNumber, clientIP(c.Request, a.TrustedProxies)); err != nil {
		a.writeError(c, err)
		return
	}
	ok(c, nil)
}

// smsVerifyOTP: POST /sms/verify-otp { phoneNumber, otpCode } →
// { success, message: '인증 성공' | '인증번호가 일치하지 않습니다.' }. A wrong
// code is 200 with success false, as in the seed.
func (a *api) smsVerifyOTP(c *gin.Context) {
	var body struct {
		PhoneNumber string `json:"phoneNumber"`
		OTPCode     string `json:"otpCode"`
	}
	if err := decodeSMS(c, &body); err != nil {
		a.writeError(c, err)
		return
	}
	passed, err := a.SMS.VerifyOTP(c.Request.Context(), body.PhoneNumber, body.OTPCode, clientIP(c.Request, a.TrustedProxies))
	if err != nil {
		a.writeError(c, err)
		return
	}
	if !passed {
		c.JSON(http.StatusOK, gin.H{"success": false, "message": otpMismatchMessage})
		return
	}
	ok(c, gin.H{"message": otpVerifiedMessage})
}

// smsStatistics: GET /sms/statistics?startDate=&endDate= answers the seed's
// aggregate as it was: an array of { _id: status, count }.
func (a *api) smsStatistics(c *gin.Context) {
	from, err := queryDate(c, "startDate")
	if err != nil {
		a.writeError(c, err)
		return
	}
	to, err := queryDate(c, "endDate")
	if err != nil {
		a.writeError(c, err)
		return
	}
	stats, err := a.SMS.Statistics(c.Request.Context(), from, to)
	if err != nil {
		a.writeError(c, err)
		return
	}
	if stats == nil {
		stats = []sms.Stat{}
	}
	c.JSON(http.StatusOK, stats)
}

// smsStatusCallback: POST /sms/status-callback is Twilio reporting a
// message's status, form-encoded and signed (X-Twilio-Signature); a bad
// signature is 403. Answers 204.
func (a *api) smsStatusCallback(c *gin.Context) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, smsMaxBody)
	if err := c.Request.ParseForm(); err != nil {
		var big *http.MaxBytesError
		if errors.As(err, &big) {
			a.writeError(c, bodyTooLarge(big))
			return
		}
		a.writeError(c, commserver.Invalid("", "request body is not a form: %v", err))
		return
	}
	if _, err := a.SMS.HandleStatusCallback(c.Request.Context(), c.Request.URL.RequestURI(), c.Request.PostForm,
		c.GetHeader("X-Twilio-Signature")); err != nil {
		a.writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// queryDate reads a required date query parameter the way the seed's
// new Date(s) read ISO 8601: a date alone is midnight UTC; a date-time
// without an offset is taken as UTC (the seed's pods ran in UTC).
func queryDate(c *gin.Context, name string) (time.Time, error) {
	v := c.Query(name)
	if v == "" {
		return time.Time{}, commserver.Invalid(name, "%s is required: an ISO 8601 date such as 2025-01-31 or 2025-01-31T00:00:00Z", name)
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, commserver.Invalid(name, "%s is not a date: %q; use ISO 8601 such as 2025-01-31 or 2025-01-31T00:00:00Z", name, v)
}
