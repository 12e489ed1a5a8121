// Package stickyproxy is a small HTTP and WebSocket reverse proxy with
// session affinity: it stands in for Nginx in front of several pods in
// end-to-end tests and in `make cluster`.
//
// Socket.IO's long-polling transport needs every request of a session to
// reach the pod that holds it (the pods share no Engine.IO sessions); a pod
// that does not know the session answers 400 {"code":1,"message":"Session ID
// unknown"}, as Node's engine.io does. The affinities:
//
//   - SessionID: the proxy reads the sid of each Engine.IO handshake it
//     forwards and sends the requests that carry ?sid= to the pod that
//     issued it. It is what works for every client: browsers without
//     credentials and Node's socket.io-client (which keeps cookies only with
//     withCredentials: true) alike.
//   - Cookie: a cookie names the pod (set on the first answer), like a
//     sticky-cookie load balancer; clients must send cookies back.
//   - ClientIP: a hash of the client's address (Nginx's ip_hash); with every
//     test client on one loopback address, all of them land on one pod.
//   - None: round robin for every request, which breaks long-polling across
//     pods exactly as a load balancer without affinity does.
//
// WebSocket upgrades pass through (the connection then stays on its pod).
// A pod that refuses connections is skipped for new sessions for a while.
package stickyproxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Affinity is how the proxy keeps a client on one pod.
type Affinity int

// Affinities (see the package documentation).
const (
	None Affinity = iota
	SessionID
	Cookie
	ClientIP
)

var affinityNames = map[Affinity]string{None: "none", SessionID: "sid", Cookie: "cookie", ClientIP: "ip"}

func (a Affinity) String() string { return affinityNames[a] }

// ParseAffinity reads "sid", "cookie", "ip" or "none".
func ParseAffinity(s string) (Affinity, error) {
	for a, name := range affinityNames {
		if strings.EqualFold(s, name) {
			return a, nil
		}
	}
	return None, fmt.Errorf("affinity %q: want sid, cookie, ip or none", s)
}

// CookieName is the cookie of the Cookie affinity.
const CookieName = "fitmate_pod"

// Options tune a Proxy.
type Options struct {
	Affinity Affinity
	// SessionIdle is how long an unused sid → pod entry is kept. Default 10m.
	SessionIdle time.Duration
	// DownFor is how long a pod that refused a connection is skipped. Default 2s.
	DownFor time.Duration
}

// Proxy forwards to its backends with the chosen affinity.
type Proxy struct {
	backends []*backend
	opts     Options
	log      *slog.Logger
	rp       *httputil.ReverseProxy
	next     atomic.Uint64 // round robin

	mu       sync.Mutex
	sessions map[string]*session // sid → pod
	inserts  int
}

type backend struct {
	url       *url.URL
	index     int
	downUntil atomic.Int64 // unix nanoseconds
	requests  atomic.Uint64
}

type session struct {
	backend *backend
	used    time.Time
}

// choice is what ServeHTTP decided for a request, for Rewrite and ModifyResponse.
type choice struct {
	backend   *backend
	handshake bool // an Engine.IO polling handshake: learn its sid
	sid       string
	setCookie bool
}

type choiceKey struct{}

// New returns a proxy to backends (http://host:port).
func New(backends []string, opts Options, log *slog.Logger) (*Proxy, error) {
	if len(backends) == 0 {
		return nil, errors.New("stickyproxy: no backend")
	}
	if opts.SessionIdle <= 0 {
		opts.SessionIdle = 10 * time.Minute
	}
	if opts.DownFor <= 0 {
		opts.DownFor = 2 * time.Second
	}
	p := &Proxy{opts: opts, log: log, sessions: map[string]*session{}}
	for i, b := range backends {
		u, err := url.Parse(b)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("stickyproxy: backend %q: want http://host:port", b)
		}
		p.backends = append(p.backends, &backend{url: u, index: i})
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		FlushInterval:  -1,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   256,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return p, nil
}

// Requests returns how many requests each backend was sent, in order.
func (p *Proxy) Requests() []uint64 {
	out := make([]uint64, len(p.backends))
	for i, b := range p.backends {
		out[i] = b.requests.Load()
	}
	return out
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := p.choose(r)
	c.backend.requests.Add(1)
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), choiceKey{}, c)))
}

func isEngineIO(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/socket.io/") && r.URL.Query().Get("EIO") != ""
}

func (p *Proxy) choose(r *http.Request) *choice {
	q := r.URL.Query()
	sid := q.Get("sid")
	c := &choice{sid: sid}
	switch p.opts.Affinity {
	case SessionID:
		if sid != "" {
			c.backend = p.sessionBackend(sid)
			return c
		}
		c.handshake = isEngineIO(r) && q.Get("transport") == "polling"
	case Cookie:
		if ck, err := r.Cookie(CookieName); err == nil {
			if i, err := strconv.Atoi(ck.Value); err == nil && i >= 0 && i < len(p.backends) && p.backends[i].up() {
				c.backend = p.backends[i]
				return c
			}
		}
		c.setCookie = true
	case ClientIP:
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		c.backend = p.hashed(host)
		return c
	}
	c.backend = p.roundRobin()
	return c
}

// sessionBackend is the pod that issued sid; one the proxy never saw (it
// restarted, or the session came over a WebSocket) goes to a pod chosen by
// the sid's hash, which answers "Session ID unknown" unless it is the one.
func (p *Proxy) sessionBackend(sid string) *backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.sessions[sid]; ok {
		s.used = time.Now()
		return s.backend
	}
	h := fnv.New32a()
	h.Write([]byte(sid))
	return p.backends[int(h.Sum32()%uint32(len(p.backends)))]
}

func (p *Proxy) learn(sid string, b *backend) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.sessions[sid] = &session{backend: b, used: now}
	p.inserts++
	if p.inserts%1024 == 0 {
		for k, s := range p.sessions {
			if now.Sub(s.used) > p.opts.SessionIdle {
				delete(p.sessions, k)
			}
		}
	}
}

func (p *Proxy) forget(sid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.sessions, sid)
}

// Sessions is how many sid → pod entries the proxy holds.
func (p *Proxy) Sessions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sessions)
}

func (b *backend) up() bool { return time.Now().UnixNano() >= b.downUntil.Load() }

// roundRobin picks the next backend that is up (any, when none is).
func (p *Proxy) roundRobin() *backend {
	n := len(p.backends)
	start := int(p.next.Add(1) % uint64(n))
	for i := range n {
		if b := p.backends[(start+i)%n]; b.up() {
			return b
		}
	}
	return p.backends[start]
}

// hashed picks by key among the backends that are up, as ip_hash does.
func (p *Proxy) hashed(key string) *backend {
	h := fnv.New32a()
	h.Write([]byte(key))
	n := len(p.backends)
	start := int(h.Sum32() % uint32(n))
	for i := range n {
		if b := p.backends[(start+i)%n]; b.up() {
			return b
		}
	}
	return p.backends[start]
}

func choiceOf(r *http.Request) *choice {
	c, _ := r.Context().Value(choiceKey{}).(*choice)
	return c
}

func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	c := choiceOf(pr.In)
	pr.SetURL(c.backend.url)
	pr.Out.Host = pr.In.Host // as Nginx's proxy_set_header Host $host
	pr.SetXForwarded()
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	c := choiceOf(resp.Request)
	if c == nil {
		return nil
	}
	if c.setCookie {
		resp.Header.Add("Set-Cookie", (&http.Cookie{Name: CookieName, Value: strconv.Itoa(c.backend.index), Path: "/",
			HttpOnly: true, SameSite: http.SameSiteLaxMode}).String())
	}
	if c.sid != "" && resp.StatusCode == http.StatusBadRequest {
		p.forget(c.sid) // the pod does not know the session (any more)
	}
	if c.handshake && resp.StatusCode == http.StatusOK {
		sid, err := handshakeSID(resp)
		if err != nil {
			p.log.Debug("stickyproxy: handshake without a readable sid", "backend", c.backend.url.Host, "err", err)
			return nil
		}
		p.learn(sid, c.backend)
	}
	return nil
}

// handshakeSID reads the sid of an Engine.IO open packet ("0{...}", or
// EIO 3's "<length>:0{...}") and puts the body back for the client.
func handshakeSID(resp *http.Response) (string, error) {
	head, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	body := head
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(bytes.NewReader(head))
		if err != nil {
			return "", err
		}
		if body, err = io.ReadAll(io.LimitReader(zr, 64<<10)); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return "", err
		}
	}
	i := bytes.IndexByte(body, '{')
	if i < 1 || body[i-1] != '0' {
		return "", errors.New("not an open packet")
	}
	var open struct {
		SID string `json:"sid"`
	}
	dec := json.NewDecoder(bytes.NewReader(body[i:]))
	if err := dec.Decode(&open); err != nil || open.SID == "" {
		return "", fmt.Errorf("open packet: %v", err)
	}
	return open.SID, nil
}

func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	c := choiceOf(r)
	if errors.Is(err, syscall.ECONNREFUSED) || isDialError(err) {
		c.backend.downUntil.Store(time.Now().Add(p.opts.DownFor).UnixNano())
	}
	if errors.Is(err, context.Canceled) {
		return // the client went away
	}
	p.log.Warn("stickyproxy: backend unreachable", "backend", c.backend.url.Host, "err", err)
	w.WriteHeader(http.StatusBadGateway)
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
