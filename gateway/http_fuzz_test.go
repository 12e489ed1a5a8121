package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"unicode/utf8"

	commserver "github.com/fitmate/commserver"
	"github.com/gin-gonic/gin"
)

// The REST decoders under fuzzing: decodeJSON into each shape of body the
// routes read (the same fields and types as the handlers' own), through a
// body limit as the routes have it, and helperBody's reading of the
// notification helpers' records. Whatever the bytes, a decoder answers nil
// or INVALID_ARGUMENT / PAYLOAD_TOO_LARGE with a message (never another
// code, never a panic), and it succeeds only on a body that is one JSON
// value within its limit. (The fuzzer found `{...}}garbage` accepted:
// testdata/fuzz/FuzzDecodeJSON/fbc1b40b7a2f95b3.)
//
//	go test ./gateway/ -run '^$' -fuzz FuzzDecodeJSON -fuzztime 5m
//
// The corpus is testdata/fuzz/FuzzDecodeJSON.

// restBodies returns a fresh value of each body type the routes decode.
func restBodies() []any {
	return []any{
		&struct { // PUT /chat/rooms/:roomId
			Members *[]string `json:"members"`
		}{},
		&struct { // POST /notifications
			UserID    string         `json:"userId"`
			Title     string         `json:"title"`
			Message   string         `json:"message"`
			Type      string         `json:"type"`
			Data      map[string]any `json:"data"`
			Priority  string         `json:"priority"`
			ExpiresAt *string        `json:"expiresAt"`
		}{},
		&map[string]any{}, // the notification helpers' records
		&struct { // POST /sms/send
			PhoneNumber string `json:"phoneNumber"`
			Message     string `json:"message"`
		}{},
		&struct { // POST /sms/workout-reminder
			PhoneNumber string `json:"phoneNumber"`
			UserName    string `json:"userName"`
			WorkoutType string `json:"workoutType"`
		}{},
		&struct { // POST /sms/workout-recommendation
			PhoneNumber string   `json:"phoneNumber"`
			UserName    string   `json:"userName"`
			Exercises   []string `json:"exercises"`
		}{},
		&struct { // POST /sms/verify-otp
			PhoneNumber string `json:"phoneNumber"`
			OTPCode     string `json:"otpCode"`
		}{},
	}
}

// fuzzContext is a Gin context whose request body is body, read through a
// limit of max bytes (0: none), as observe and decodeSMS set it.
func fuzzContext(body []byte, max int64) *gin.Context {
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	c.Request = httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	if max > 0 {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, max)
	}
	return c
}

// wantDecodeError fails unless err is nil or a caller's-mistake error with a message.
func wantDecodeError(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var ce *commserver.Error
	if !errors.As(err, &ce) {
		t.Fatalf("%s: %T %v, want a *commserver.Error", what, err, err)
	}
	if ce.Code != commserver.CodeInvalid && ce.Code != commserver.CodeTooLarge {
		t.Fatalf("%s: code %s (%v), want INVALID_ARGUMENT or PAYLOAD_TOO_LARGE", what, ce.Code, err)
	}
	if ce.Message == "" || !utf8.ValidString(ce.Message) {
		t.Fatalf("%s: message %q", what, ce.Message)
	}
	if s := HTTPStatus(ce.Code); s != http.StatusBadRequest && s != http.StatusRequestEntityTooLarge {
		t.Fatalf("%s: %s answers %d", what, ce.Code, s)
	}
}

func FuzzDecodeJSON(f *testing.F) {
	gin.SetMode(gin.ReleaseMode)
	for _, seed := range []string{
		`{"members":["a","b"]}`, `{"members":null}`, `{"members":"a"}`, `{"members":[1]}`,
		`{"userId":"u","title":"t","message":"m","type":"system","data":{"a":{"b":[1,2,{"c":null}]}},"expiresAt":"2030-01-01T00:00:00Z"}`,
		`{"userId":7}`, `{"data":[]}`, `{"expiresAt":1}`, `{"userId":"u","exerciseName":"스쿼트","duration":30,"calories":1e999}`,
		`{"phoneNumber":"010-1234-5678","message":"hi"}`, `{"exercises":["a",{"b":1}]}`,
		``, `null`, `[]`, `"x"`, `{`, `{}{}`, `{} `, `{"a":1}x`, "\xff", `{"\u0000":1}`, `{"a":"\ud800"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, limit := range []int64{0, 64} {
			for _, dst := range restBodies() {
				err := decodeJSON(fuzzContext(body, limit), dst)
				wantDecodeError(t, "decodeJSON", err)
				if err == nil && int64(len(body)) > limit && limit > 0 {
					t.Fatalf("a body of %d bytes decoded through a %d-byte limit", len(body), limit)
				}
				if err == nil && !json.Valid(body) {
					t.Fatalf("decoded %q, which is not one JSON value", body)
				}
			}
			userID, record, err := helperBody(fuzzContext(body, limit))
			wantDecodeError(t, "helperBody", err)
			if err == nil {
				if _, has := record["userId"]; has {
					t.Fatalf("helperBody left userId in the record: %v", record)
				}
				if userID != "" && !bytes.Contains(body, []byte(`"userId"`)) && !bytes.Contains(body, []byte(`\u`)) {
					t.Fatalf("helperBody found userId %q in %q", userID, body)
				}
			}
		}
	})
}
