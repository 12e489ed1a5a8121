//go:build !failpoint

package chat

// beforePublish is a failpoint of test builds (failpoint_on.go); the product does nothing here.
func beforePublish(Message) {}
