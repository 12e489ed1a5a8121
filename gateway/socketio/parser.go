package socketio

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/fitmate/commserver/internal/jsonw"
)

// PacketType is a Socket.IO packet type (protocol 5).
type PacketType byte

// Socket.IO packet types.
const (
	PacketConnect      PacketType = 0
	PacketDisconnect   PacketType = 1
	PacketEvent        PacketType = 2
	PacketAck          PacketType = 3
	PacketConnectError PacketType = 4
	PacketBinaryEvent  PacketType = 5
	PacketBinaryAck    PacketType = 6
)

// ErrInvalidPacket is returned for a Socket.IO packet that breaks the
// protocol; the connection that sent it is closed, as Node does.
var ErrInvalidPacket = errors.New("socket.io: invalid packet")

// reservedEvents are names a client may not emit (Node's RESERVED_EVENTS).
var reservedEvents = [...]string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}

// Packet is a decoded Socket.IO packet.
type Packet struct {
	Type        PacketType
	Nsp         string
	ID          uint64
	HasID       bool
	Attachments int // binary packets: attachments that follow
	// Data is the JSON payload decoded as encoding/json does into an any
	// (objects map[string]any, arrays []any, numbers float64); binary
	// attachments, once reconstructed, are []byte. nil when absent.
	Data any
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidPacket}, args...)...)
}

// DecodePacket decodes the text part of a Socket.IO packet, as Node's
// socket.io-parser does, and checks its payload against its type. A binary
// packet's placeholders are left in Data for Reconstruct. It never panics.
func DecodePacket(s []byte, maxAttachments int) (Packet, error) {
	var p Packet
	if len(s) == 0 || s[0] < '0' || s[0] > '6' {
		return p, invalid("unknown packet type")
	}
	p.Type = PacketType(s[0] - '0')
	i := 1
	if p.Type == PacketBinaryEvent || p.Type == PacketBinaryAck {
		start := i
		for i < len(s) && s[i] != '-' {
			i++
		}
		if i == len(s) || i == start || i-start > 9 {
			return p, invalid("illegal attachments")
		}
		n, err := strconv.Atoi(string(s[start:i]))
		if err != nil || n < 0 {
			return p, invalid("illegal attachments")
		}
		if n > maxAttachments {
			return p, invalid("too many attachments")
		}
		p.Attachments = n
		i++ // the '-'
	}
	p.Nsp = "/"
	if i < len(s) && s[i] == '/' {
		start := i
		for i < len(s) && s[i] != ',' {
			i++
		}
		p.Nsp = string(s[start:i])
		if i < len(s) {
			i++ // the ','
		}
	}
	if i < len(s) && s[i] >= '0' && s[i] <= '9' {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		id, err := strconv.ParseUint(string(s[start:i]), 10, 64)
		if err != nil {
			return p, invalid("ack id out of range")
		}
		p.ID, p.HasID = id, true
	}
	if i < len(s) {
		var v any
		if err := json.Unmarshal(s[i:], &v); err != nil {
			return p, invalid("payload is not JSON")
		}
		p.Data = v
	}
	if !payloadValid(p.Type, p.Data, i < len(s)) {
		return p, invalid("payload does not fit the packet type")
	}
	if p.HasID && p.Type != PacketEvent && p.Type != PacketBinaryEvent && p.Type != PacketAck && p.Type != PacketBinaryAck {
		return p, invalid("ack id on a packet that has none")
	}
	return p, nil
}

func payloadValid(t PacketType, v any, present bool) bool {
	switch t {
	case PacketConnect:
		if !present {
			return true
		}
		_, ok := v.(map[string]any)
		return ok
	case PacketDisconnect:
		return !present
	case PacketConnectError:
		switch v.(type) {
		case string, map[string]any:
			return true
		}
		return false
	case PacketEvent, PacketBinaryEvent:
		a, ok := v.([]any)
		if !ok || len(a) == 0 {
			return false
		}
		switch name := a[0].(type) {
		case float64:
			return true
		case string:
			for _, r := range reservedEvents {
				if name == r {
					return false
				}
			}
			return true
		}
		return false
	case PacketAck, PacketBinaryAck:
		_, ok := v.([]any)
		return ok
	}
	return false
}

// Reconstruct replaces the placeholders ({"_placeholder":true,"num":n}) in
// a binary packet's data with its attachments. Every placeholder must name
// an attachment that exists.
func Reconstruct(data any, attachments [][]byte) (any, error) {
	switch v := data.(type) {
	case []any:
		for i, e := range v {
			r, err := Reconstruct(e, attachments)
			if err != nil {
				return nil, err
			}
			v[i] = r
		}
		return v, nil
	case map[string]any:
		if ph, ok := v["_placeholder"].(bool); ok && ph {
			num, ok := v["num"].(float64)
			if !ok || num < 0 || num >= float64(len(attachments)) || num != float64(int(num)) {
				return nil, invalid("illegal attachments")
			}
			return attachments[int(num)], nil
		}
		for k, e := range v {
			r, err := Reconstruct(e, attachments)
			if err != nil {
				return nil, err
			}
			v[k] = r
		}
		return v, nil
	}
	return data, nil
}

// hasBinary reports whether v holds a []byte inside []any and
// map[string]any values (what Emit turns into attachments).
func hasBinary(v any) bool {
	switch t := v.(type) {
	case []byte:
		return true
	case []any:
		for _, e := range t {
			if hasBinary(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range t {
			if hasBinary(e) {
				return true
			}
		}
	}
	return false
}

// deconstruct copies v with every []byte replaced by a placeholder, and
// returns the bytes in placeholder order.
func deconstruct(v any, buffers *[][]byte) any {
	switch t := v.(type) {
	case []byte:
		ph := map[string]any{"_placeholder": true, "num": len(*buffers)}
		*buffers = append(*buffers, t)
		return ph
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = deconstruct(e, buffers)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = deconstruct(e, buffers)
		}
		return out
	}
	return v
}

// appendJSON appends v as JSON without HTML escaping (as JSON.stringify does).
// An event's arguments that append their own JSON (jsonw.Appender: a chat
// message) skip reflection: that encoding is on every broadcast's path.
func appendJSON(dst []byte, v any) ([]byte, error) {
	args, ok := v.([]any)
	if !ok || !slices.ContainsFunc(args, isAppender) {
		return jsonw.AppendValue(dst, v)
	}
	dst = append(dst, '[')
	for i, a := range args {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		switch a := a.(type) {
		case jsonw.Appender:
			dst, err = a.AppendJSON(dst)
		case string:
			dst = jsonw.AppendString(dst, a)
		default:
			dst, err = jsonw.AppendValue(dst, a)
		}
		if err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

func isAppender(v any) bool {
	_, ok := v.(jsonw.Appender)
	return ok
}

// AppendPacket appends the text encoding of p to dst and returns the
// attachments to send after it. Data holding []byte values (in []any and
// map[string]any) makes an EVENT or ACK binary, as Node's encoder does.
func AppendPacket(dst []byte, p *Packet) ([]byte, [][]byte, error) {
	data := p.Data
	t := p.Type
	var buffers [][]byte
	if (t == PacketEvent || t == PacketAck) && hasBinary(data) {
		data = deconstruct(data, &buffers)
		if t == PacketEvent {
			t = PacketBinaryEvent
		} else {
			t = PacketBinaryAck
		}
	}
	dst = append(dst, byte('0'+t))
	if t == PacketBinaryEvent || t == PacketBinaryAck {
		dst = strconv.AppendInt(dst, int64(len(buffers)), 10)
		dst = append(dst, '-')
	}
	if p.Nsp != "" && p.Nsp != "/" {
		dst = append(dst, p.Nsp...)
		dst = append(dst, ',')
	}
	if p.HasID {
		dst = strconv.AppendUint(dst, p.ID, 10)
	}
	if data != nil {
		var err error
		if dst, err = appendJSON(dst, data); err != nil {
			return dst, nil, err
		}
	}
	return dst, buffers, nil
}
