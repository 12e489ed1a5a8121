//go:build failpoint

package chat

import (
	"os"
	"syscall"
)

// beforePublish kills the process, as a crashed pod, when a stored message
// whose text is FAILPOINT_KILL_BEFORE_PUBLISH is about to be published: the
// moment between write and broadcast that the outbox covers. Only binaries
// built with -tags failpoint have it (the end-to-end tests build one).
func beforePublish(m Message) {
	if text := os.Getenv("FAILPOINT_KILL_BEFORE_PUBLISH"); text != "" && m.Text == text {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
