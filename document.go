package commserver

import (
	"fmt"
	"strings"
)

// MaxDocumentDepth is how deeply a free-form JSON object from a caller (a
// message's metadata, a notification's data) may nest. MongoDB refuses
// documents nested past 100 levels; nothing we store needs more than a few.
const MaxDocumentDepth = 16

// CheckDocument checks a free-form JSON object a caller wants stored as a
// MongoDB subdocument: it nests at most MaxDocumentDepth levels, and every key
// is non-empty, does not start with $ and holds no . or NUL (MongoDB refuses
// or misreads such keys). Its error is INVALID_ARGUMENT on field, saying where.
// REST (notification data) and Socket.IO (message metadata) share this check.
func CheckDocument(field string, doc map[string]any) error {
	return checkDocument(field, field, doc, 1)
}

func checkDocument(field, path string, v any, depth int) error {
	if depth > MaxDocumentDepth {
		return Invalid(field, "%s nests deeper than %d levels at %s", field, MaxDocumentDepth, path)
	}
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if k == "" || strings.HasPrefix(k, "$") || strings.ContainsAny(k, ".\x00") {
				return Invalid(field, "%s key %q at %s is not allowed: keys must be non-empty, not start with $ and hold no . or NUL", field, k, path)
			}
			if err := checkDocument(field, path+"."+k, e, depth+1); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range t {
			if err := checkDocument(field, fmt.Sprintf("%s[%d]", path, i), e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
