package main

import (
	"errors"

	"github.com/fitmate/commserver/gateway/socketio"
	"github.com/golang-jwt/jwt/v5"
)

// jwtMiddleware refuses a CONNECT without a valid HS256 token in
// auth.token (exp required), with the error codes of the harness's reference server.
func jwtMiddleware(secret []byte) socketio.Middleware {
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	return func(s *socketio.Socket) error {
		tok, _ := s.Handshake().Auth["token"].(string)
		if tok == "" {
			return refused("TOKEN_MISSING")
		}
		claims := jwt.MapClaims{}
		_, err := parser.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return secret, nil })
		switch {
		case err == nil:
			if sub, ok := claims["sub"].(string); ok {
				s.SetData(sub)
			}
			return nil
		case errors.Is(err, jwt.ErrTokenExpired):
			return refused("TOKEN_EXPIRED")
		case errors.Is(err, jwt.ErrTokenSignatureInvalid):
			return refused("TOKEN_SIGNATURE_INVALID")
		case errors.Is(err, jwt.ErrTokenMalformed):
			return refused("TOKEN_MALFORMED")
		}
		return refused("TOKEN_CLAIMS_INVALID")
	}
}

func refused(code string) error {
	return &socketio.ConnectError{Message: "authentication refused", Data: map[string]any{"code": code}}
}
