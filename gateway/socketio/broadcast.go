package socketio

import (
	"context"
	"sync"
	"time"
)

// BroadcastOperator selects sockets of a namespace (rooms, exceptions,
// flags) and acts on them through the adapter. It is a value: each method
// returns a new operator, so one can be kept and reused.
type BroadcastOperator struct {
	nsp    *Namespace
	rooms  []string
	except []string
	flags  BroadcastFlags
}

// To adds rooms to the selection (a socket in any of them).
func (b BroadcastOperator) To(rooms ...string) BroadcastOperator {
	b.rooms = append(b.rooms[:len(b.rooms):len(b.rooms)], rooms...)
	return b
}

// In is To.
func (b BroadcastOperator) In(rooms ...string) BroadcastOperator { return b.To(rooms...) }

// Except leaves out the sockets in rooms (a socket id is a room).
func (b BroadcastOperator) Except(rooms ...string) BroadcastOperator {
	b.except = append(b.except[:len(b.except):len(b.except)], rooms...)
	return b
}

// Local keeps the operation on this node.
func (b BroadcastOperator) Local() BroadcastOperator { b.flags.Local = true; return b }

// Volatile lets clients that cannot take the packet now miss it.
func (b BroadcastOperator) Volatile() BroadcastOperator { b.flags.Volatile = true; return b }

// Timeout bounds EmitWithAck.
func (b BroadcastOperator) Timeout(d time.Duration) BroadcastOperator { b.flags.Timeout = d; return b }

func (b BroadcastOperator) options() BroadcastOptions {
	return BroadcastOptions{Rooms: b.rooms, Except: b.except, Flags: b.flags}
}

// Emit sends an event to the selected sockets, each once, encoded once.
func (b BroadcastOperator) Emit(event string, args ...any) error {
	if reserved(event) {
		return ErrReservedEvent
	}
	p := &Packet{Type: PacketEvent, Nsp: b.nsp.name, Data: eventData(event, args)}
	return b.nsp.adapter.Broadcast(p, b.options())
}

// EmitWithAck sends an event to the selected sockets and returns their
// answers once all came, or what came when ctx ends (with ctx.Err()) or the
// operator's Timeout passes (with ErrAckTimeout).
func (b BroadcastOperator) EmitWithAck(ctx context.Context, event string, args ...any) ([][]any, error) {
	if reserved(event) {
		return nil, ErrReservedEvent
	}
	var (
		mu       sync.Mutex
		answers  [][]any
		expected = -1
		done     = make(chan struct{}, 1)
	)
	check := func() {
		if expected >= 0 && len(answers) >= expected {
			select {
			case done <- struct{}{}:
			default:
			}
		}
	}
	id := b.nsp.ackSeq.Add(1) - 1
	p := &Packet{Type: PacketEvent, Nsp: b.nsp.name, ID: id, HasID: true, Data: eventData(event, args)}
	err := b.nsp.adapter.BroadcastWithAck(p, b.options(),
		func(n int) {
			mu.Lock()
			if expected < 0 {
				expected = 0
			}
			expected += n
			check()
			mu.Unlock()
		},
		func(a []any) {
			mu.Lock()
			answers = append(answers, a)
			check()
			mu.Unlock()
		})
	if err != nil {
		return nil, err
	}
	var timeout <-chan time.Time
	if b.flags.Timeout > 0 {
		t := time.NewTimer(b.flags.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-done:
		err = nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timeout:
		err = ErrAckTimeout
	}
	mu.Lock()
	defer mu.Unlock()
	return append([][]any(nil), answers...), err
}

// SocketsJoin makes the selected sockets join rooms.
func (b BroadcastOperator) SocketsJoin(rooms ...string) error {
	return b.nsp.adapter.AddSockets(b.options(), rooms)
}

// SocketsLeave makes the selected sockets leave rooms.
func (b BroadcastOperator) SocketsLeave(rooms ...string) error {
	return b.nsp.adapter.DelSockets(b.options(), rooms)
}

// DisconnectSockets disconnects the selected sockets (close: their whole
// connections, see Socket.Disconnect).
func (b BroadcastOperator) DisconnectSockets(close bool) error {
	return b.nsp.adapter.DisconnectSockets(b.options(), close)
}

// FetchSockets describes the selected sockets.
func (b BroadcastOperator) FetchSockets(ctx context.Context) ([]RemoteSocket, error) {
	return b.nsp.adapter.FetchSockets(ctx, b.options())
}
