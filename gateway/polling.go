package gateway

import (
	"bytes"
	"io"
	"net/http"
	"strings"

	"github.com/zishang520/socket.io/parsers/engine/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// engineSeparator separates the packets of an Engine.IO v4 polling payload.
const engineSeparator = "\x1e"

// pollingGuard closes a long-polling session whose POST does not decode as
// Engine.IO packets, as the Node server does ("parse error").
// zishang520/socket.io's polling transport ignores the decode error and keeps
// the session open, so a broken or hostile client would hold it until the
// heartbeat gives up. Other requests pass through untouched.
func (a *api) pollingGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		sid := q.Get("sid")
		if r.Method != http.MethodPost || sid == "" || q.Get("transport") != "polling" ||
			r.Header.Get("Content-Type") == "application/octet-stream" { // the library refuses binary POSTs itself
			next.ServeHTTP(w, r)
			return
		}
		limit := a.MaxBodyBytes
		if limit <= 0 {
			limit = 1 << 20
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		_ = r.Body.Close()
		switch {
		case err != nil:
			writeJSON(w, http.StatusBadRequest, map[string]any{"code": 3, "message": "Bad request"})
			return
		case int64(len(body)) > limit:
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"code": 3, "message": "Payload too large"})
			return
		case !wellFormedPayload(body):
			if eng := a.Hub.io.Engine(); eng != nil {
				if s, ok := eng.Clients().Load(sid); ok {
					s.Close(false) // the pending poll, or the next one, gets the CLOSE packet
				}
			}
			writeJSON(w, http.StatusBadRequest, map[string]any{"code": 3, "message": "Bad request: malformed payload"})
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// wellFormedPayload reports whether body is one or more Engine.IO v4 packets
// separated by the record separator, none of them empty.
func wellFormedPayload(body []byte) bool {
	if len(body) == 0 {
		return false
	}
	p := parser.Parserv4()
	for _, pkt := range strings.Split(string(body), engineSeparator) {
		if pkt == "" {
			return false
		}
		if _, err := p.DecodePacket(types.NewStringBuffer([]byte(pkt))); err != nil {
			return false
		}
	}
	return true
}
