package cluster

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/fitmate/commserver/gateway/socketio"
)

// Live sessions: recovery after a pod dies without a goodbye.
//
// The layer persists a session when its socket's connection closes; a pod
// killed with SIGKILL closes nothing, so its clients, reconnecting to
// another pod a moment later, would find no session and start afresh. So
// every pod also keeps, in Redis, the session of each of its connected
// sockets (id, private id, rooms; no Data — the handshake middleware sets
// it anew), marked live and with the pod's id: written shortly after the
// socket connects or changes rooms, rewritten every liveRefresh, with the
// recovery window plus liveRefresh as TTL, so that it outlives a crash by
// at least the window. A clean disconnect overwrites it with the ordinary
// session (recoverable) or deletes it (not recoverable: the client left).
//
// A live session may be restored only once its socket is gone: its pod is
// this one (then the socket is still here, or its goodbye is on its way),
// or its pod answers a probe (it is alive, so the socket's goodbye will
// come) — in both cases the client gets a fresh session, as with Node when
// a client comes back before the server noticed it left. A pod that does
// not answer within probeTimeout is dead: its live sessions are restored.
// Probes are shared by every restore waiting on the same pod and their
// "dead" answer kept a few seconds, so a dead pod's thousand clients cost one.

const (
	liveFlushEvery = 200 * time.Millisecond
	liveFlushMax   = 2000 // session writes queued per flush, at most
	probeTimeout   = time.Second
	probeKeepDead  = 5 * time.Second // an alive answer is not kept: the pod may die the next moment
	probeRoom      = "\x00probe"     // a room nobody is in: every pod answers with nothing
)

// liveRefresh is how often a live session is rewritten.
func (a *Adapters) liveRefresh() time.Duration {
	return max(a.opts.RecoveryWindow/2, 5*time.Second)
}

type liveSessions struct {
	mu        sync.Mutex
	socks     map[string]*liveSock // by private id
	persisted map[string]bool      // private ids whose goodbye PersistSession stored: DelAll deletes nothing
	refreshed time.Time

	probeMu sync.Mutex
	probes  map[string]*podProbe // by pod
}

type liveSock struct {
	s              *socketio.Socket
	dirty, written bool
}

type podProbe struct {
	done  chan struct{}
	alive bool
	at    time.Time
}

func (l *liveSessions) init() {
	l.socks = make(map[string]*liveSock)
	l.persisted = make(map[string]bool)
	l.probes = make(map[string]*podProbe)
	l.refreshed = time.Now()
}

// AddAll implements socketio.Adapter; the socket's live session follows.
func (a *Adapter) AddAll(s *socketio.Socket, rooms []string) {
	a.MemoryAdapter.AddAll(s, rooms)
	a.touch(s)
}

// Del implements socketio.Adapter; the socket's live session follows.
func (a *Adapter) Del(s *socketio.Socket, room string) {
	a.MemoryAdapter.Del(s, room)
	a.touch(s)
}

// DelAll implements socketio.Adapter: the socket is gone; its live session
// is deleted unless PersistSession just replaced it.
func (a *Adapter) DelAll(s *socketio.Socket) {
	a.MemoryAdapter.DelAll(s)
	pid := s.PID()
	if !a.recovery() || pid == "" {
		return
	}
	l := &a.live
	l.mu.Lock()
	defer l.mu.Unlock()
	ls := l.socks[pid]
	if ls == nil || ls.s != s {
		delete(l.persisted, pid)
		return
	}
	delete(l.socks, pid)
	if l.persisted[pid] {
		delete(l.persisted, pid)
		return
	}
	if ls.written {
		a.all.enqueue(&outItem{ns: a, sessKey: a.sessionKey(pid), sessDel: true})
	}
}

// touch marks a socket's live session to be written.
func (a *Adapter) touch(s *socketio.Socket) {
	pid := s.PID()
	if !a.recovery() || pid == "" {
		return
	}
	l := &a.live
	l.mu.Lock()
	ls := l.socks[pid]
	if ls == nil || ls.s != s {
		ls = &liveSock{s: s}
		l.socks[pid] = ls
	}
	ls.dirty = true
	l.mu.Unlock()
}

// flushLive queues the writes of the live sessions that changed (all of
// them when a refresh is due), unless publishing is down: sessions must not
// crowd broadcasts out of the queue; they are written once it is back.
func (a *Adapter) flushLive(now time.Time) {
	all := a.all
	if n, _ := all.q.size(); all.publishingDown() || n > all.opts.QueueLength/2 {
		return
	}
	l := &a.live
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.refreshed) >= all.liveRefresh() {
		for _, ls := range l.socks {
			ls.dirty = true
		}
		l.refreshed = now
	}
	ttl := all.opts.RecoveryWindow + all.liveRefresh()
	queued := 0
	for pid, ls := range l.socks {
		if !ls.dirty {
			continue
		}
		if queued >= liveFlushMax {
			return // the rest at the next tick: they stay dirty
		}
		rooms := append(a.SocketRooms(ls.s), ls.s.ID())
		val, _ := json.Marshal(storedSession{V: KeyLayoutVersion, SID: ls.s.ID(), PID: pid, Rooms: rooms,
			Live: true, Pod: all.opts.Pod})
		all.enqueue(&outItem{ns: a, sessKey: a.sessionKey(pid), sessVal: val, sessTTL: ttl})
		ls.dirty, ls.written = false, true
		queued++
	}
}

// persisting runs store, which queues a socket's goodbye session, under the
// live lock, noting it so that a flush cannot write the live one after it
// and DelAll does not delete it.
func (a *Adapter) persisting(pid string, store func()) {
	l := &a.live
	l.mu.Lock()
	defer l.mu.Unlock()
	if ls := l.socks[pid]; ls != nil {
		l.persisted[pid] = true
		ls.dirty = false
	}
	store()
}

// mayRestoreLive reports whether a live session of pod may be restored:
// its pod is not this one and does not answer.
func (a *Adapter) mayRestoreLive(pod string) bool {
	if pod == a.all.opts.Pod {
		return false
	}
	if !slices.Contains(a.all.Pods(), pod) {
		return true // its heartbeat is over
	}
	l := &a.live
	l.probeMu.Lock()
	p := l.probes[pod]
	if p != nil {
		select {
		case <-p.done:
			if p.alive || time.Since(p.at) > probeKeepDead {
				p = nil
			}
		default: // in flight: wait for it
		}
	}
	if p == nil {
		p = &podProbe{done: make(chan struct{})}
		l.probes[pod] = p
		go a.probe(pod, p)
	}
	l.probeMu.Unlock()
	<-p.done
	return !p.alive
}

// probe asks every pod for the sockets of a room nobody is in and notes
// whether pod answered within probeTimeout.
func (a *Adapter) probe(pod string, p *podProbe) {
	defer close(p.done)
	all := a.all
	req, r := all.newRequest(max(all.expectedPeers(), 1), func(*entry) {}, nil)
	defer all.reqs.Delete(req)
	all.enqueue(&outItem{ns: a, e: entry{Kind: kindFetch, Req: req, Rooms: []string{probeRoom}}})
	ctx, cancel := context.WithTimeout(all.ctx, probeTimeout)
	defer cancel()
	r.wait(ctx, probeTimeout)
	r.mu.Lock()
	p.alive = r.answered[pod]
	r.mu.Unlock()
	p.at = time.Now()
}

// liveLoop writes live sessions until the adapters close.
func (a *Adapters) liveLoop() {
	t := time.NewTicker(liveFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case now := <-t.C:
			a.nsMu.Lock()
			nss := make([]*Adapter, 0, len(a.nss))
			for _, ns := range a.nss {
				nss = append(nss, ns)
			}
			a.nsMu.Unlock()
			for _, ns := range nss {
				if ns.recovery() {
					ns.flushLive(now)
				}
			}
		}
	}
}
