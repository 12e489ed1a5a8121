package presence

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Op is one socket coming or going on a pod.
type Op struct {
	Connect  bool // true: the socket connected; false: it disconnected
	UserID   string
	SocketID string
}

// Change is a user's presence changing cluster-wide: what the gateway
// announces as userOnline { userId, socketId } or userOffline { userId }.
type Change struct {
	UserID   string
	Online   bool
	SocketID string // the socket that brought the user online (Online only)
}

// Store is the shared record of every pod's sockets that Trackers keep up to
// date: MemoryStore for one instance, cluster.PresenceStore (Redis) for many.
// Each method is atomic, so of several pods racing, exactly one is told to
// announce a given change. Every method returns the context's error or the
// backend's (a Redis error) and nothing else.
//
// The semantics every implementation keeps (package presencetest checks them):
//   - a user is online from their first socket anywhere until the grace after
//     their last socket anywhere has passed without a new one;
//   - a pod whose lease (renewed by Apply and Heartbeat) expired is dead:
//     Sweep with reap removes its sockets, and its users with no other socket
//     are announced offline at the next Sweep (the lease was their grace).
type Store interface {
	// Apply records pod's ops in order and renews its lease for ttl. It
	// returns the users each op brought online (a user's first socket while
	// offline), and, with grace 0, the users whose last socket it removed.
	// A last socket removed with grace > 0 starts the user's grace instead.
	Apply(ctx context.Context, pod string, ops []Op, ttl, grace time.Duration) ([]Change, error)
	// Heartbeat renews pod's lease for ttl and returns how many sockets the
	// store holds for it (a pod compares it with its own count to notice a
	// record lost or reaped while it was cut off).
	Heartbeat(ctx context.Context, pod string, ttl time.Duration) (sockets int, err error)
	// Sockets returns the sockets the store holds for pod: socket id → user id.
	Sockets(ctx context.Context, pod string) (map[string]string, error)
	// Sweep announces the users whose grace is over: each such user is
	// returned by exactly one Sweep across all pods, at most limit per call.
	// With reap it first removes up to limit sockets of pods whose lease
	// expired. more reports that work remains for another call.
	Sweep(ctx context.Context, reap bool, limit int) (offline []string, more bool, err error)
	// Leave drops pod's lease if the store holds no socket of it (a pod
	// leaving after its sockets disconnected); otherwise the lease expires.
	Leave(ctx context.Context, pod string) error
	// Online reports, for each user, whether they have a socket anywhere
	// now. A user within the grace after their last socket is not online
	// here, though their userOffline is not announced yet: what they miss
	// meanwhile is notified.
	Online(ctx context.Context, userIDs []string) (map[string]bool, error)
}

// MemoryStore is a Store in this process's memory: one instance, or several
// Trackers in one test process standing in for pods.
type MemoryStore struct {
	mu         sync.Mutex
	now        func() time.Time
	leases     map[string]time.Time         // pod → lease end
	podSockets map[string]map[string]string // pod → socket → user
	users      map[string]map[string]string // user → socket → pod
	online     map[string]bool              // users announced online and not yet offline
	grace      map[string]time.Time         // user → end of grace (no socket left)
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty in-process Store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{now: time.Now, leases: map[string]time.Time{}, podSockets: map[string]map[string]string{},
		users: map[string]map[string]string{}, online: map[string]bool{}, grace: map[string]time.Time{}}
}

// Apply implements Store.
func (m *MemoryStore) Apply(ctx context.Context, pod string, ops []Op, ttl, grace time.Duration) ([]Change, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.leases[pod] = now.Add(ttl)
	var out []Change
	for _, op := range ops {
		if op.Connect {
			put(m.users, op.UserID, op.SocketID, pod)
			put(m.podSockets, pod, op.SocketID, op.UserID)
			delete(m.grace, op.UserID)
			if !m.online[op.UserID] {
				m.online[op.UserID] = true
				out = append(out, Change{UserID: op.UserID, Online: true, SocketID: op.SocketID})
			}
			continue
		}
		if _, had := m.users[op.UserID][op.SocketID]; !had {
			continue
		}
		drop(m.users, op.UserID, op.SocketID)
		drop(m.podSockets, pod, op.SocketID)
		if len(m.users[op.UserID]) > 0 || !m.online[op.UserID] {
			continue
		}
		if grace <= 0 {
			delete(m.online, op.UserID)
			out = append(out, Change{UserID: op.UserID})
		} else {
			m.grace[op.UserID] = now.Add(grace)
		}
	}
	return out, nil
}

// Heartbeat implements Store.
func (m *MemoryStore) Heartbeat(ctx context.Context, pod string, ttl time.Duration) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leases[pod] = m.now().Add(ttl)
	return len(m.podSockets[pod]), nil
}

// Sockets implements Store.
func (m *MemoryStore) Sockets(ctx context.Context, pod string) (map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.podSockets[pod]))
	for s, u := range m.podSockets[pod] {
		out[s] = u
	}
	return out, nil
}

// Sweep implements Store.
func (m *MemoryStore) Sweep(ctx context.Context, reap bool, limit int) ([]string, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	more := false
	if reap {
		budget := limit
		for pod, end := range m.leases {
			if !end.Before(now) {
				continue
			}
			for s, u := range m.podSockets[pod] {
				if budget == 0 {
					more = true
					break
				}
				budget--
				drop(m.podSockets, pod, s)
				drop(m.users, u, s)
				if len(m.users[u]) == 0 && m.online[u] {
					m.grace[u] = now // the lease was the wait
				}
			}
			if len(m.podSockets[pod]) == 0 {
				delete(m.leases, pod)
			}
		}
	}
	var due []string
	for u, end := range m.grace {
		if !end.After(now) {
			due = append(due, u)
		}
	}
	sort.Slice(due, func(i, j int) bool { return m.grace[due[i]].Before(m.grace[due[j]]) })
	if len(due) > limit {
		due, more = due[:limit], true
	}
	var offline []string
	for _, u := range due {
		delete(m.grace, u)
		if len(m.users[u]) == 0 && m.online[u] {
			delete(m.online, u)
			offline = append(offline, u)
		}
	}
	return offline, more, nil
}

// Leave implements Store.
func (m *MemoryStore) Leave(ctx context.Context, pod string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.podSockets[pod]) == 0 {
		delete(m.leases, pod)
	}
	return nil
}

// Online implements Store.
func (m *MemoryStore) Online(ctx context.Context, userIDs []string) (map[string]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]bool, len(userIDs))
	for _, u := range userIDs {
		out[u] = len(m.users[u]) > 0
	}
	return out, nil
}

func put(m map[string]map[string]string, k, k2, v string) {
	inner, ok := m[k]
	if !ok {
		inner = map[string]string{}
		m[k] = inner
	}
	inner[k2] = v
}

func drop(m map[string]map[string]string, k, k2 string) {
	inner, ok := m[k]
	if !ok {
		return
	}
	delete(inner, k2)
	if len(inner) == 0 {
		delete(m, k)
	}
}
