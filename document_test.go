package commserver_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	commserver "github.com/fitmate/commserver"
)

func TestCheckDocument(t *testing.T) {
	deep := func(levels int) map[string]any { // {"k": {"k": ... {}}}
		var m map[string]any
		if err := json.Unmarshal([]byte(strings.Repeat(`{"k":`, levels-1)+"{}"+strings.Repeat("}", levels-1)), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name string
		doc  map[string]any
		ok   bool
	}{
		{"nil", nil, true},
		{"flat", map[string]any{"width": 640.0, "name": "a"}, true},
		{"unicode and spaces", map[string]any{"사진 크기": 1.0, "a b": "c"}, true},
		{"dollar inside", map[string]any{"price$": 1.0}, true},
		{"16 levels", deep(16), true},
		{"17 levels", deep(17), false},
		{"array depth counts", map[string]any{"a": []any{[]any{deep(15)}}}, false},
		{"$ key", map[string]any{"$gt": ""}, false},
		{"dotted key", map[string]any{"a.b": 1.0}, false},
		{"empty key", map[string]any{"": 1.0}, false},
		{"NUL in key", map[string]any{"a\x00": 1.0}, false},
		{"$ key nested in an array", map[string]any{"list": []any{1.0, map[string]any{"$set": 1.0}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := commserver.CheckDocument("metadata", tt.doc)
			if tt.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ce *commserver.Error
			if !errors.As(err, &ce) || ce.Code != commserver.CodeInvalid || ce.Field != "metadata" || ce.Message == "" {
				t.Fatalf("err = %v, want INVALID_ARGUMENT on metadata", err)
			}
		})
	}
}
