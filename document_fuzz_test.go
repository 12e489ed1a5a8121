package commserver_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	commserver "github.com/fitmate/commserver"
)

// FuzzCheckDocument feeds any JSON object to the check that guards every
// free-form object a caller has stored (message metadata, notification
// data): it answers nil exactly when every key is non-empty with no leading
// $, no . and no NUL and nothing nests past MaxDocumentDepth, and otherwise
// INVALID_ARGUMENT on the field with a readable message.
//
//	go test . -run '^$' -fuzz FuzzCheckDocument -fuzztime 5m
//
// The corpus is testdata/fuzz/FuzzCheckDocument.
func FuzzCheckDocument(f *testing.F) {
	for _, seed := range []string{`{}`, `{"a":1}`, `{"$a":1}`, `{"a.b":1}`, `{"a":[{"b":{"$c":1}}]}`, `{"":1}`,
		`{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{"j":{"k":{"l":{"m":{"n":{"o":{"p":1}}}}}}}}}}}}}}}}`,
		`{"a\u0000":1}`, `{"가":"나"}`, `{"a$":{"b":[[[[]]]]}}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var doc map[string]any
		if json.Unmarshal(data, &doc) != nil {
			return
		}
		err := commserver.CheckDocument("metadata", doc)
		depth, bad := walk(doc, 1)
		ok := bad == nil && depth <= commserver.MaxDocumentDepth
		if err == nil {
			if !ok {
				t.Fatalf("accepted %s (depth %d, key %v)", data, depth, bad)
			}
			return
		}
		var ce *commserver.Error
		if !errors.As(err, &ce) || ce.Code != commserver.CodeInvalid || ce.Field != "metadata" || !utf8.ValidString(ce.Message) {
			t.Fatalf("error %v, want INVALID_ARGUMENT on metadata", err)
		}
		if ok {
			t.Fatalf("refused %s: %v", data, err)
		}
	})
}

// walk returns the deepest level of v and the first key MongoDB would refuse (nil if none).
func walk(v any, depth int) (int, *string) {
	deepest := depth
	var children []any
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if k == "" || strings.HasPrefix(k, "$") || strings.ContainsAny(k, ".\x00") {
				return depth, &k
			}
			children = append(children, e)
		}
	case []any:
		children = t
	}
	for _, e := range children {
		d, bad := walk(e, depth+1)
		if bad != nil {
			return d, bad
		}
		deepest = max(deepest, d)
	}
	return deepest, nil
}
