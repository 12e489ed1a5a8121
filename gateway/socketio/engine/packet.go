package engine

import (
	"bytes"
	"encoding/base64"
	"errors"
)

// PacketType is an Engine.IO packet type (protocol 4).
type PacketType byte

// Engine.IO packet types, as their digit on the wire.
const (
	PacketOpen    PacketType = '0'
	PacketClose   PacketType = '1'
	PacketPing    PacketType = '2'
	PacketPong    PacketType = '3'
	PacketMessage PacketType = '4'
	PacketUpgrade PacketType = '5'
	PacketNoop    PacketType = '6'
)

// recordSeparator separates the packets of an HTTP long-polling payload.
const recordSeparator = 0x1e

// ErrBadPacket is returned for an Engine.IO packet that does not parse: an
// empty packet, an unknown type, or a base64 body that does not decode. Node's
// engine.io calls this a "parse error" and closes the session.
var ErrBadPacket = errors.New("engine.io: malformed packet")

// Packet is one decoded Engine.IO packet. Data aliases the input of the
// decoder (or, for a base64 binary packet, a fresh buffer).
type Packet struct {
	Type   PacketType
	Data   []byte
	Binary bool // a binary message (WebSocket binary frame, or "b" + base64 over polling)
}

// DecodePacket decodes one text-encoded Engine.IO packet: a type digit and
// its data, or "b" and base64 for a binary message. It never panics.
func DecodePacket(b []byte) (Packet, error) {
	if len(b) == 0 {
		return Packet{}, ErrBadPacket
	}
	t := b[0]
	if t == 'b' {
		data, err := decodeBase64(b[1:])
		if err != nil {
			return Packet{}, ErrBadPacket
		}
		return Packet{Type: PacketMessage, Data: data, Binary: true}, nil
	}
	if t < '0' || t > '6' {
		return Packet{}, ErrBadPacket
	}
	return Packet{Type: PacketType(t), Data: b[1:]}, nil
}

// decodeBase64 accepts standard base64 with or without padding, as Node's
// Buffer.from(s, "base64") does for what clients send.
func decodeBase64(s []byte) ([]byte, error) {
	// RawStdEncoding's DecodedLen is the larger: room for either decoding.
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(out, s)
	if err == nil {
		return out[:n], nil
	}
	n, err = base64.RawStdEncoding.Decode(out, s)
	if err != nil {
		return nil, err
	}
	return out[:n], nil
}

// DecodePayload decodes an HTTP long-polling payload: packets separated by
// 0x1e. Like Node's engine.io-parser it stops at the first malformed packet
// and returns the packets before it together with ErrBadPacket; the caller
// handles those, then closes the session. maxPackets bounds the number of
// packets (0: no bound); past it the payload is malformed.
func DecodePayload(b []byte, maxPackets int) ([]Packet, error) {
	var out []Packet
	for {
		end := bytes.IndexByte(b, recordSeparator)
		chunk := b
		if end >= 0 {
			chunk = b[:end]
		}
		if maxPackets > 0 && len(out) == maxPackets {
			return out, ErrBadPacket
		}
		p, err := DecodePacket(chunk)
		if err != nil {
			return out, err
		}
		out = append(out, p)
		if end < 0 {
			return out, nil
		}
		b = b[end+1:]
	}
}

// AppendPacket appends the text encoding of one packet (as in a polling
// payload): the type digit and data, or "b" and base64 for binary data.
func AppendPacket(dst []byte, t PacketType, data []byte, binary bool) []byte {
	if binary {
		dst = append(dst, 'b')
		return base64.StdEncoding.AppendEncode(dst, data)
	}
	dst = append(dst, byte(t))
	return append(dst, data...)
}
