package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/chat"
	"github.com/gin-gonic/gin"
)

// HTTPDeps are what the HTTP side works with.
type HTTPDeps struct {
	Hub           *Hub
	Verifier      *Verifier
	ServiceAPIKey string
	CORSOrigins   []string
	MaxBodyBytes  int64
	Chat          ChatAPI
	Notify        Notifications
	Ready         func(ctx context.Context) error // nil when ready; called by /readyz
	// Degraded names what works in part (the cluster's Redis, say) and why;
	// /readyz reports it and stays 200: the pod still serves its own sockets.
	Degraded func() map[string]string
	Metrics  *Metrics
	Log      *slog.Logger

	// ReadTimeout bounds the read of a request body (the header read is the
	// http.Server's); WriteTimeout the write of an answer. A Socket.IO
	// long-poll may be held for PingInterval more before it is answered.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	PingInterval time.Duration

	// SMS sends texts and runs phone verification. TrustedProxies are the
	// proxies (Nginx) whose X-Forwarded-For names the client, for its limits.
	SMS            Texts
	TrustedProxies []netip.Prefix

	// Jobs runs the scheduled jobs (nil: the admin job routes answer 503);
	// Goals keeps the goals goal-check watches (gateway/jobs_http.go, goals_http.go).
	Jobs  Jobs
	Goals Goals
}

// api is the REST surface's handlers and what they share.
type api struct {
	HTTPDeps
}

// NewHandler returns the server's whole HTTP surface on one port:
// /socket.io/ to Socket.IO, everything else to Gin.
func NewHandler(d HTTPDeps) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	a := &api{HTTPDeps: d}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", d.Hub) // its origin check: HubOptions.CORSOrigins
	mux.Handle("/", a.routes())
	return a.deadlines(mux)
}

// deadlines bounds every request's body read and answer write, so a client
// that trickles its body (or reads its answer) a byte at a time cannot hold
// a connection, and with it one of the process's file descriptors, for long.
// The read deadline ends when the body has been read: a long-poll GET has no
// body and waits as long as the engine holds it, and a WebSocket upgrade
// clears both deadlines when net/http hands the connection over.
func (a *api) deadlines(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		if r.Body != nil && r.Body != http.NoBody && a.ReadTimeout > 0 {
			_ = rc.SetReadDeadline(now.Add(a.ReadTimeout))
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		}
		if a.WriteTimeout > 0 {
			write := a.WriteTimeout
			if strings.HasPrefix(r.URL.Path, "/socket.io/") {
				write += a.PingInterval
			}
			_ = rc.SetWriteDeadline(now.Add(write))
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody clears the connection's read deadline once the body has been
// read to its end, so the deadline never outlives the body it bounds.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// cors answers preflights and sets CORS headers for allowed origins on the REST routes.
func (a *api) cors(c *gin.Context) {
	o := c.GetHeader("Origin")
	if o != "" && slices.Contains(a.CORSOrigins, o) {
		h := c.Writer.Header()
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
		if c.Request.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-API-Key")
			h.Set("Access-Control-Max-Age", "600")
			c.AbortWithStatus(http.StatusNoContent)
			return
		}
	}
	c.Next()
}

// observe logs and counts each request, and turns a panic into a 500 without a stack trace to the caller.
func (a *api) observe(c *gin.Context) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			a.Log.Error("http handler panic", "method", c.Request.Method, "path", c.Request.URL.Path, "panic", r)
			a.writeError(c, errors.New("panic"))
		}
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		a.Metrics.request(route, c.Writer.Status(), time.Since(start))
		a.Log.Debug("http", "method", c.Request.Method, "route", route, "status", c.Writer.Status(), "duration", time.Since(start))
	}()
	if a.MaxBodyBytes > 0 && c.Request.Body != nil {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, a.MaxBodyBytes)
	}
	c.Next()
}

// writeError answers with the error's status and JSON body. Internal errors
// are logged here, once, and reach the caller only as "internal error".
func (a *api) writeError(c *gin.Context, err error) {
	code := commserver.ErrorCode(err)
	status := HTTPStatus(code)
	if status >= 500 {
		a.Log.Error("http request failed", "method", c.Request.Method, "route", c.FullPath(), "code", code, "err", err)
	}
	var ce *commserver.Error
	if errors.As(err, &ce) && ce.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(int((ce.RetryAfter+time.Second-1)/time.Second)))
	}
	c.AbortWithStatusJSON(status, errorBody(err))
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// ok answers 200 with success: true and the given fields.
func ok(c *gin.Context, fields gin.H) {
	body := gin.H{"success": true}
	for k, v := range fields {
		body[k] = v
	}
	c.JSON(http.StatusOK, body)
}

// Authentication middleware. The principal is kept in the Gin context.

const principalKey = "principal"

func principalOf(c *gin.Context) Principal {
	p, _ := c.Get(principalKey)
	pr, _ := p.(Principal)
	return pr
}

// user requires a user's JWT (Authorization: Bearer).
func (a *api) user(c *gin.Context) {
	p, err := a.Verifier.Verify(bearer(c.GetHeader(authorizationHeader)))
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.Set(principalKey, p)
	c.Next()
}

// service requires the service credential (X-API-Key, compared in constant
// time) or an admin's JWT. A user's JWT is refused with 403.
func (a *api) service(c *gin.Context) {
	if key := c.GetHeader(apiKeyHeader); key != "" {
		if !apiKeyMatches(key, a.ServiceAPIKey) {
			a.writeError(c, &commserver.Error{Code: CodeAPIKeyInvalid, Message: "X-API-Key is not valid"})
			return
		}
		c.Set(principalKey, Principal{Service: true, Identity: chat.Identity{Admin: true}})
		c.Next()
		return
	}
	token := bearer(c.GetHeader(authorizationHeader))
	if token == "" {
		a.writeError(c, commserver.Errorf(commserver.CodeUnauthenticated, "this route needs X-API-Key or an admin's Bearer token"))
		return
	}
	p, err := a.Verifier.Verify(token)
	if err != nil {
		a.writeError(c, err)
		return
	}
	if !a.Chat.IsAdmin(c.Request.Context(), p.Identity) {
		a.writeError(c, commserver.Errorf(commserver.CodeForbidden, "this route is for the service credential or admins"))
		return
	}
	p.Admin = true
	c.Set(principalKey, p)
	c.Next()
}

// decodeJSON reads the request body into dst, with errors that say what is wrong.
func decodeJSON(c *gin.Context, dst any) error {
	dec := json.NewDecoder(c.Request.Body)
	err := dec.Decode(dst)
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var big *http.MaxBytesError
	switch {
	case err == nil:
		// Nothing but white space may follow. (Decoder.More answers false
		// before a stray } or ], so it would let `{...}}garbage` through.)
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			if errors.As(err, &big) {
				return bodyTooLarge(big)
			}
			return commserver.Invalid("", "request body must hold one JSON value and nothing after it")
		}
		return nil
	case errors.As(err, &big):
		return bodyTooLarge(big)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return commserver.Errorf(commserver.CodeRequestTimeout, "request body was not received in time")
	case errors.Is(err, io.EOF):
		return commserver.Invalid("", "request body is empty; send a JSON object")
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
		return commserver.Invalid("", "request body is not valid JSON")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return commserver.Invalid("", "request body must be a JSON object")
		}
		return commserver.Invalid(field, "%s must be %s, got %s", field, describeType(typ.Type), typ.Value)
	default:
		return commserver.Invalid("", "request body could not be read: %v", err)
	}
}

// bodyTooLarge is the error of a body cut off by http.MaxBytesReader.
func bodyTooLarge(big *http.MaxBytesError) error {
	return &commserver.Error{Code: commserver.CodeTooLarge, Message: fmt.Sprintf("request body is larger than %d bytes", big.Limit)}
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array of " + strings.TrimPrefix(describeType(t.Elem()), "a ")
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Float64, reflect.Float32, reflect.Uint, reflect.Uint64:
		return "a number"
	case reflect.Pointer:
		return describeType(t.Elem())
	default:
		return t.String()
	}
}

// queryInt reads an optional whole-number query parameter.
func queryInt(c *gin.Context, name string, def int) (int, error) {
	v, present := c.GetQuery(name)
	if !present {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, commserver.Invalid(name, "%s must be a whole number, got %q", name, v)
	}
	return n, nil
}
