package gateway

import (
	"fmt"

	commserver "github.com/fitmate/commserver"
)

// payload is an event's first argument: a JSON object, read field by field
// with errors that name the field and the type it should have.
type payload map[string]any

// payloadOf reads the event's payload object. No payload (or null) is an
// empty object; anything else that is not an object is refused.
func payloadOf(args []any) (payload, error) {
	if len(args) == 0 || args[0] == nil {
		return payload{}, nil
	}
	m, ok := args[0].(map[string]any)
	if !ok {
		return nil, commserver.Invalid("", "the event's payload must be a JSON object, got %s", jsonType(args[0]))
	}
	// No event of the contract carries binary data, and a message's
	// metadata is stored as a JSON-shaped document that the app and the
	// NestJS server read: a binary attachment there is refused by name
	// rather than stored in a shape nobody reads.
	for k, v := range m {
		if hasBinary(v) {
			return nil, commserver.Invalid(k, "%s holds binary data; send JSON only", k)
		}
	}
	return payload(m), nil
}

// hasBinary reports whether v is, or holds at any depth, a binary attachment.
func hasBinary(v any) bool {
	switch t := v.(type) {
	case nil, string, bool, float64:
		return false
	case map[string]any:
		for _, e := range t {
			if hasBinary(e) {
				return true
			}
		}
		return false
	case []any:
		for _, e := range t {
			if hasBinary(e) {
				return true
			}
		}
		return false
	case []byte:
		return true
	default:
		return false
	}
}

// str reads a string field. A missing or null field is "" (an error when required).
func (p payload) str(field string, required bool) (string, error) {
	v, ok := p[field]
	if !ok || v == nil {
		if required {
			return "", commserver.Invalid(field, "%s is required", field)
		}
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", commserver.Invalid(field, "%s must be a string, got %s", field, jsonType(v))
	}
	if required && s == "" {
		return "", commserver.Invalid(field, "%s is required", field)
	}
	return s, nil
}

// object reads an optional object field.
func (p payload) object(field string) (map[string]any, error) {
	v, ok := p[field]
	if !ok || v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, commserver.Invalid(field, "%s must be a JSON object, got %s", field, jsonType(v))
	}
	return m, nil
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64, float32, int, int64, uint64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	case []byte:
		return "binary data"
	default:
		return fmt.Sprintf("%T", v)
	}
}
