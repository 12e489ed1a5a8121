package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	engine "github.com/zishang520/socket.io/clients/engine/v3/transports"
	client "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// goSocket is a socket of zishang520's Go client: another real client, for
// Go services that talk Socket.IO to us.
type goSocket struct {
	s      *client.Socket
	events chan goEvent
}

type goEvent struct {
	name string
	args []any
}

// newGoClient returns a socket of zishang520's Go client that has not
// connected yet: its caller adds handlers, then calls Connect.
//
// The client's Manager.Open subscribes to its engine's "open" after the
// engine has started dialling; over WebSocket only the server's OPEN can
// come first and the attempt hangs until its timeout (seen about once in 40
// dials here). A 3 s timeout and two more attempts absorb that client race;
// a refusal by the server (CONNECT_ERROR) is never retried. (Shorter is
// worse: a handshake slower than the timeout on a loaded machine connects
// and is then closed by the timer, which the client does not cancel.)
func newGoClient(tb testing.TB, srv *server, tok string, ts ...engine.TransportCtor) *client.Socket {
	tb.Helper()
	opts := client.DefaultOptions()
	opts.SetAuth(map[string]any{"token": tok})
	opts.SetTransports(types.NewSet(ts...))
	opts.SetReconnection(true)
	opts.SetReconnectionAttempts(2)
	opts.SetReconnectionDelay(50)
	opts.SetReconnectionDelayMax(100)
	opts.SetForceNew(true)
	opts.SetTimeout(3 * time.Second)
	opts.SetAutoConnect(false)
	s, err := client.Io(srv.URL, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func dialGo(t *testing.T, srv *server, tok string, ts ...engine.TransportCtor) *goSocket {
	t.Helper()
	s := newGoClient(t, srv, tok, ts...)
	g := &goSocket{s: s, events: make(chan goEvent, 64)}
	s.OnAny(func(args ...any) {
		name, _ := args[0].(string)
		g.events <- goEvent{name, args[1:]}
	})
	for _, ev := range []string{"connect", "connect_error", "disconnect"} {
		s.On(types.EventName(ev), func(args ...any) { g.events <- goEvent{"$" + ev, args} })
	}
	s.Connect()
	return g
}

// next returns the first argument of the next event named name, skipping others.
func (g *goSocket) next(t *testing.T, name string) any {
	t.Helper()
	deadline := time.After(10 * time.Second) // three connect attempts fit
	var skipped []string
	for {
		select {
		case e := <-g.events:
			if e.name == name {
				if len(e.args) == 0 {
					return nil
				}
				return e.args[0]
			}
			skipped = append(skipped, fmt.Sprint(e.name, e.args))
		case <-deadline:
			t.Fatalf("no %s within 10s (got instead: %v)", name, skipped)
		}
	}
}

func (g *goSocket) ack(t *testing.T, event string, payload any) map[string]any {
	t.Helper()
	type answer struct {
		args []any
		err  error
	}
	ch := make(chan answer, 1)
	g.s.Timeout(5*time.Second).EmitWithAck(event, payload)(func(args []any, err error) {
		ch <- answer{args, err}
	})
	select {
	case a := <-ch:
		args := a.args
		if a.err != nil || len(args) == 0 {
			t.Fatalf("%s: no ack (%v)", event, a.err)
		}
		m, _ := args[0].(map[string]any)
		return m
	case <-time.After(6 * time.Second):
		t.Fatalf("%s: no ack within 6s", event)
	}
	return nil
}

// joinAfterConnect joins a room right after $connect. The client's connect
// timer (newGoClient) may close a connection that has just succeeded: the
// server then logs the client's "transport close" and the client connects
// again by itself. A join that found its socket gone that way is sent once
// more after the next $connect; anything else fails the test.
func (g *goSocket) joinAfterConnect(t *testing.T, room string) map[string]any {
	t.Helper()
	ch := make(chan []any, 1)
	errs := make(chan error, 1)
	g.s.Timeout(5*time.Second).EmitWithAck("joinChat", map[string]any{"chatRoomId": room})(func(args []any, err error) {
		if err != nil {
			errs <- err
			return
		}
		ch <- args
	})
	select {
	case args := <-ch:
		m, _ := args[0].(map[string]any)
		return m
	case err := <-errs:
		if !strings.Contains(err.Error(), "disconnected") {
			t.Fatalf("joinChat: %v", err)
		}
		t.Logf("joinChat: %v; the client's connect timer closed the connection, joining again once reconnected", err)
		g.next(t, "$connect")
		return g.ack(t, "joinChat", map[string]any{"chatRoomId": room})
	case <-time.After(6 * time.Second):
		t.Fatal("joinChat: no ack within 6s")
	}
	return nil
}

// zishang520's Go client chats with the React app's client on the same room,
// over both of its transports, and is refused a bad token like any other.
func TestGoClient(t *testing.T) {
	srv := startServer(t)
	srv.putRoom(t, "room-go", alice, bob)
	js := newJS(t, srv)
	js.connect("bob", token(bob))
	wantOK(t, "bob joins", js.emitAck("bob", "joinChat", map[string]any{"chatRoomId": "room-go"}))

	for name, ts := range map[string][]engine.TransportCtor{
		"polling+upgrade": {engine.Polling, engine.WebSocket},
		"websocket-only":  {engine.WebSocket},
	} {
		t.Run(name, func(t *testing.T) {
			g := dialGo(t, srv, token(alice), ts...)
			g.next(t, "$connect")
			wantOK(t, "go joins", g.joinAfterConnect(t, "room-go"))
			ack := g.ack(t, "sendMessage", map[string]any{"chatRoomId": "room-go", "message": "from Go " + name})
			wantOK(t, "go sends", ack)
			m := js.waitEvent("bob", "newMessage").(map[string]any)
			if m["message"] != "from Go "+name || m["_id"] != ack["message"].(map[string]any)["_id"] {
				t.Errorf("bob got %v", m)
			}
			js.emit("bob", "sendMessage", map[string]any{"chatRoomId": "room-go", "message": "hi Go"})
			for {
				if got := g.next(t, "newMessage").(map[string]any); got["message"] == "hi Go" {
					break
				}
			}
			if own := js.waitEvent("bob", "newMessage").(map[string]any); own["message"] != "hi Go" {
				t.Errorf("bob's own message came back as %v", own)
			}

			bad := dialGo(t, srv, "garbage", ts...)
			got := bad.next(t, "$connect_error")
			for i := 0; i < 2 && fmt.Sprint(got) == "timeout"; i++ {
				got = bad.next(t, "$connect_error") // the client race above; it tries again
			}
			e, _ := got.(*types.ExtendedError)
			if e == nil {
				t.Fatalf("connect_error %T %v, want the server's refusal", got, got)
			}
			if data, _ := e.Data.(map[string]any); data["code"] != "TOKEN_MALFORMED" {
				t.Errorf("connect_error %q data %v, want code TOKEN_MALFORMED", e.Message, e.Data)
			}
		})
	}
}
