package socketio

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func TestDecodePacket(t *testing.T) {
	tests := []struct {
		in   string
		want Packet
		bad  bool
	}{
		{in: "0", want: Packet{Type: PacketConnect, Nsp: "/"}},
		{in: `0{"token":"123"}`, want: Packet{Type: PacketConnect, Nsp: "/", Data: map[string]any{"token": "123"}}},
		{in: "0/custom,", want: Packet{Type: PacketConnect, Nsp: "/custom"}},
		{in: `0/custom,{"token":"abc"}`, want: Packet{Type: PacketConnect, Nsp: "/custom", Data: map[string]any{"token": "abc"}}},
		{in: "0/random", want: Packet{Type: PacketConnect, Nsp: "/random"}},
		{in: "1", want: Packet{Type: PacketDisconnect, Nsp: "/"}},
		{in: "1/custom", want: Packet{Type: PacketDisconnect, Nsp: "/custom"}},
		{in: `2["message",1,"2",{"3":[true]}]`, want: Packet{Type: PacketEvent, Nsp: "/", Data: []any{"message", 1.0, "2", map[string]any{"3": []any{true}}}}},
		{in: `2456["message-with-ack",1]`, want: Packet{Type: PacketEvent, Nsp: "/", ID: 456, HasID: true, Data: []any{"message-with-ack", 1.0}}},
		{in: `2/admin,7["x"]`, want: Packet{Type: PacketEvent, Nsp: "/admin", ID: 7, HasID: true, Data: []any{"x"}}},
		{in: `2[42]`, want: Packet{Type: PacketEvent, Nsp: "/", Data: []any{42.0}}},
		{in: `3456[1,"2"]`, want: Packet{Type: PacketAck, Nsp: "/", ID: 456, HasID: true, Data: []any{1.0, "2"}}},
		{in: `4{"message":"no"}`, want: Packet{Type: PacketConnectError, Nsp: "/", Data: map[string]any{"message": "no"}}},
		{in: `4"no"`, want: Packet{Type: PacketConnectError, Nsp: "/", Data: "no"}},
		{in: `52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, want: Packet{Type: PacketBinaryEvent, Nsp: "/", Attachments: 2,
			Data: []any{"message", map[string]any{"_placeholder": true, "num": 0.0}, map[string]any{"_placeholder": true, "num": 1.0}}}},
		{in: `52-789["m",{"_placeholder":true,"num":0}]`, want: Packet{Type: PacketBinaryEvent, Nsp: "/", Attachments: 2, ID: 789, HasID: true,
			Data: []any{"m", map[string]any{"_placeholder": true, "num": 0.0}}}},
		{in: `61-/x,3[{"_placeholder":true,"num":0}]`, want: Packet{Type: PacketBinaryAck, Nsp: "/x", Attachments: 1, ID: 3, HasID: true,
			Data: []any{map[string]any{"_placeholder": true, "num": 0.0}}}},
		// What the suites send to be refused, and more.
		{in: "abc", bad: true},
		{in: "", bad: true},
		{in: "7", bad: true},
		{in: "2{}", bad: true},
		{in: `2abc["message-with-ack",1,"2",{"3":[false]}]`, bad: true},
		{in: `2[]`, bad: true},
		{in: `2["disconnect"]`, bad: true},
		{in: `2[{}]`, bad: true},
		{in: `2`, bad: true},
		{in: `3`, bad: true},
		{in: `3{}`, bad: true},
		{in: `0[]`, bad: true},
		{in: `0null`, bad: true},
		{in: `1{}`, bad: true},
		{in: `4[]`, bad: true},
		{in: `5["x"]`, bad: true},
		{in: `5x-["x"]`, bad: true},
		{in: `511-["x"]`, bad: true}, // over 10 attachments
		{in: `2["x"]trailing`, bad: true},
		{in: `299999999999999999999["x"]`, bad: true},
		{in: `05["x"]`, bad: true}, // an id on a CONNECT
	}
	for _, tt := range tests {
		got, err := DecodePacket([]byte(tt.in), 10)
		if tt.bad {
			if !errors.Is(err, ErrInvalidPacket) {
				t.Errorf("DecodePacket(%q) = %+v, %v; want ErrInvalidPacket", tt.in, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("DecodePacket(%q) = %+v, %v;\n want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestReconstruct(t *testing.T) {
	p, err := DecodePacket([]byte(`52-["m",{"a":{"_placeholder":true,"num":1}},[{"_placeholder":true,"num":0}]]`), 10)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Reconstruct(p.Data, [][]byte{{1}, {2, 2}})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"m", map[string]any{"a": []byte{2, 2}}, []any{[]byte{1}}}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("got %#v", d)
	}
	for _, bad := range []string{
		`{"_placeholder":true,"num":2}`, `{"_placeholder":true,"num":-1}`, `{"_placeholder":true,"num":0.5}`, `{"_placeholder":true}`,
	} {
		var v any
		_ = json.Unmarshal([]byte(bad), &v)
		if _, err := Reconstruct([]any{v}, [][]byte{{1}, {2}}); !errors.Is(err, ErrInvalidPacket) {
			t.Errorf("Reconstruct(%s): %v", bad, err)
		}
	}
	// A "_placeholder" that is not true is plain data.
	var v any
	_ = json.Unmarshal([]byte(`{"_placeholder":false,"num":9}`), &v)
	if _, err := Reconstruct(v, nil); err != nil {
		t.Errorf("a false placeholder: %v", err)
	}
}

func TestAppendPacket(t *testing.T) {
	tests := []struct {
		p     Packet
		text  string
		atts  int
		attsN [][]byte
	}{
		{p: Packet{Type: PacketEvent, Nsp: "/", Data: []any{"message-back", 1, "2", map[string]any{"3": []any{true}}}}, text: `2["message-back",1,"2",{"3":[true]}]`},
		{p: Packet{Type: PacketEvent, Nsp: "/custom", Data: []any{"auth", map[string]any{}}}, text: `2/custom,["auth",{}]`},
		{p: Packet{Type: PacketAck, Nsp: "/", ID: 456, HasID: true, Data: []any{1, "2"}}, text: `3456[1,"2"]`},
		{p: Packet{Type: PacketEvent, Nsp: "/", Data: []any{"message-back", []byte{1, 2, 3}, []byte{4, 5, 6}}},
			text: `52-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, attsN: [][]byte{{1, 2, 3}, {4, 5, 6}}},
		{p: Packet{Type: PacketAck, Nsp: "/", ID: 789, HasID: true, Data: []any{[]byte{1}}},
			text: `61-789[{"_placeholder":true,"num":0}]`, attsN: [][]byte{{1}}},
		{p: Packet{Type: PacketEvent, Nsp: "/", Data: []any{"html", "<a&b>"}}, text: `2["html","<a&b>"]`},
		{p: Packet{Type: PacketEvent, Nsp: "/", Data: []any{"raw", json.RawMessage(`{"x":1}`)}}, text: `2["raw",{"x":1}]`},
		{p: Packet{Type: PacketDisconnect, Nsp: "/x"}, text: `1/x,`},
	}
	for _, tt := range tests {
		text, atts, err := AppendPacket(nil, &tt.p)
		if err != nil || string(text) != tt.text || !reflect.DeepEqual(atts, tt.attsN) {
			t.Errorf("AppendPacket(%+v) = %s, %v, %v; want %s", tt.p, text, atts, err, tt.text)
		}
		// What we encode decodes back.
		back, err := DecodePacket(text, 10)
		if err != nil && tt.p.Type != PacketDisconnect {
			t.Errorf("decoding %s: %v", text, err)
		}
		_ = back
	}
	if _, _, err := AppendPacket(nil, &Packet{Type: PacketEvent, Data: []any{"x", make(chan int)}}); err == nil {
		t.Error("a channel encoded")
	}
}

func TestBuildMessageOffset(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{`2["ev",1]`, `2["ev",1,"7"]`},
		{`2["ev"]`, `2["ev","7"]`},
		{`2/n,["ev",{"a":[1]}]`, `2/n,["ev",{"a":[1]},"7"]`},
	} {
		m := buildMessage([]byte(tt.text), "7", nil)
		f := m.Frames()
		if got := string(f[2:]); got != "4"+tt.want {
			t.Errorf("buildMessage(%s) = %q, want %q", tt.text, got, "4"+tt.want)
		}
	}
}
