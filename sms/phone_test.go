package sms_test

import (
	"errors"
	"testing"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/sms"
)

func TestNormalize(t *testing.T) {
	kr := mustNumbers(t, "KR", "KR")
	krUS := mustNumbers(t, "kr", "kr", "US")
	tests := []struct {
		name    string
		numbers *sms.Numbers
		in      string
		want    string
		code    commserver.Code
	}{
		{"seed's dashed local", kr, "010-1234-5678", "+821012345678", ""},
		{"local digits", kr, "01012345678", "+821012345678", ""},
		{"spaces and parentheses", kr, "(010) 1234 5678", "+821012345678", ""},
		{"international", kr, "+82 10-1234-5678", "+821012345678", ""},
		{"seed's own +82-10 format", kr, "+82-10-1234-5678", "+821012345678", ""},
		{"E.164 already", kr, "+821099998888", "+821099998888", ""},
		{"padded", kr, "  010-1234-5678 ", "+821012345678", ""},
		{"empty", kr, "", "", commserver.CodeInvalid},
		{"blank", kr, "   ", "", commserver.CodeInvalid},
		{"letters", kr, "call 010-1234-5678", "", commserver.CodeInvalid},
		{"too short", kr, "010-1234", "", commserver.CodeInvalid},
		{"too long", kr, "010-1234-5678-1234-5678-1234-5678-99", "", commserver.CodeInvalid},
		{"Seoul landline", kr, "02-312-3456", "", commserver.CodeInvalid},
		{"KR toll free", kr, "080-123-4567", "", commserver.CodeInvalid},
		{"extension", kr, "010-1234-5678 ext 5", "", commserver.CodeInvalid},
		{"US mobile not allowed", kr, "+1 201-555-0123", "", sms.CodeCountryNotAllowed},
		{"UK mobile not allowed", kr, "+44 7400 123456", "", sms.CodeCountryNotAllowed},
		{"US allowed when listed", krUS, "+1 201-555-0123", "+12015550123", ""},
		{"KR still allowed with US", krUS, "010-1234-5678", "+821012345678", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.numbers.Normalize("phoneNumber", tt.in)
			if tt.code == "" {
				if err != nil || got.E164 != tt.want {
					t.Fatalf("Normalize(%q) = %+v, %v; want %s", tt.in, got, err, tt.want)
				}
				return
			}
			var ce *commserver.Error
			if !errors.As(err, &ce) || ce.Code != tt.code || ce.Field != "phoneNumber" {
				t.Fatalf("Normalize(%q) = %+v, %v; want code %s on phoneNumber", tt.in, got, err, tt.code)
			}
		})
	}
}

func mustNumbers(t *testing.T, def string, allowed ...string) *sms.Numbers {
	t.Helper()
	n, err := sms.NewNumbers(def, allowed)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNewNumbersRefusesUnknownRegions(t *testing.T) {
	if _, err := sms.NewNumbers("XX", []string{"KR"}); err == nil {
		t.Error("default region XX accepted")
	}
	if _, err := sms.NewNumbers("KR", []string{"KR", "Korea"}); err == nil {
		t.Error("allowed region Korea accepted")
	}
}
