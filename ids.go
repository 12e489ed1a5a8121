package commserver

// IsObjectID reports whether s is written as a MongoDB ObjectId is: 24
// hexadecimal digits. Chat messages, notifications and SMS log entries all
// have such ids; callers check the shape before asking the store.
func IsObjectID(s string) bool {
	if len(s) != 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
