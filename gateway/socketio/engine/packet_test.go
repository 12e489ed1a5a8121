package engine

import (
	"bytes"
	"errors"
	"testing"
)

func TestDecodePacket(t *testing.T) {
	tests := []struct {
		in     string
		want   Packet
		bad    bool
		binary bool
	}{
		{in: "4hello", want: Packet{Type: PacketMessage, Data: []byte("hello")}},
		{in: "4", want: Packet{Type: PacketMessage, Data: []byte{}}},
		{in: "2", want: Packet{Type: PacketPing, Data: []byte{}}},
		{in: "2probe", want: Packet{Type: PacketPing, Data: []byte("probe")}},
		{in: "3", want: Packet{Type: PacketPong, Data: []byte{}}},
		{in: "1", want: Packet{Type: PacketClose, Data: []byte{}}},
		{in: "5", want: Packet{Type: PacketUpgrade, Data: []byte{}}},
		{in: "6", want: Packet{Type: PacketNoop, Data: []byte{}}},
		{in: "0{}", want: Packet{Type: PacketOpen, Data: []byte("{}")}},
		{in: "bAQIDBA==", want: Packet{Type: PacketMessage, Data: []byte{1, 2, 3, 4}, Binary: true}},
		{in: "bAQIDBA", want: Packet{Type: PacketMessage, Data: []byte{1, 2, 3, 4}, Binary: true}},
		{in: "b", want: Packet{Type: PacketMessage, Data: []byte{}, Binary: true}},
		{in: "", bad: true},
		{in: "abc", bad: true},
		{in: "7", bad: true},
		{in: "b%%%", bad: true},
		{in: "\x1e", bad: true},
	}
	for _, tt := range tests {
		got, err := DecodePacket([]byte(tt.in))
		if tt.bad {
			if !errors.Is(err, ErrBadPacket) {
				t.Errorf("DecodePacket(%q) = %+v, %v; want ErrBadPacket", tt.in, got, err)
			}
			continue
		}
		if err != nil || got.Type != tt.want.Type || got.Binary != tt.want.Binary || !bytes.Equal(got.Data, tt.want.Data) {
			t.Errorf("DecodePacket(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestDecodePayload(t *testing.T) {
	tests := []struct {
		in    string
		types string // packet types decoded, "b" for binary
		bad   bool
	}{
		{in: "4hello", types: "4"},
		{in: "4test1\x1e4test2\x1e4test3", types: "444"},
		{in: "4hello\x1ebAQIDBA==", types: "4b"},
		{in: "3\x1e4x\x1e1", types: "341"},
		{in: "abc", types: "", bad: true},
		{in: "", types: "", bad: true},
		{in: "4ok\x1e\x1e4no", types: "4", bad: true},   // an empty packet stops the payload
		{in: "4ok\x1ezz\x1e4no", types: "4", bad: true}, // packets before the bad one count, as in Node
		{in: "4ok\x1e", types: "4", bad: true},
	}
	for _, tt := range tests {
		ps, err := DecodePayload([]byte(tt.in), 0)
		var types []byte
		for _, p := range ps {
			if p.Binary {
				types = append(types, 'b')
			} else {
				types = append(types, byte(p.Type))
			}
		}
		if string(types) != tt.types || (err != nil) != tt.bad {
			t.Errorf("DecodePayload(%q) = %q, %v; want %q (bad %v)", tt.in, types, err, tt.types, tt.bad)
		}
	}
	if _, err := DecodePayload([]byte("4a\x1e4b\x1e4c"), 2); err == nil {
		t.Error("DecodePayload over maxPackets: no error")
	}
}

func TestFramesToPayload(t *testing.T) {
	var frames []byte
	frames = appendPacketFrame(frames, PacketMessage, []byte("hello"))
	frames = appendFrame(frames, opBinary, []byte{1, 2, 3, 4})
	frames = appendPacketFrame(frames, PacketPing, nil)
	frames = appendCloseFrame(frames, CloseNormal) // WebSocket only: left out
	big := bytes.Repeat([]byte("x"), 70000)
	frames = appendPacketFrame(frames, PacketMessage, big)
	got := framesToPayload(nil, frames)
	want := "4hello\x1ebAQIDBA==\x1e2\x1e4" + string(big)
	if string(got) != want {
		t.Fatalf("framesToPayload = %q…, want %q…", got[:min(40, len(got))], want[:40])
	}
	m := NewTextMessage([]byte(`2["a"]`))
	m.AppendBinary([]byte{9})
	if got := framesToPayload(nil, m.frames); string(got) != "42[\"a\"]\x1ebCQ==" {
		t.Fatalf("message as payload = %q", got)
	}
}

func TestAppendPacket(t *testing.T) {
	if got := AppendPacket(nil, PacketMessage, []byte("hi"), false); string(got) != "4hi" {
		t.Errorf("text: %q", got)
	}
	if got := AppendPacket(nil, PacketMessage, []byte{1, 2, 3, 4}, true); string(got) != "bAQIDBA==" {
		t.Errorf("binary: %q", got)
	}
}

func TestMessageFraming(t *testing.T) {
	for _, n := range []int{0, 1, 124, 125, 126, 65534, 65535, 65536, 200000} {
		text := bytes.Repeat([]byte("a"), n)
		m := NewTextMessage(text)
		var got rec
		r := newFrameReader(1<<20, 1<<20, 16)
		if err := r.feed(maskFrames(m.frames), &got); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if len(got.events) != 1 || len(got.events[0].data) != n+1 || got.events[0].data[0] != '4' {
			t.Fatalf("n=%d: read back %v", n, got.events)
		}
	}
}

// maskFrames masks server frames as a client would, to read them back.
func maskFrames(frames []byte) (out []byte) {
	key := [4]byte{1, 2, 3, 4}
	for len(frames) > 0 {
		b0, b1 := frames[0], frames[1]
		n, h := int(b1&0x7f), 2
		switch n {
		case 126:
			n, h = int(frames[2])<<8|int(frames[3]), 4
		case 127:
			n, h = 0, 10
			for _, c := range frames[2:10] {
				n = n<<8 | int(c)
			}
		}
		out = append(out, b0, b1|0x80)
		out = append(out, frames[2:h]...)
		out = append(out, key[:]...)
		for i, c := range frames[h : h+n] {
			out = append(out, c^key[i&3])
		}
		frames = frames[h+n:]
	}
	return out
}
