package test

import (
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

func dialGo(t *testing.T, srv *server, tok string, ts ...engine.TransportCtor) *goSocket {
	t.Helper()
	opts := client.DefaultOptions()
	opts.SetAuth(map[string]any{"token": tok})
	opts.SetTransports(types.NewSet(ts...))
	opts.SetReconnection(false)
	opts.SetForceNew(true)
	opts.SetTimeout(5 * time.Second)
	s, err := client.Io(srv.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	g := &goSocket{s: s, events: make(chan goEvent, 64)}
	t.Cleanup(func() { s.Close() })
	s.OnAny(func(args ...any) {
		name, _ := args[0].(string)
		g.events <- goEvent{name, args[1:]}
	})
	for _, ev := range []string{"connect", "connect_error", "disconnect"} {
		s.On(types.EventName(ev), func(args ...any) { g.events <- goEvent{"$" + ev, args} })
	}
	return g
}

// next returns the first argument of the next event named name, skipping others.
func (g *goSocket) next(t *testing.T, name string) any {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e := <-g.events:
			if e.name == name {
				if len(e.args) == 0 {
					return nil
				}
				return e.args[0]
			}
		case <-deadline:
			t.Fatalf("no %s within 5s", name)
		}
	}
}

func (g *goSocket) ack(t *testing.T, event string, payload any) map[string]any {
	t.Helper()
	ch := make(chan []any, 1)
	g.s.Timeout(5*time.Second).EmitWithAck(event, payload)(func(args []any, err error) {
		if err != nil {
			ch <- nil
			return
		}
		ch <- args
	})
	select {
	case args := <-ch:
		if len(args) == 0 {
			t.Fatalf("%s: no ack", event)
		}
		m, _ := args[0].(map[string]any)
		return m
	case <-time.After(6 * time.Second):
		t.Fatalf("%s: no ack within 6s", event)
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
			wantOK(t, "go joins", g.ack(t, "joinChat", map[string]any{"chatRoomId": "room-go"}))
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
			e, _ := bad.next(t, "$connect_error").(error)
			if e == nil {
				t.Fatal("connect_error without an error")
			}
		})
	}
}
