package socketio

import (
	"errors"
	"reflect"
	"testing"
)

// Seeds: the socket.io-protocol suite's packets and what socket.io-client sends.
var sioSeeds = []string{
	"0", `0{"token":"123"}`, "0/custom,", `0/custom,{"token":"abc"}`, "0/random", "1", "1/custom",
	`2["message",1,"2",{"3":[true]}]`, `2456["message-with-ack",1,"2",{"3":[false]}]`,
	`52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
	`52-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
	`3456[1,"2",{"3":[false]}]`, `61-3[{"_placeholder":true,"num":0}]`, "abc", "2{}", `2abc["x"]`,
	`0{"token":"t","pid":"p","offset":"12"}`, `4{"message":"x"}`,
}

// The decoder (with attachments) never panics; what it accepts encodes
// back to a packet it accepts and that decodes to the same thing.
func FuzzDecodePacket(f *testing.F) {
	for _, s := range sioSeeds {
		f.Add([]byte(s), []byte{1, 2, 3}, uint8(2))
	}
	f.Fuzz(func(t *testing.T, in, att []byte, n uint8) {
		p, err := DecodePacket(in, 10)
		if err != nil {
			if !errors.Is(err, ErrInvalidPacket) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if p.Type == PacketBinaryEvent || p.Type == PacketBinaryAck {
			atts := make([][]byte, p.Attachments)
			for i := range atts {
				atts[i] = append(att[:len(att):len(att)], byte(i))
			}
			if int(n)%3 == 0 && len(atts) > 0 {
				atts = atts[:len(atts)-1] // a short count: placeholders may be out of range
			}
			d, err := Reconstruct(p.Data, atts)
			if err != nil {
				if !errors.Is(err, ErrInvalidPacket) {
					t.Fatalf("reconstruct error %v", err)
				}
				return
			}
			p.Data = d
			switch p.Type { // encode as a plain packet: binary comes back from the data
			case PacketBinaryEvent:
				p.Type = PacketEvent
			case PacketBinaryAck:
				p.Type = PacketAck
			}
		}
		text, atts, err := AppendPacket(nil, &p)
		if err != nil {
			t.Fatalf("%q decoded but does not encode: %v", in, err)
		}
		back, err := DecodePacket(text, 1<<30)
		if err != nil {
			t.Fatalf("%q re-encoded as %q, which does not decode: %v", in, text, err)
		}
		if back.Attachments > 0 {
			if back.Data, err = Reconstruct(back.Data, atts); err != nil {
				t.Fatalf("re-encoded %q: %v", text, err)
			}
			if back.Type == PacketBinaryEvent {
				back.Type = PacketEvent
			} else {
				back.Type = PacketAck
			}
			back.Attachments = 0
		}
		if !reflect.DeepEqual(normalize(back.Data), normalize(p.Data)) || back.Type != p.Type || back.Nsp != p.Nsp || back.ID != p.ID {
			t.Fatalf("%q → %q → %+v, want %+v", in, text, back, p)
		}
	})
}

// normalize maps []byte to a comparable form and keeps the rest.
func normalize(v any) any {
	switch t := v.(type) {
	case []byte:
		return "bin:" + string(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = normalize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}
