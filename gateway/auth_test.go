package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/golang-jwt/jwt/v5"
)

const testSecret = "unit-test-secret-0123456789abcdef" // 33 bytes

// keys are generated once: RSA generation is slow under -race.
var (
	rsaKey, _   = rsa.GenerateKey(rand.Reader, 2048)
	otherRSA, _ = rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _    = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherEC, _  = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
)

// now is the verifier's clock in these tests.
var now = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func claims(kv ...any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "aaaaaaaaaaaaaaaaaaaaaaa1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
			continue
		}
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unsigned builds an alg "none" token by hand, as an attacker would.
func unsigned(c jwt.MapClaims) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		panic(err)
	}
	return s
}

func publicPEM(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestVerify(t *testing.T) {
	hs := VerifierOptions{Secret: []byte(testSecret), Now: func() time.Time { return now }}
	rs := VerifierOptions{PublicKey: &rsaKey.PublicKey, Now: hs.Now}
	es := VerifierOptions{PublicKey: &ecKey.PublicKey, Now: hs.Now}
	both := VerifierOptions{Secret: []byte(testSecret), PublicKey: &rsaKey.PublicKey, Now: hs.Now}
	iss := VerifierOptions{Secret: []byte(testSecret), Issuer: "fitmate-api", Audience: "fitmate-app", Now: hs.Now}
	small := VerifierOptions{Secret: []byte(testSecret), MaxBytes: 300, Now: hs.Now}
	custom := VerifierOptions{Secret: []byte(testSecret), UserClaim: "memberId", Now: hs.Now}
	hmac := func(c jwt.MapClaims) func(*testing.T) string {
		return func(t *testing.T) string { return sign(t, jwt.SigningMethodHS256, []byte(testSecret), c) }
	}
	const alice = "aaaaaaaaaaaaaaaaaaaaaaa1"

	tests := []struct {
		name      string
		opts      VerifierOptions
		token     func(t *testing.T) string
		wantCode  commserver.Code // empty: accepted
		wantUser  string
		wantAdmin bool
	}{
		{"HS256 ok", hs, hmac(claims()), "", alice, false},
		{"RS256 ok", rs, func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, rsaKey, claims()) }, "", alice, false},
		{"ES256 ok", es, func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, ecKey, claims()) }, "", alice, false},
		{"HS256 and RS256 both configured, RS256 ok", both, func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, rsaKey, claims()) }, "", alice, false},
		{"Bearer-style whitespace trimmed", hs, func(t *testing.T) string { return "  " + hmac(claims())(t) + "\n" }, "", alice, false},

		{"missing", hs, func(*testing.T) string { return "" }, CodeTokenMissing, "", false},
		{"blank", hs, func(*testing.T) string { return "   " }, CodeTokenMissing, "", false},
		{"garbage", hs, func(*testing.T) string { return "not-a-jwt" }, CodeTokenMalformed, "", false},
		{"two segments", hs, func(*testing.T) string { return "eyJhbGciOiJIUzI1NiJ9.e30" }, CodeTokenMalformed, "", false},
		{"too long", small, hmac(claims("pad", strings.Repeat("x", 400))), CodeTokenTooLong, "", false},
		{"expired", hs, hmac(claims("exp", now.Add(-time.Minute).Unix())), CodeTokenExpired, "", false},
		{"expired within leeway", hs, hmac(claims("exp", now.Add(-2*time.Second).Unix())), "", alice, false},
		{"missing exp", hs, hmac(claims("exp", nil)), CodeTokenClaims, "", false},
		{"exp not a number", hs, hmac(claims("exp", "tomorrow")), CodeTokenClaims, "", false},
		{"nbf in the future", hs, hmac(claims("nbf", now.Add(time.Minute).Unix())), CodeTokenNotYetValid, "", false},
		{"nbf in the past", hs, hmac(claims("nbf", now.Add(-time.Minute).Unix())), "", alice, false},
		{"wrong secret", hs, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef0"), claims())
		}, CodeTokenSignature, "", false},
		{"tampered payload", hs, func(t *testing.T) string {
			parts := strings.Split(hmac(claims())(t), ".")
			parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"ddddddddddddddddddddddd4","exp":9999999999,"role":"admin"}`))
			return strings.Join(parts, ".")
		}, CodeTokenSignature, "", false},
		{"alg none", hs, func(*testing.T) string { return unsigned(claims()) }, CodeTokenAlgorithm, "", false},
		{"alg none with public key", rs, func(*testing.T) string { return unsigned(claims()) }, CodeTokenAlgorithm, "", false},
		{"HS256 signed with the RSA public PEM (algorithm confusion)", rs, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, publicPEM(t, &rsaKey.PublicKey), claims())
		}, CodeTokenAlgorithm, "", false},
		{"algorithm confusion with a secret also configured", both, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, publicPEM(t, &rsaKey.PublicKey), claims())
		}, CodeTokenSignature, "", false},
		{"RS256 by another key", rs, func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, otherRSA, claims()) }, CodeTokenSignature, "", false},
		{"ES256 by another key", es, func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, otherEC, claims()) }, CodeTokenSignature, "", false},
		{"RS256 when only a secret is configured", hs, func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, rsaKey, claims()) }, CodeTokenAlgorithm, "", false},
		{"ES256 when an RSA key is configured", rs, func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, ecKey, claims()) }, CodeTokenAlgorithm, "", false},
		{"RS512 refused", rs, func(t *testing.T) string { return sign(t, jwt.SigningMethodRS512, rsaKey, claims()) }, CodeTokenAlgorithm, "", false},
		{"HS512 refused", hs, func(t *testing.T) string { return sign(t, jwt.SigningMethodHS512, []byte(testSecret), claims()) }, CodeTokenAlgorithm, "", false},

		{"issuer and audience ok", iss, hmac(claims("iss", "fitmate-api", "aud", "fitmate-app")), "", alice, false},
		{"audience in a list", iss, hmac(claims("iss", "fitmate-api", "aud", []string{"other", "fitmate-app"})), "", alice, false},
		{"wrong issuer", iss, hmac(claims("iss", "someone-else", "aud", "fitmate-app")), CodeTokenClaims, "", false},
		{"missing issuer", iss, hmac(claims("aud", "fitmate-app")), CodeTokenClaims, "", false},
		{"wrong audience", iss, hmac(claims("iss", "fitmate-api", "aud", "admin-console")), CodeTokenClaims, "", false},
		{"issuer not checked when not configured", hs, hmac(claims("iss", "anyone", "aud", "anything")), "", alice, false},

		{"user id from userId when sub is absent", hs, hmac(claims("sub", nil, "userId", "u-2")), "", "u-2", false},
		{"user id from id when sub and userId are absent", hs, hmac(claims("sub", nil, "id", "u-3")), "", "u-3", false},
		{"sub wins over userId", hs, hmac(claims("userId", "u-2")), "", alice, false},
		{"configured claim", custom, hmac(claims("memberId", "m-1")), "", "m-1", false},
		{"configured claim absent falls back to userId", custom, hmac(claims("sub", nil, "userId", "u-2")), "", "u-2", false},
		{"numeric id", hs, hmac(claims("sub", nil, "id", 42)), "", "42", false},
		{"numeric id beyond 2^53", hs, hmac(claims("sub", nil, "userId", int64(9007199254740993))), "", "9007199254740993", false},
		{"fractional id refused", hs, hmac(claims("sub", nil, "id", 1.5)), CodeTokenClaims, "", false},
		{"no user claim", hs, hmac(claims("sub", nil)), CodeTokenClaims, "", false},
		{"empty sub", hs, hmac(claims("sub", "")), CodeTokenClaims, "", false},
		{"object sub", hs, hmac(claims("sub", map[string]any{"id": 1})), CodeTokenClaims, "", false},
		{"overlong user id", hs, hmac(claims("sub", strings.Repeat("u", 129))), CodeTokenClaims, "", false},

		{"role admin", hs, hmac(claims("role", "admin")), "", alice, true},
		{"role ADMIN", hs, hmac(claims("role", "ADMIN")), "", alice, true},
		{"role user", hs, hmac(claims("role", "user")), "", alice, false},
		{"role administrator is not admin", hs, hmac(claims("role", "administrator")), "", alice, false},
		{"roles list", hs, hmac(claims("roles", []string{"user", "Admin"})), "", alice, true},
		{"Spring ROLE_ADMIN", hs, hmac(claims("roles", []string{"ROLE_USER", "ROLE_ADMIN"})), "", alice, true},
		{"Spring authorities", hs, hmac(claims("authorities", []map[string]string{{"authority": "ROLE_ADMIN"}})), "", alice, true},
		{"space-separated roles", hs, hmac(claims("role", "user admin")), "", alice, true},
		{"roles without admin", hs, hmac(claims("roles", []string{"ROLE_USER"})), "", alice, false},
		{"numeric role", hs, hmac(claims("role", 1)), "", alice, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewVerifier(tt.opts).Verify(tt.token(t))
			if tt.wantCode != "" {
				if err == nil {
					t.Fatalf("accepted as %+v; want %s", p, tt.wantCode)
				}
				if got := commserver.ErrorCode(err); got != tt.wantCode {
					t.Fatalf("code %s (%v); want %s", got, err, tt.wantCode)
				}
				if msg := commserver.ErrorMessage(err); msg == "" || msg == "internal error" {
					t.Fatalf("message %q does not say why", msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if p.UserID != tt.wantUser || p.Admin != tt.wantAdmin {
				t.Fatalf("principal %+v; want user %q admin %v", p, tt.wantUser, tt.wantAdmin)
			}
			if p.ExpiresAt.IsZero() {
				t.Fatal("ExpiresAt not set")
			}
		})
	}
}

// The refusal never echoes the token: messages reach clients and logs.
func TestVerifyErrorsDoNotEchoTheToken(t *testing.T) {
	v := NewVerifier(VerifierOptions{Secret: []byte(testSecret), Now: func() time.Time { return now }})
	for _, tok := range []string{
		sign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef0"), claims()),
		sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims("exp", now.Add(-time.Hour).Unix())),
		"gArbAgE1.gArbAgE2.gArbAgE3",
	} {
		_, err := v.Verify(tok)
		if err == nil {
			t.Fatalf("accepted %q", tok)
		}
		if strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), strings.Split(tok, ".")[1]) {
			t.Fatalf("error echoes the token: %v", err)
		}
		var ce *commserver.Error
		if !errors.As(err, &ce) {
			t.Fatalf("error %T is not a *commserver.Error", err)
		}
	}
}

func TestExpiresAtIsTheTokensExp(t *testing.T) {
	v := NewVerifier(VerifierOptions{Secret: []byte(testSecret), Now: func() time.Time { return now }})
	exp := now.Add(90 * time.Second).Truncate(time.Second)
	p, err := v.Verify(sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims("exp", exp.Unix())))
	if err != nil {
		t.Fatal(err)
	}
	if !p.ExpiresAt.Equal(exp) {
		t.Fatalf("ExpiresAt %v, want %v", p.ExpiresAt, exp)
	}
}

func TestBearer(t *testing.T) {
	tests := []struct{ header, want string }{
		{"Bearer abc", "abc"},
		{"bearer abc", "abc"},
		{"BEARER  abc ", "abc"},
		{"Bearer ", ""},
		{"Basic abc", ""},
		{"abc", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := bearer(tt.header); got != tt.want {
			t.Errorf("bearer(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}

func TestAPIKeyMatches(t *testing.T) {
	tests := []struct {
		presented, configured string
		want                  bool
	}{
		{"service-key-0123456789", "service-key-0123456789", true},
		{"service-key-012345678", "service-key-0123456789", false},
		{"service-key-01234567890", "service-key-0123456789", false},
		{"", "service-key-0123456789", false},
		{"", "", false}, // an unset key matches nothing, not the empty header
		{"anything", "", false},
	}
	for _, tt := range tests {
		if got := apiKeyMatches(tt.presented, tt.configured); got != tt.want {
			t.Errorf("apiKeyMatches(%q, %q) = %v", tt.presented, tt.configured, got)
		}
	}
}
