//go:build failpoint

package store

import (
	"os"
	"sync"
	"time"
)

var answeredLate sync.Once

// answerLate makes the store's answer to a batch holding a message whose
// text is FAILPOINT_ANSWER_LATE (the first such batch) arrive after the deadline (the store's
// timeout and half a second): the batch is stored, its senders were already
// answered STORAGE_UNAVAILABLE. Only binaries built with -tags failpoint have
// it (the end-to-end tests build one).
func answerLate(timeout time.Duration, docs []any) {
	text := os.Getenv("FAILPOINT_ANSWER_LATE")
	if text == "" {
		return
	}
	for _, d := range docs {
		if m, ok := d.(messageDoc); ok && m.Message == text {
			answeredLate.Do(func() { time.Sleep(timeout + 500*time.Millisecond) })
			return
		}
	}
}
