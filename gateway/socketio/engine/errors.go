package engine

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// ErrorCode is one of Engine.IO's HTTP error codes, as Node's engine.io
// answers them in {"code":N,"message":"..."}.
type ErrorCode int

// Engine.IO's HTTP error codes (Node's Server.errors).
const (
	ErrUnknownTransport   ErrorCode = 0
	ErrUnknownSID         ErrorCode = 1
	ErrBadHandshakeMethod ErrorCode = 2
	ErrBadRequest         ErrorCode = 3
	ErrForbidden          ErrorCode = 4
	ErrUnsupportedVersion ErrorCode = 5
)

var errorMessages = [...]string{
	"Transport unknown",
	"Session ID unknown",
	"Bad handshake method",
	"Bad request",
	"Forbidden",
	"Unsupported protocol version",
}

func (c ErrorCode) String() string {
	if c >= 0 && int(c) < len(errorMessages) {
		return errorMessages[c]
	}
	return "Unknown error"
}

// ErrClosed is returned when sending on a session that is closed or closing.
var ErrClosed = errors.New("engine.io: session closed")

// abortRequest answers a polling request (or a refused upgrade before it is
// hijacked) the way Node's abortRequest does: 403 for Forbidden, 400 for the
// rest, with a JSON body.
func abortRequest(w http.ResponseWriter, code ErrorCode, message string) {
	if message == "" {
		message = code.String()
	}
	status := http.StatusBadRequest
	if code == ErrForbidden {
		status = http.StatusForbidden
	}
	body := `{"code":` + strconv.Itoa(int(code)) + `,"message":` + strconv.Quote(message) + `}`
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// abortUpgrade refuses a WebSocket upgrade as Node's abortUpgrade does:
// 400 with the message as text and Connection: close. (Forbidden is 403 here,
// so that an origin gate answers an upgrade as it answers polling.)
func abortUpgrade(w http.ResponseWriter, code ErrorCode, message string) {
	if code == ErrForbidden {
		abortRequest(w, code, message)
		return
	}
	if message == "" {
		message = code.String()
	}
	h := w.Header()
	h.Set("Connection", "close")
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", strconv.Itoa(len(message)))
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte(message))
}

// validHeaderValue reports whether v has only field-vchars, SP and HTAB (what
// Node's checkInvalidHeaderChar accepts).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\t' || (c >= 0x20 && c != 0x7f) {
			continue
		}
		return false
	}
	return true
}

// corsHeaders sets the CORS headers for r, as Node's cors middleware does
// with engine.io's options. It reports whether r was a preflight (answered).
func (c *CORS) apply(w http.ResponseWriter, r *http.Request) (preflight bool) {
	h := w.Header()
	origin := r.Header.Get("Origin")
	allowed := ""
	for _, o := range c.Origins {
		if o == "*" {
			allowed = "*"
			break
		}
		if origin != "" && o == origin {
			allowed = origin
			break
		}
	}
	if allowed != "" {
		h.Set("Access-Control-Allow-Origin", allowed)
		if allowed != "*" {
			h.Add("Vary", "Origin")
		}
		if c.Credentials && allowed != "*" {
			h.Set("Access-Control-Allow-Credentials", "true")
		}
	}
	if r.Method != http.MethodOptions {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET,HEAD,PUT,PATCH,POST,DELETE")
	if len(c.Headers) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(c.Headers, ","))
	} else if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
		h.Add("Vary", "Access-Control-Request-Headers")
	}
	if c.MaxAge > 0 {
		h.Set("Access-Control-Max-Age", strconv.Itoa(int(c.MaxAge.Seconds())))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return true
}
