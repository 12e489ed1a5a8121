package test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/golang-jwt/jwt/v5"
)

func signed(t testing.TB, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validClaims(user string, kv ...any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": user, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

// refusal is a handshake the server must refuse: the connect_error message
// contains why, and its data carries the stable code.
type refusal struct {
	name    string
	auth    map[string]any
	code    string
	message string // a part of the connect_error message
}

func checkRefusals(t *testing.T, srv *server, cases []refusal) {
	t.Helper()
	for tname, tr := range transports {
		t.Run(tname, func(t *testing.T) {
			c := newJS(t, srv)
			for i, rc := range cases {
				r := c.tryConnect(rc.name+"-"+string(rune('a'+i)), rc.auth, tr)
				if r["ok"] == true {
					t.Errorf("%s: connected; want connect_error %s", rc.name, rc.code)
					continue
				}
				e, _ := r["error"].(map[string]any)
				data, _ := e["data"].(map[string]any)
				msg, _ := e["message"].(string)
				if data["code"] != rc.code || !strings.Contains(msg, rc.message) {
					t.Errorf("%s: connect_error %v, want code %s and a message with %q", rc.name, e, rc.code, rc.message)
				}
			}
		})
	}
}

func TestHandshakeRefusesBadTokens(t *testing.T) {
	srv := startServer(t)
	now := time.Now()
	hs := func(c jwt.MapClaims) map[string]any {
		return map[string]any{"token": signed(t, jwt.SigningMethodHS256, []byte(testSecret), c)}
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims(alice)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cases := []refusal{
		{"missing", map[string]any{}, "TOKEN_MISSING", "token missing"},
		{"empty", map[string]any{"token": ""}, "TOKEN_MISSING", "token missing"},
		{"not a string", map[string]any{"token": 12345}, "TOKEN_MALFORMED", "must be a string"},
		{"garbage", map[string]any{"token": "garbage"}, "TOKEN_MALFORMED", "not a well-formed JWT"},
		{"expired", hs(validClaims(alice, "exp", now.Add(-time.Hour).Unix())), "TOKEN_EXPIRED", "expired"},
		{"no exp", hs(validClaims(alice, "exp", nil)), "TOKEN_CLAIMS_INVALID", "no exp"},
		{"nbf in the future", hs(validClaims(alice, "nbf", now.Add(time.Hour).Unix())), "TOKEN_NOT_YET_VALID", "not valid yet"},
		{"wrong key", map[string]any{"token": signed(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef0"), validClaims(alice))},
			"TOKEN_SIGNATURE_INVALID", "signature"},
		{"alg none", map[string]any{"token": none}, "TOKEN_ALGORITHM_NOT_ALLOWED", "algorithm"},
		{"RS256 when only a secret is configured", map[string]any{"token": signed(t, jwt.SigningMethodRS256, rsaKey, validClaims(alice))},
			"TOKEN_ALGORITHM_NOT_ALLOWED", "algorithm"},
		{"too long", hs(validClaims(alice, "pad", strings.Repeat("p", 9000))), "TOKEN_TOO_LONG", "longer than"},
		{"no user", hs(validClaims(alice, "sub", nil)), "TOKEN_CLAIMS_INVALID", "names no user"},
	}
	checkRefusals(t, srv, cases)
}

// Clients that cannot set auth (a server, a load generator) may send the
// token as "Authorization: Bearer"; auth.token wins when both are present.
func TestHandshakeWithAuthorizationHeader(t *testing.T) {
	srv := startServer(t)
	for name, tr := range transports {
		t.Run(name, func(t *testing.T) {
			c := newJS(t, srv)
			hdr := func(v string) map[string]any {
				return map[string]any{"extraHeaders": map[string]any{"Authorization": v}}
			}
			c.tryConnect("ok", map[string]any{}, tr, hdr("Bearer "+token(alice)))
			if st := c.state("ok"); st["connected"] != true {
				t.Errorf("a Bearer header was refused: %v", st)
			}
			r := c.tryConnect("bad", map[string]any{}, tr, hdr("Bearer garbage"))
			if e, _ := r["error"].(map[string]any); r["ok"] == true || e["data"].(map[string]any)["code"] != "TOKEN_MALFORMED" {
				t.Errorf("a bad Bearer header: %v", r)
			}
			r = c.tryConnect("both", map[string]any{"token": "garbage"}, tr, hdr("Bearer "+token(alice)))
			if r["ok"] == true {
				t.Errorf("a bad auth.token was accepted because the header was good: %v", r)
			}
		})
	}
}

// With only JWT_PUBLIC_KEY configured, RS256 tokens are accepted, and an
// HS256 token whose HMAC secret is that public key's PEM (algorithm
// confusion) is refused, as is alg none. Issuer and audience are checked when set.
func TestHandshakeWithPublicKey(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	srv := startServer(t, "JWT_SECRET=", "JWT_PUBLIC_KEY="+string(pubPEM), "JWT_ISSUER=fitmate-api", "JWT_AUDIENCE=fitmate-app")
	good := func(kv ...any) jwt.MapClaims {
		return validClaims(alice, append([]any{"iss", "fitmate-api", "aud", "fitmate-app"}, kv...)...)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, good()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	c := newJS(t, srv)
	c.connect("rs256", signed(t, jwt.SigningMethodRS256, key, good()))
	if got := c.waitEvent("rs256", "unreadNotificationCount"); got != float64(0) {
		t.Errorf("unreadNotificationCount = %v", got)
	}
	checkRefusals(t, srv, []refusal{
		{"HS256 signed with the public key PEM", map[string]any{"token": signed(t, jwt.SigningMethodHS256, pubPEM, good())},
			"TOKEN_ALGORITHM_NOT_ALLOWED", "algorithm"},
		{"HS256 signed with the old test secret", map[string]any{"token": signed(t, jwt.SigningMethodHS256, []byte(testSecret), good())},
			"TOKEN_ALGORITHM_NOT_ALLOWED", "algorithm"},
		{"alg none", map[string]any{"token": none}, "TOKEN_ALGORITHM_NOT_ALLOWED", "algorithm"},
		{"wrong issuer", map[string]any{"token": signed(t, jwt.SigningMethodRS256, key, good("iss", "someone-else"))},
			"TOKEN_CLAIMS_INVALID", "issuer"},
		{"wrong audience", map[string]any{"token": signed(t, jwt.SigningMethodRS256, key, good("aud", "admin-console"))},
			"TOKEN_CLAIMS_INVALID", "audience"},
		{"expired", map[string]any{"token": signed(t, jwt.SigningMethodRS256, key, good("exp", time.Now().Add(-time.Hour).Unix()))},
			"TOKEN_EXPIRED", "expired"},
	})
}

// A browser on a foreign origin is refused on both transports; the app's
// origin and clients without an Origin header (native apps, servers) pass.
func TestForeignOriginIsRefused(t *testing.T) {
	srv := startServer(t)
	for name, tr := range transports {
		t.Run(name, func(t *testing.T) {
			c := newJS(t, srv)
			evil := map[string]any{"extraHeaders": map[string]any{"Origin": "https://evil.example"}}
			r := c.tryConnect("evil", map[string]any{"token": token(alice)}, tr, evil)
			if r["ok"] == true {
				t.Fatalf("connected from a foreign origin: %v", r)
			}
			c.connect("app", token(alice), tr, map[string]any{"extraHeaders": map[string]any{"Origin": appOrigin}})
			c.connect("native", token(bob), tr)
		})
	}
	t.Run("plain HTTP", func(t *testing.T) {
		for _, tc := range []struct {
			origin string
			want   int
		}{{"https://evil.example", 403}, {appOrigin + ".evil.example", 403}, {"null", 403}, {appOrigin, 200}, {"", 200},
			{"https://" + strings.Repeat("a", 100_000) + ".example", 403}} {
			req, _ := http.NewRequest("GET", srv.URL+"/socket.io/?EIO=4&transport=polling", nil)
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("Origin %q: status %d, want %d", commserver.Truncate(tc.origin, 40), resp.StatusCode, tc.want)
			}
			if len(body) > 1024 {
				t.Errorf("Origin of %d bytes: answer of %d bytes echoes it", len(tc.origin), len(body))
			}
			if tc.want == 200 && tc.origin != "" && resp.Header.Get("Access-Control-Allow-Origin") != tc.origin {
				t.Errorf("Origin %q: Access-Control-Allow-Origin %q", tc.origin, resp.Header.Get("Access-Control-Allow-Origin"))
			}
		}
	})
}

// A token that expires while connected ends the socket: the client first
// gets an `error` event saying why (the frame must not be lost when the
// connection closes: the transport closes after what is queued), then a
// transport close it recovers from by itself; the reconnect with the same,
// now expired, token is refused.
func TestTokenExpiringWhileConnectedEndsTheSocket(t *testing.T) {
	srv := startServer(t)
	c := newJS(t, srv)
	// exp is whole seconds; the server adds 5s of clock leeway.
	short := signed(t, jwt.SigningMethodHS256, []byte(testSecret), validClaims(alice, "exp", time.Now().Add(2*time.Second).Unix()))
	names := []string{}
	for name, tr := range transports {
		n := "short-" + name
		names = append(names, n)
		c.connect(n, short, tr, map[string]any{"reconnection": true})
	}
	c.connect("long", token(alice))
	for _, n := range names {
		e, ok := c.waitEvent(n, "error", 20*time.Second).(map[string]any)
		if !ok || e["code"] != "TOKEN_EXPIRED" || e["message"] == "" {
			t.Errorf("%s: error event %v, want code TOKEN_EXPIRED", n, e)
		}
		if reason := c.waitEvent(n, "$disconnect", 5*time.Second); reason != "transport close" {
			t.Errorf("%s: disconnect reason %v, want transport close (so that the client reconnects by itself)", n, reason)
		}
		ce, ok := c.waitEvent(n, "$connect_error", 10*time.Second).(map[string]any)
		if data, _ := ce["data"].(map[string]any); !ok || data["code"] != "TOKEN_EXPIRED" {
			t.Errorf("%s: reconnect connect_error %v, want TOKEN_EXPIRED", n, ce)
		}
	}
	if st := c.state("long"); st["connected"] != true {
		t.Errorf("a socket with a valid token was closed too: %v", st)
	}
}
