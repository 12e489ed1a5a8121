package engine

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// rec records what a frameReader reports.
type rec struct{ events []event }

type event struct {
	kind   string // "text", "binary", "over-text", "over-binary", "ping", "pong", "close"
	data   []byte
	size   int64
	frames int
}

func (r *rec) onMessage(binary bool, d []byte) {
	k := "text"
	if binary {
		k = "binary"
	}
	r.events = append(r.events, event{kind: k, data: append([]byte(nil), d...)})
}

func (r *rec) onOversize(binary bool, prefix []byte, size int64) {
	k := "over-text"
	if binary {
		k = "over-binary"
	}
	r.events = append(r.events, event{kind: k, data: append([]byte(nil), prefix...), size: size})
}

func (r *rec) onControl(op byte, p []byte) {
	k := map[byte]string{opPing: "ping", opPong: "pong", opClose: "close"}[op]
	r.events = append(r.events, event{kind: k, data: append([]byte(nil), p...)})
}

func (r *rec) String() string {
	var b strings.Builder
	for _, e := range r.events {
		fmt.Fprintf(&b, "%s:%q", e.kind, e.data)
		if e.size > 0 {
			fmt.Fprintf(&b, "(%d)", e.size)
		}
		b.WriteByte(' ')
	}
	return strings.TrimSpace(b.String())
}

// cf builds a client frame: fin, opcode, masked payload (rsv bits and an
// unmasked frame through flags).
func cf(fin bool, op byte, payload []byte, flags ...string) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	masked := true
	for _, f := range flags {
		switch f {
		case "rsv1":
			b0 |= 0x40
		case "unmasked":
			masked = false
		}
	}
	out := []byte{b0}
	n := len(payload)
	var mbit byte
	if masked {
		mbit = 0x80
	}
	switch {
	case n < 126:
		out = append(out, mbit|byte(n))
	case n <= 0xffff:
		out = append(out, mbit|126, byte(n>>8), byte(n))
	default:
		out = append(out, mbit|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	if !masked {
		return append(out, payload...)
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i&3])
	}
	return out
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestFrameReader(t *testing.T) {
	long := bytes.Repeat([]byte("L"), 70000)
	tests := []struct {
		name string
		in   []byte
		want string
		code uint16 // expected error close code (0: none)
	}{
		{"text", cf(true, opText, []byte("4hi")), `text:"4hi"`, 0},
		{"binary", cf(true, opBinary, []byte{1, 2}), `binary:"\x01\x02"`, 0},
		{"empty text", cf(true, opText, nil), `text:""`, 0},
		{"two in one read", cat(cf(true, opText, []byte("a")), cf(true, opText, []byte("b"))), `text:"a" text:"b"`, 0},
		{"fragmented", cat(cf(false, opText, []byte("he")), cf(false, opContinuation, []byte("ll")), cf(true, opContinuation, []byte("o"))), `text:"hello"`, 0},
		{"ping inside a fragmented message", cat(cf(false, opText, []byte("he")), cf(true, opPing, []byte("p")), cf(true, opContinuation, []byte("llo"))), `ping:"p" text:"hello"`, 0},
		{"16-bit length", cf(true, opBinary, bytes.Repeat([]byte{7}, 300)), `binary:"` + strings.Repeat(`\a`, 300) + `"`, 0},
		{"close with code", cf(true, opClose, []byte{0x03, 0xe8, 'b', 'y', 'e'}), `close:"\x03\xe8bye"`, 0},
		{"close empty", cf(true, opClose, nil), `close:""`, 0},
		{"pong", cf(true, opPong, []byte("x")), `pong:"x"`, 0},
		{"unmasked", cf(true, opText, []byte("a"), "unmasked"), ``, CloseProtocolError},
		{"reserved bit", cf(true, opText, []byte("a"), "rsv1"), ``, CloseProtocolError},
		{"reserved opcode", cf(true, 0x3, []byte("a")), ``, CloseProtocolError},
		{"fragmented control", cf(false, opPing, []byte("a")), ``, CloseProtocolError},
		{"control too long", cf(true, opPing, bytes.Repeat([]byte("a"), 126)), ``, CloseProtocolError},
		{"continuation first", cf(true, opContinuation, []byte("a")), ``, CloseProtocolError},
		{"text inside fragmented", cat(cf(false, opText, []byte("a")), cf(true, opText, []byte("b"))), ``, CloseProtocolError},
		{"invalid utf-8", cf(true, opText, []byte{0xff, 0xfe}), ``, CloseInvalidPayload},
		{"invalid utf-8 fragmented", cat(cf(false, opText, []byte{0xe2, 0x82}), cf(true, opContinuation, []byte{0x28})), ``, CloseInvalidPayload},
		{"utf-8 split across fragments", cat(cf(false, opText, []byte{0xe2, 0x82}), cf(true, opContinuation, []byte{0xac})), `text:"€"`, 0},
		{"close of one byte", cf(true, opClose, []byte{1}), ``, CloseProtocolError},
		{"close bad code", cf(true, opClose, []byte{0x03, 0xed}), ``, CloseProtocolError},
		{"close bad utf-8", cf(true, opClose, []byte{0x03, 0xe8, 0xff}), ``, CloseInvalidPayload},
		{"oversize text", cf(true, opText, long), `over-text:"LLLLLLLL"(70000)`, 0},
		{"oversize fragmented", cat(cf(false, opText, long[:60000]), cf(true, opContinuation, long[:20000])), `over-text:"LLLLLLLL"(80000)`, 0},
		{"oversize then normal", cat(cf(true, opBinary, long), cf(true, opText, []byte("ok"))), `over-binary:"LLLLLLLL"(70000) text:"ok"`, 0},
		{"over the discard limit", cf(true, opText, bytes.Repeat([]byte("x"), 200001)), ``, CloseMessageTooBig},
		{"64-bit length with the top bit", []byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, ``, CloseProtocolError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Whole, then byte by byte: the same result.
			for _, step := range []int{len(tt.in), 1, 3} {
				var r rec
				fr := newFrameReader(65536, 200000, 8)
				in := append([]byte(nil), tt.in...)
				var err error
				for i := 0; i < len(in) && err == nil; i += step {
					err = fr.feed(in[i:min(i+step, len(in))], &r)
				}
				var fe *FrameError
				if tt.code != 0 {
					if !errors.As(err, &fe) || fe.Code != tt.code {
						t.Fatalf("step %d: err %v, want close code %d (got %s)", step, err, tt.code, r.String())
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				if r.String() != tt.want {
					t.Fatalf("step %d: got %s\nwant %s", step, r.String(), tt.want)
				}
			}
		})
	}
}

// A message that arrives whole is unmasked in place and handed over without a copy.
func TestFrameReaderZeroCopy(t *testing.T) {
	in := cf(true, opText, []byte("4hello"))
	var seen []byte
	fr := newFrameReader(1024, 1024, 8)
	h := &funcHandler{msg: func(_ bool, d []byte) { seen = d }}
	if err := fr.feed(in, h); err != nil {
		t.Fatal(err)
	}
	if string(seen) != "4hello" || &seen[0] != &in[len(in)-6] {
		t.Fatalf("message %q not aliased to the input", seen)
	}
}

type funcHandler struct{ msg func(bool, []byte) }

func (h *funcHandler) onMessage(b bool, d []byte)     { h.msg(b, d) }
func (h *funcHandler) onOversize(bool, []byte, int64) {}
func (h *funcHandler) onControl(byte, []byte)         {}

func TestAppendFrameHeader(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		h := appendFrameHeader(nil, opText, n)
		if len(h) != frameHeaderLen(n) || h[0] != 0x81 {
			t.Errorf("n=%d: header % x", n, h)
		}
	}
	if got := appendCloseFrame(nil, CloseNoStatus); !bytes.Equal(got, []byte{0x88, 0}) {
		t.Errorf("close without status: % x", got)
	}
	if got := appendCloseFrame(nil, CloseGoingAway); !bytes.Equal(got, []byte{0x88, 2, 0x03, 0xe9}) {
		t.Errorf("close 1001: % x", got)
	}
}
