package gateway

import (
	"errors"
	"net/http"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/sms"
)

// The one table of error codes: every code a caller can get, with the HTTP
// status REST answers it with. An acknowledgement and an error event carry
// the same code and fields (errorFields) as a REST error body.
var statusOf = map[commserver.Code]int{
	commserver.CodeInvalid:            http.StatusBadRequest,
	commserver.CodeUnauthenticated:    http.StatusUnauthorized,
	CodeTokenMissing:                  http.StatusUnauthorized,
	CodeTokenTooLong:                  http.StatusUnauthorized,
	CodeTokenMalformed:                http.StatusUnauthorized,
	CodeTokenAlgorithm:                http.StatusUnauthorized,
	CodeTokenSignature:                http.StatusUnauthorized,
	CodeTokenExpired:                  http.StatusUnauthorized,
	CodeTokenNotYetValid:              http.StatusUnauthorized,
	CodeTokenClaims:                   http.StatusUnauthorized,
	CodeAPIKeyInvalid:                 http.StatusUnauthorized,
	commserver.CodeForbidden:          http.StatusForbidden,
	commserver.CodeNotFound:           http.StatusNotFound,
	commserver.CodeConflict:           http.StatusConflict,
	commserver.CodeTooLarge:           http.StatusRequestEntityTooLarge,
	commserver.CodeRequestTimeout:     http.StatusRequestTimeout,
	commserver.CodeRateLimited:        http.StatusTooManyRequests,
	commserver.CodeStorageUnavailable: http.StatusServiceUnavailable,
	commserver.CodeUnavailable:        http.StatusServiceUnavailable,
	commserver.CodeUpstream:           http.StatusBadGateway,
	commserver.CodeInternal:           http.StatusInternalServerError,
	sms.CodeCountryNotAllowed:         http.StatusBadRequest,
}

// HTTPStatus is the status a code answers with.
func HTTPStatus(code commserver.Code) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// errorFields is an error as every caller sees it, in a REST body, an
// acknowledgement and an error event alike: { code, message, field?,
// retryAfterMs? }. Internal details never reach it (commserver.ErrorMessage).
func errorFields(err error) map[string]any {
	e := map[string]any{"code": string(commserver.ErrorCode(err)), "message": commserver.ErrorMessage(err)}
	var ce *commserver.Error
	if errors.As(err, &ce) {
		if ce.Field != "" {
			e["field"] = ce.Field
		}
		if ce.RetryAfter > 0 {
			e["retryAfterMs"] = ce.RetryAfter.Milliseconds()
		}
	}
	return e
}

// errorBody is a REST error: { success: false, error: errorFields }.
func errorBody(err error) map[string]any {
	return map[string]any{"success": false, "error": errorFields(err)}
}
