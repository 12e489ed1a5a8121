package notify

import (
	"encoding/json"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	commserver "github.com/fitmate/commserver"
)

// ValidateID checks that id looks like a notification's id (a MongoDB ObjectId).
func ValidateID(field, id string) error {
	if !commserver.IsObjectID(id) {
		return commserver.Invalid(field, "%s must be a 24-character hexadecimal notification id", field)
	}
	return nil
}

// ValidateUserID checks the shape of a user id: present, at most
// MaxUserIDLength bytes, no spaces or control characters.
func ValidateUserID(field, id string) error {
	switch {
	case id == "":
		return commserver.Invalid(field, "%s is required", field)
	case len(id) > MaxUserIDLength:
		return commserver.Invalid(field, "%s is longer than %d characters", field, MaxUserIDLength)
	case strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return commserver.Invalid(field, "%s may not contain spaces or control characters", field)
	}
	return nil
}

// checkText requires a non-blank text of at most max characters.
func checkText(field, s string, max int) error {
	if strings.TrimSpace(s) == "" {
		return commserver.Invalid(field, "%s is required and may not be blank", field)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return commserver.Invalid(field, "%s is %d characters; the limit is %d", field, n, max)
	}
	return nil
}

// checkData requires data to fit in MaxDataBytes of JSON, nest at most
// commserver.MaxDocumentDepth levels, and have keys MongoDB stores as given.
func checkData(data map[string]any) error {
	if data == nil {
		return nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return commserver.Invalid("data", "data must be a JSON object")
	}
	if len(b) > MaxDataBytes {
		return commserver.Invalid("data", "data is %d bytes as JSON; the limit is %d", len(b), MaxDataBytes)
	}
	return commserver.CheckDocument("data", data)
}

// nameField reads a required text field of a helper's record (exerciseName, goalName).
func nameField(rec map[string]any, field string) (string, error) {
	v, ok := rec[field]
	if !ok || v == nil {
		return "", commserver.Invalid(field, "%s is required", field)
	}
	s, ok := v.(string)
	if !ok {
		return "", commserver.Invalid(field, "%s must be a string", field)
	}
	if err := checkText(field, s, MaxNameLength); err != nil {
		return "", err
	}
	return s, nil
}

// numberField reads a required, non-negative number of a helper's record (duration, calories).
func numberField(rec map[string]any, field string) (float64, error) {
	v, ok := rec[field]
	if !ok || v == nil {
		return 0, commserver.Invalid(field, "%s is required", field)
	}
	var f float64
	switch t := v.(type) {
	case float64:
		f = t
	case float32:
		f = float64(t)
	case int:
		f = float64(t)
	case int32:
		f = float64(t)
	case int64:
		f = float64(t)
	case json.Number:
		var err error
		if f, err = t.Float64(); err != nil {
			return 0, commserver.Invalid(field, "%s must be a number", field)
		}
	default:
		return 0, commserver.Invalid(field, "%s must be a number", field)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e9 {
		return 0, commserver.Invalid(field, "%s must be a number from 0 to 1000000000", field)
	}
	return f, nil
}

// joinOr writes a list as "a, b or c".
func joinOr(list []string) string {
	if len(list) < 2 {
		return strings.Join(list, "")
	}
	return strings.Join(list[:len(list)-1], ", ") + " or " + list[len(list)-1]
}
