package engine

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// Seeds: what the engine.io-protocol suite and socket.io-client send.
var packetSeeds = []string{
	"4hello", "4", "2", "3", "1", "5", "6", "2probe", "3probe", "bAQIDBA==", "b", "abc", "",
	`40{"token":"123"}`, `42["message",1,"2",{"3":[true]}]`, `452-["message",{"_placeholder":true,"num":0}]`,
}

var payloadSeeds = []string{
	"4hello", "4test1\x1e4test2\x1e4test3", "4hello\x1ebAQIDBA==", "abc", "3", "1", "40\x1e42[\"x\"]", "\x1e", "4a\x1e",
}

func FuzzDecodePacket(f *testing.F) {
	for _, s := range packetSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := DecodePacket(in)
		if err != nil {
			if !errors.Is(err, ErrBadPacket) {
				t.Fatalf("error %v is not ErrBadPacket", err)
			}
			return
		}
		// A text packet encodes back to its input.
		if !p.Binary && !bytes.Equal(AppendPacket(nil, p.Type, p.Data, false), in) {
			t.Fatalf("%q does not round-trip", in)
		}
		if p.Binary {
			back, err := DecodePacket(AppendPacket(nil, p.Type, p.Data, true))
			if err != nil || !bytes.Equal(back.Data, p.Data) {
				t.Fatalf("binary %q does not round-trip", in)
			}
		}
	})
}

func FuzzDecodePayload(f *testing.F) {
	for _, s := range payloadSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ps, err := DecodePayload(in, 64)
		if err != nil && !errors.Is(err, ErrBadPacket) {
			t.Fatalf("error %v", err)
		}
		if len(ps) > bytes.Count(in, []byte{recordSeparator})+1 || len(ps) > 64 {
			t.Fatalf("%d packets from %q", len(ps), in)
		}
	})
}

// The frame reader reports the same events and error however the stream is
// split, never panics, and keeps its memory bounded.
func FuzzFrameReader(f *testing.F) {
	f.Add(cf(true, opText, []byte("4hello")), 3)
	f.Add(cat(cf(false, opText, []byte("he")), cf(true, opPing, []byte("p")), cf(true, opContinuation, []byte("llo"))), 5)
	f.Add(cf(true, opBinary, bytes.Repeat([]byte{7}, 300)), 100)
	f.Add(cf(true, opClose, []byte{0x03, 0xe8}), 1)
	f.Add(cf(true, opText, bytes.Repeat([]byte("x"), 2000)), 700)
	f.Add([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, 2)
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		run := func(chunks ...[]byte) (rec, error) {
			var r rec
			fr := newFrameReader(1024, 4096, 16)
			for _, c := range chunks {
				if err := fr.feed(append([]byte(nil), c...), &r); err != nil {
					return r, err
				}
				if cap(fr.msg) > 8192 || cap(fr.ctl) > 256 {
					t.Fatalf("reader holds %d/%d bytes", cap(fr.msg), cap(fr.ctl))
				}
			}
			return r, nil
		}
		whole, err1 := run(in)
		if split < 0 {
			split = -split
		}
		split %= len(in) + 1
		parts, err2 := run(in[:split], in[split:])
		if (err1 == nil) != (err2 == nil) || !reflect.DeepEqual(whole.events, parts.events) {
			t.Fatalf("split at %d: %v / %v, %s / %s", split, err1, err2, whole.String(), parts.String())
		}
		var fe *FrameError
		if err1 != nil && !errors.As(err1, &fe) {
			t.Fatalf("error %v is not a FrameError", err1)
		}
	})
}
