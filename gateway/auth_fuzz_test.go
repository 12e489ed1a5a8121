package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/golang-jwt/jwt/v5"
)

// tokenCodes are the only codes Verify may answer with.
var tokenCodes = map[commserver.Code]bool{CodeTokenMissing: true, CodeTokenTooLong: true, CodeTokenMalformed: true,
	CodeTokenAlgorithm: true, CodeTokenSignature: true, CodeTokenExpired: true, CodeTokenNotYetValid: true, CodeTokenClaims: true}

func fuzzVerifier() *Verifier {
	return NewVerifier(VerifierOptions{Secret: []byte(testSecret), PublicKey: &ecKey.PublicKey, MaxBytes: 8192,
		Now: func() time.Time { return now }})
}

// checkVerified holds what Verify promises for any input: a token code and
// a message that does not quote the token, or a user id of the right shape.
func checkVerified(t *testing.T, token string, p Principal, err error) {
	t.Helper()
	if err != nil {
		var ce *commserver.Error
		if !errors.As(err, &ce) || !tokenCodes[ce.Code] {
			t.Fatalf("Verify(%q): error %v is not a token error", token, err)
		}
		if tok := strings.TrimSpace(token); len(tok) >= 16 && strings.Contains(ce.Message, tok) {
			t.Fatalf("Verify: message %q echoes the token", ce.Message)
		}
		return
	}
	if p.UserID == "" || len(p.UserID) > maxUserIDLength || strings.TrimSpace(p.UserID) != p.UserID {
		t.Fatalf("Verify(%q): accepted user id %q", token, p.UserID)
	}
	if p.ExpiresAt.IsZero() {
		t.Fatalf("Verify(%q): accepted a token without exp", token)
	}
}

// FuzzVerify feeds the handshake's token parsing (the Authorization header's
// Bearer form, then the JWT checks) arbitrary text.
func FuzzVerify(f *testing.F) {
	v := fuzzVerifier()
	good, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims()).SignedString([]byte(testSecret))
	es, _ := jwt.NewWithClaims(jwt.SigningMethodES256, claims("roles", []any{"user", "ADMIN"})).SignedString(ecKey)
	for _, s := range []string{"", "Bearer ", "Bearer " + good, "bearer  " + es, good, es, unsigned(claims()),
		"a.b.c", "eyJhbGciOiJIUzI1NiJ9..", strings.Repeat("x", 9000), good[:len(good)-3] + "abc",
		"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		for _, tok := range []string{header, bearer(header)} {
			p, err := v.Verify(tok)
			checkVerified(t, tok, p, err)
		}
	})
}

// FuzzVerifyClaims signs arbitrary claims with the right key, so what the
// verifier reads after the signature (the user id, exp/nbf/iat, roles)
// meets any JSON a backend could put there.
func FuzzVerifyClaims(f *testing.F) {
	v := fuzzVerifier()
	for _, s := range []string{
		`{"sub":"u1","exp":1740834000}`,
		`{"sub":"u1","exp":1740834000,"roles":["ADMIN"]}`,
		`{"userId":12345678901234567890,"exp":1740834000}`,
		`{"id":-1,"exp":"soon"}`,
		`{"sub":{"a":1},"exp":1740834000,"authorities":[{"authority":"ROLE_ADMIN"}]}`,
		`{"sub":"  ","exp":1e300,"nbf":-1e300}`,
		`[]`, `null`, `{"exp":1740834000}`,
	} {
		f.Add(s)
	}
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	f.Fuzz(func(t *testing.T, payload string) {
		unsignedPart := header + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
		mac := hmac.New(sha256.New, []byte(testSecret))
		mac.Write([]byte(unsignedPart))
		tok := unsignedPart + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
		p, err := v.Verify(tok)
		checkVerified(t, tok, p, err)
	})
}
