package gateway

import (
	"errors"
	"strings"
	"testing"

	commserver "github.com/fitmate/commserver"
)

func TestPayloadOf(t *testing.T) {
	bin := []byte{1, 2, 3} // a binary attachment, as the layer hands it over
	tests := []struct {
		name      string
		args      []any
		wantErr   string // part of the message; empty: accepted
		wantField string
		wantKeys  int
	}{
		{"no arguments", nil, "", "", 0},
		{"null", []any{nil}, "", "", 0},
		{"object", []any{map[string]any{"chatRoomId": "r"}}, "", "", 1},
		{"object with two fields", []any{map[string]any{"chatRoomId": "r", "message": "m"}}, "", "", 2},
		{"extra arguments are ignored", []any{map[string]any{"a": "b"}, "extra", 3.0}, "", "", 1},
		{"string", []any{"room-1"}, "got a string", "", 0},
		{"number", []any{1.0}, "got a number", "", 0},
		{"boolean", []any{true}, "got a boolean", "", 0},
		{"array", []any{[]any{"room-1"}}, "got an array", "", 0},
		{"binary", []any{bin}, "got binary data", "", 0},
		{"binary field", []any{map[string]any{"message": bin}}, "binary data", "message", 0},
		{"binary deep in metadata", []any{map[string]any{"metadata": map[string]any{"a": []any{1.0, map[string]any{"b": bin}}}}}, "binary data", "metadata", 0},
		{"nested JSON is fine", []any{map[string]any{"metadata": map[string]any{"a": []any{1.0, "x", nil, true, map[string]any{}}}}}, "", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := payloadOf(tt.args)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if len(p) != tt.wantKeys {
					t.Fatalf("payload %v, want %d keys", p, tt.wantKeys)
				}
				return
			}
			var ce *commserver.Error
			if !errors.As(err, &ce) || ce.Code != commserver.CodeInvalid {
				t.Fatalf("err = %v, want INVALID_ARGUMENT", err)
			}
			if !strings.Contains(ce.Message, tt.wantErr) || ce.Field != tt.wantField {
				t.Fatalf("err = %q on field %q, want %q on field %q", ce.Message, ce.Field, tt.wantErr, tt.wantField)
			}
		})
	}
}

func TestPayloadFields(t *testing.T) {
	p := payload{
		"room": "r-1", "empty": "", "null": nil, "num": 3.0, "obj": map[string]any{"w": 1.0}, "list": []any{"x"}, "flag": false,
	}
	strTests := []struct {
		field     string
		required  bool
		want      string
		wantErr   string
		wantField string
	}{
		{"room", true, "r-1", "", ""},
		{"room", false, "r-1", "", ""},
		{"missing", false, "", "", ""},
		{"missing", true, "", "missing is required", "missing"},
		{"null", false, "", "", ""},
		{"null", true, "", "null is required", "null"},
		{"empty", false, "", "", ""},
		{"empty", true, "", "empty is required", "empty"},
		{"num", false, "", "num must be a string, got a number", "num"},
		{"obj", true, "", "obj must be a string, got an object", "obj"},
		{"list", true, "", "list must be a string, got an array", "list"},
		{"flag", false, "", "flag must be a string, got a boolean", "flag"},
	}
	for _, tt := range strTests {
		got, err := p.str(tt.field, tt.required)
		if tt.wantErr == "" {
			if err != nil || got != tt.want {
				t.Errorf("str(%q, %v) = %q, %v; want %q", tt.field, tt.required, got, err, tt.want)
			}
			continue
		}
		var ce *commserver.Error
		if !errors.As(err, &ce) || ce.Code != commserver.CodeInvalid || ce.Message != tt.wantErr || ce.Field != tt.wantField {
			t.Errorf("str(%q, %v) err = %v, want %q on %q", tt.field, tt.required, err, tt.wantErr, tt.wantField)
		}
	}

	objTests := []struct {
		field   string
		wantNil bool
		wantErr string
	}{
		{"obj", false, ""},
		{"missing", true, ""},
		{"null", true, ""},
		{"room", true, "room must be a JSON object, got a string"},
		{"list", true, "list must be a JSON object, got an array"},
		{"num", true, "num must be a JSON object, got a number"},
	}
	for _, tt := range objTests {
		got, err := p.object(tt.field)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || commserver.ErrorMessage(err) != tt.wantErr) {
			t.Errorf("object(%q) err = %v, want %q", tt.field, err, tt.wantErr)
		}
		if (got == nil) != tt.wantNil {
			t.Errorf("object(%q) = %v", tt.field, got)
		}
	}
}

func TestAckBodies(t *testing.T) {
	ok := success(map[string]any{"count": 3})
	if ok["ok"] != true || ok["count"] != 3 || len(ok) != 2 {
		t.Errorf("success = %v", ok)
	}
	if empty := success(nil); empty["ok"] != true || len(empty) != 1 {
		t.Errorf("success(nil) = %v", empty)
	}
	tests := []struct {
		err  error
		want map[string]any
	}{
		{commserver.Invalid("message", "message is required"),
			map[string]any{"code": "INVALID_ARGUMENT", "message": "message is required", "field": "message"}},
		{&commserver.Error{Code: commserver.CodeRateLimited, Message: "slow down", RetryAfter: 1500_000_000},
			map[string]any{"code": "RATE_LIMITED", "message": "slow down", "retryAfterMs": int64(1500)}},
		{errors.New("mongo: secret internals at 10.0.0.3"),
			map[string]any{"code": "INTERNAL", "message": "internal error"}},
	}
	for _, tt := range tests {
		f := failure(tt.err)
		e, _ := f["error"].(map[string]any)
		if f["ok"] != false || len(e) != len(tt.want) {
			t.Errorf("failure(%v) = %v, want error %v", tt.err, f, tt.want)
			continue
		}
		for k, v := range tt.want {
			if e[k] != v {
				t.Errorf("failure(%v).error[%s] = %v (%T), want %v", tt.err, k, e[k], e[k], v)
			}
		}
	}
}
