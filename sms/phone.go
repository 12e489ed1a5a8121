package sms

import (
	"fmt"
	"slices"
	"strings"

	commserver "github.com/fitmate/commserver"
	"github.com/nyaruka/phonenumbers"
)

// CodeCountryNotAllowed refuses a valid number in a country SMS_ALLOWED_COUNTRIES
// does not list. Sending abroad is where SMS pumping fraud makes its money.
const CodeCountryNotAllowed commserver.Code = "SMS_COUNTRY_NOT_ALLOWED"

// maxPhoneInput is the longest phone number input read: E.164 has at most 15
// digits; the rest is room for separators.
const maxPhoneInput = 32

// Phone is a normalized mobile number.
type Phone struct {
	E164   string // +821012345678
	Region string // KR
}

// Numbers normalizes phone numbers as they arrive (010-1234-5678, +82 10 1234
// 5678, +82-10-...) to E.164 and admits only mobile numbers of allowed countries.
type Numbers struct {
	defaultRegion string
	allowed       []string
}

// NewNumbers returns a normalizer: numbers without a country code are read in
// defaultRegion; only numbers of the allowed regions (ISO 3166 codes) pass.
// It fails on a region phonenumbers does not know.
func NewNumbers(defaultRegion string, allowed []string) (*Numbers, error) {
	region := func(r string) (string, error) {
		r = strings.ToUpper(strings.TrimSpace(r))
		if phonenumbers.GetCountryCodeForRegion(r) == 0 {
			return "", fmt.Errorf("sms: %q is not a region code (ISO 3166, such as KR)", r)
		}
		return r, nil
	}
	def, err := region(defaultRegion)
	if err != nil {
		return nil, err
	}
	n := &Numbers{defaultRegion: def}
	for _, a := range allowed {
		r, err := region(a)
		if err != nil {
			return nil, err
		}
		n.allowed = append(n.allowed, r)
	}
	return n, nil
}

// Normalize returns raw as a mobile number in E.164. A missing, malformed,
// non-mobile or invalid number is commserver.ErrInvalid on field; a valid
// number of a country not allowed is CodeCountryNotAllowed on field.
func (n *Numbers) Normalize(field, raw string) (Phone, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return Phone{}, commserver.Invalid(field, "%s is required", field)
	}
	if len(raw) > maxPhoneInput || strings.IndexFunc(raw, notPhoneRune) >= 0 {
		return Phone{}, commserver.Invalid(field, "%s is not a phone number: use digits, spaces, dashes, parentheses and a leading +", field)
	}
	num, err := phonenumbers.Parse(raw, n.defaultRegion)
	if err != nil || !phonenumbers.IsValidNumber(num) || num.GetExtension() != "" {
		return Phone{}, commserver.Invalid(field, "%s is not a valid phone number", field)
	}
	switch phonenumbers.GetNumberType(num) {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE_OR_MOBILE:
	default:
		return Phone{}, commserver.Invalid(field, "%s is not a mobile number", field)
	}
	region := phonenumbers.GetRegionCodeForNumber(num)
	if !slices.Contains(n.allowed, region) {
		return Phone{}, &commserver.Error{Code: CodeCountryNotAllowed, Field: field,
			Message: "SMS to numbers in " + region + " is not enabled on this server"}
	}
	return Phone{E164: phonenumbers.Format(num, phonenumbers.E164), Region: region}, nil
}

func notPhoneRune(r rune) bool {
	switch {
	case r >= '0' && r <= '9':
		return false
	case r == '+', r == '-', r == ' ', r == '(', r == ')', r == '.':
		return false
	}
	return true
}

// maskPhone shows a number in application logs without identifying it:
// +8210****5678.
func maskPhone(e164 string) string {
	if len(e164) < 9 {
		return "****"
	}
	return e164[:5] + "****" + e164[len(e164)-4:]
}
