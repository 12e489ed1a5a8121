package commserver

// Truncate shortens s to at most n characters, marking the cut with "…".
// Text a caller sent that is echoed back (an error message quoting it) or
// sent on (an SMS) goes through it, so its size is ours to choose.
func Truncate(s string, n int) string {
	if len(s) <= n { // n bytes hold at most n characters
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
