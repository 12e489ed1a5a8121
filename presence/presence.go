// Package presence tracks which users have sockets open, on every pod. The
// gateway records each socket's connect and disconnect; chat and notify ask
// who is online.
//
// Tracker is the cluster-wide presence: one code path over a Store, either
// MemoryStore (one instance) or cluster.PresenceStore (Redis, many pods). It
// announces userOnline on a user's first socket anywhere and userOffline
// after a grace past their last one anywhere, each once across pods, and
// survives pods that die without a goodbye and a Redis that goes away.
package presence
