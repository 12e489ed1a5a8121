package gateway

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/chat"
	"github.com/fitmate/commserver/gateway/socketio"
	"github.com/golang-jwt/jwt/v5"
)

// Token error codes: the stable code in a refused handshake's connect_error
// data and in a 401's JSON error.
const (
	CodeTokenMissing             commserver.Code = "TOKEN_MISSING"
	CodeTokenTooLong             commserver.Code = "TOKEN_TOO_LONG"
	CodeTokenMalformed           commserver.Code = "TOKEN_MALFORMED"
	CodeTokenAlgorithm           commserver.Code = "TOKEN_ALGORITHM_NOT_ALLOWED"
	CodeTokenSignature           commserver.Code = "TOKEN_SIGNATURE_INVALID"
	CodeTokenExpired             commserver.Code = "TOKEN_EXPIRED"
	CodeTokenNotYetValid         commserver.Code = "TOKEN_NOT_YET_VALID"
	CodeTokenClaims              commserver.Code = "TOKEN_CLAIMS_INVALID"
	CodeAPIKeyInvalid            commserver.Code = "API_KEY_INVALID"
	clockLeeway                                  = 5 * time.Second
	maxUserIDLength                              = 128
	adminRole                                    = "admin"
	springAdminRole                              = "role_admin"
	tokenTypeBearerPrefix                        = "bearer "
	apiKeyHeader                                 = "X-API-Key"
	authorizationHeader                          = "Authorization"
	maxRolesInspected                            = 64
	socketTokenField                             = "token"
	expiredWhileConnectedMessage                 = "your session token expired; reconnect with a new one"
	forbiddenAdminMessage                        = "관리자 권한이 없습니다."
)

// Principal is a verified caller.
type Principal struct {
	chat.Identity
	ExpiresAt time.Time // zero for the service credential
	Service   bool      // authenticated with SERVICE_API_KEY
}

// Verifier checks the main backend's JWTs. Each algorithm is bound to its own
// key: HS256 only ever uses JWT_SECRET, RS256 and ES256 only the public key,
// so a token signed with the public key as an HMAC secret (algorithm
// confusion) and alg "none" are refused.
type Verifier struct {
	secret    []byte
	public    crypto.PublicKey
	methods   []string
	userClaim string
	maxBytes  int
	parser    *jwt.Parser
}

// VerifierOptions configure NewVerifier.
type VerifierOptions struct {
	Secret    []byte           // HS256 key, or nil
	PublicKey crypto.PublicKey // *rsa.PublicKey (RS256) or *ecdsa.PublicKey (ES256), or nil
	Issuer    string           // required iss, when set
	Audience  string           // required aud, when set
	UserClaim string           // claim holding the user id (default sub; then userId, id)
	MaxBytes  int              // longest token accepted
	Now       func() time.Time // clock, for tests
}

// NewVerifier returns a Verifier for the configured keys.
func NewVerifier(o VerifierOptions) *Verifier {
	v := &Verifier{secret: o.Secret, public: o.PublicKey, userClaim: o.UserClaim, maxBytes: o.MaxBytes}
	if v.userClaim == "" {
		v.userClaim = "sub"
	}
	if v.maxBytes == 0 {
		v.maxBytes = 8192
	}
	if o.Secret != nil {
		v.methods = append(v.methods, jwt.SigningMethodHS256.Alg())
	}
	switch o.PublicKey.(type) {
	case *rsa.PublicKey:
		v.methods = append(v.methods, jwt.SigningMethodRS256.Alg())
	case *ecdsa.PublicKey:
		v.methods = append(v.methods, jwt.SigningMethodES256.Alg())
	}
	// WithJSONNumber: numeric user ids (a Spring backend's longs) must not
	// pass through float64, which rounds ids above 2^53 onto other users' ids.
	opts := []jwt.ParserOption{jwt.WithValidMethods(v.methods), jwt.WithExpirationRequired(), jwt.WithLeeway(clockLeeway),
		jwt.WithJSONNumber()}
	if o.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(o.Issuer))
	}
	if o.Audience != "" {
		opts = append(opts, jwt.WithAudience(o.Audience))
	}
	if o.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(o.Now))
	}
	v.parser = jwt.NewParser(opts...)
	return v
}

func tokenError(code commserver.Code, format string, args ...any) *commserver.Error {
	return &commserver.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Verify checks a token and returns who it names. Its errors are
// *commserver.Error with one of the Token codes; their messages say why and
// never echo the token.
func (v *Verifier) Verify(token string) (Principal, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return Principal{}, tokenError(CodeTokenMissing, "authentication token missing: send auth: { token }")
	}
	if len(token) > v.maxBytes {
		return Principal{}, tokenError(CodeTokenTooLong, "authentication token longer than %d bytes", v.maxBytes)
	}
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, v.key)
	if err != nil {
		return Principal{}, v.classify(err)
	}
	uid, err := v.userID(claims)
	if err != nil {
		return Principal{}, err
	}
	exp, _ := claims.GetExpirationTime()
	p := Principal{Identity: chat.Identity{UserID: uid, Admin: claimsAdmin(claims)}}
	if exp != nil {
		p.ExpiresAt = exp.Time
	}
	return p, nil
}

// key picks the key for the token's algorithm; the parser has already
// refused any algorithm not configured.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if v.secret != nil {
			return v.secret, nil
		}
	case *jwt.SigningMethodRSA:
		if k, ok := v.public.(*rsa.PublicKey); ok {
			return k, nil
		}
	case *jwt.SigningMethodECDSA:
		if k, ok := v.public.(*ecdsa.PublicKey); ok {
			return k, nil
		}
	}
	return nil, jwt.ErrTokenSignatureInvalid
}

func (v *Verifier) classify(err error) *commserver.Error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return tokenError(CodeTokenMalformed, "authentication token is not a well-formed JWT")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && strings.Contains(err.Error(), "signing method"):
		return tokenError(CodeTokenAlgorithm, "authentication token algorithm not allowed (accepted: %s)", strings.Join(v.methods, ", "))
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return tokenError(CodeTokenAlgorithm, "authentication token algorithm not allowed (accepted: %s)", strings.Join(v.methods, ", "))
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return tokenError(CodeTokenSignature, "authentication token signature is invalid")
	case errors.Is(err, jwt.ErrTokenExpired):
		return tokenError(CodeTokenExpired, "authentication token has expired")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return tokenError(CodeTokenClaims, "authentication token has no exp claim")
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return tokenError(CodeTokenNotYetValid, "authentication token is not valid yet")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return tokenError(CodeTokenClaims, "authentication token has the wrong issuer")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return tokenError(CodeTokenClaims, "authentication token has the wrong audience")
	default:
		return tokenError(CodeTokenClaims, "authentication token claims are invalid")
	}
}

// userID reads the configured claim, then userId, then id. Whole numbers (a
// Spring backend's long ids) are accepted as their exact decimal text.
func (v *Verifier) userID(c jwt.MapClaims) (string, error) {
	for _, name := range []string{v.userClaim, "userId", "id"} {
		raw, ok := c[name]
		if !ok {
			continue
		}
		var id string
		switch t := raw.(type) {
		case string:
			id = strings.TrimSpace(t)
		case json.Number:
			if n, err := strconv.ParseInt(t.String(), 10, 64); err == nil {
				id = strconv.FormatInt(n, 10)
			}
		}
		if id == "" || len(id) > maxUserIDLength {
			return "", tokenError(CodeTokenClaims, "authentication token claim %q is not a user id", name)
		}
		return id, nil
	}
	return "", tokenError(CodeTokenClaims, "authentication token names no user (claims %s, userId, id)", v.userClaim)
}

// claimsAdmin reports whether a role or roles claim contains admin.
func claimsAdmin(c jwt.MapClaims) bool {
	for _, name := range []string{"role", "roles", "authorities"} {
		if isAdminRole(c[name]) {
			return true
		}
	}
	return false
}

func isAdminRole(v any) bool {
	switch t := v.(type) {
	case string:
		for _, r := range strings.FieldsFunc(t, func(r rune) bool { return r == ',' || r == ' ' }) {
			r = strings.ToLower(r)
			if r == adminRole || r == springAdminRole {
				return true
			}
		}
	case []any:
		for i, e := range t {
			if i >= maxRolesInspected {
				break
			}
			if isAdminRole(e) {
				return true
			}
		}
	case map[string]any: // Spring's {"authority": "ROLE_ADMIN"}
		return isAdminRole(t["authority"])
	}
	return false
}

// bearer extracts the token of an "Authorization: Bearer <jwt>" header.
func bearer(header string) string {
	if len(header) > len(tokenTypeBearerPrefix) && strings.EqualFold(header[:len(tokenTypeBearerPrefix)], tokenTypeBearerPrefix) {
		return strings.TrimSpace(header[len(tokenTypeBearerPrefix):])
	}
	return ""
}

// apiKeyMatches compares a presented service key with the configured one in
// constant time. An unconfigured key matches nothing.
func apiKeyMatches(presented, configured string) bool {
	if configured == "" || presented == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(presented), []byte(configured)) == 1
}

// authenticate is the handshake middleware: a socket without a valid token
// never connects. Its connect_error says why, with a stable code in data.
// It runs on recovered connections too: a session is never restored on an
// expired or forged token.
func (h *Hub) authenticate(s *socketio.Socket) error {
	token := ""
	auth := s.Handshake().Auth
	if t, ok := auth[socketTokenField].(string); ok {
		token = t
	} else if _, present := auth[socketTokenField]; present {
		return h.refuse(tokenError(CodeTokenMalformed, "auth.token must be a string"))
	}
	if token == "" {
		token = bearer(s.Header(authorizationHeader))
	}
	p, err := h.deps.Verifier.Verify(token)
	if err != nil {
		return h.refuse(err)
	}
	if s.Recovered() && !slices.Contains(s.Rooms(), userRoom(p.UserID)) {
		// The session was another user's (an app that swapped the token
		// on a reconnecting socket): its rooms and missed events are not
		// this user's to have. The socket goes on as a new session.
		s.DiscardRecovery()
	}
	h.deps.Metrics.handshake("ok")
	s.SetData(&session{Principal: p})
	return nil
}

// refuse answers a handshake with connect_error { message, data: { code } }.
func (h *Hub) refuse(err error) error {
	code := commserver.ErrorCode(err)
	h.deps.Metrics.handshake(code)
	h.log.Debug("handshake refused", "code", code, "reason", commserver.ErrorMessage(err))
	return &socketio.ConnectError{Message: commserver.ErrorMessage(err), Data: map[string]any{"code": string(code)}}
}
