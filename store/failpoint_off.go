//go:build !failpoint

package store

import "time"

// answerLate is a failpoint of test builds (failpoint_on.go); the product does nothing here.
func answerLate(time.Duration, []any) {}
