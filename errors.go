// Package commserver holds what every part of the FitMate communication server shares:
// the error type with its stable codes. Domain packages (chat, notify, sms) return
// *Error values; the gateway maps their codes to HTTP statuses and Socket.IO
// acknowledgements in one table.
package commserver

import (
	"errors"
	"fmt"
	"time"
)

// Code is a stable, machine-readable error code. Clients branch on it, so a code
// is never renamed once shipped.
type Code string

// The codes. The gateway owns the mapping from Code to HTTP status.
const (
	CodeInvalid            Code = "INVALID_ARGUMENT"    // the caller sent something malformed
	CodeUnauthenticated    Code = "UNAUTHENTICATED"     // no or bad credentials
	CodeForbidden          Code = "FORBIDDEN"           // authenticated, but not allowed
	CodeNotFound           Code = "NOT_FOUND"           // no such thing (or not yours)
	CodeConflict           Code = "CONFLICT"            // the request clashes with the current state
	CodeTooLarge           Code = "PAYLOAD_TOO_LARGE"   // a body over its byte limit (a field over its cap is CodeInvalid)
	CodeRequestTimeout     Code = "REQUEST_TIMEOUT"     // the caller did not send its request in time
	CodeRateLimited        Code = "RATE_LIMITED"        // too many requests; see RetryAfter
	CodeStorageUnavailable Code = "STORAGE_UNAVAILABLE" // MongoDB did not answer in time
	CodeUnavailable        Code = "SERVICE_UNAVAILABLE" // a dependency (Redis, Twilio) is down
	CodeUpstream           Code = "UPSTREAM_ERROR"      // a dependency answered with an error
	CodeInternal           Code = "INTERNAL"            // a bug; details are logged, never sent
)

// Error is an error a caller can act on: a stable Code, a message safe to show
// to the caller, and optionally the offending field. Err, when set, is the
// cause; it is logged, never sent.
type Error struct {
	Code       Code
	Message    string
	Field      string        // the input field at fault, when there is one
	RetryAfter time.Duration // for CodeRateLimited
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return string(e.Code) + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, commserver.ErrNotFound) works for any not-found error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == "" && t.Field == ""
}

// Sentinels for errors.Is: each matches any *Error with its code.
var (
	ErrInvalid            = &Error{Code: CodeInvalid}
	ErrUnauthenticated    = &Error{Code: CodeUnauthenticated}
	ErrForbidden          = &Error{Code: CodeForbidden}
	ErrNotFound           = &Error{Code: CodeNotFound}
	ErrConflict           = &Error{Code: CodeConflict}
	ErrTooLarge           = &Error{Code: CodeTooLarge}
	ErrRateLimited        = &Error{Code: CodeRateLimited}
	ErrStorageUnavailable = &Error{Code: CodeStorageUnavailable}
	ErrUnavailable        = &Error{Code: CodeUnavailable}
	ErrUpstream           = &Error{Code: CodeUpstream}
)

// Errorf returns an *Error with code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a CodeInvalid error about field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err: its own if it is (or wraps) an *Error,
// CodeInternal otherwise.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the caller-safe message of err. Errors that are not
// *Error are internal: their text may hold details the caller must not see.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return "internal error"
}
