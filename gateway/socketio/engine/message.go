package engine

import (
	"encoding/base64"
	"sync"
)

// headroom is reserved in front of a message's text so that the WebSocket
// frame header can be written there once the length is known.
const headroom = 10

// Message is one or more Engine.IO message packets (a Socket.IO packet and its
// binary attachments) encoded once, as WebSocket frames, for any number of
// sessions: a WebSocket session appends the frames as they are, a polling
// session turns them into its payload. A Message must not change once sent.
type Message struct {
	frames []byte
}

// TextBuffer returns a buffer to build a text message in: append the
// packet's text to it, then call FinishText. The buffer starts with room for
// the frame header and the Engine.IO message type.
func TextBuffer(capacity int) []byte {
	b := make([]byte, headroom+1, headroom+1+capacity)
	b[headroom] = byte(PacketMessage)
	return b
}

// FinishText turns a buffer from TextBuffer (with the text appended) into a
// Message without copying the text.
func FinishText(b []byte) *Message {
	n := len(b) - headroom
	h := frameHeaderLen(n)
	start := headroom - h
	appendFrameHeader(b[start:start], opText, n)
	return &Message{frames: b[start:]}
}

// NewTextMessage makes a Message of one text message packet (copying text).
func NewTextMessage(text []byte) *Message {
	b := TextBuffer(len(text))
	return FinishText(append(b, text...))
}

// AppendBinary adds a binary message packet (an attachment) after the
// message's packets.
func (m *Message) AppendBinary(data []byte) {
	m.frames = appendFrame(m.frames, opBinary, data)
}

// Frames returns the message as WebSocket frames, as a WebSocket session
// sends it. It must not be modified.
func (m *Message) Frames() []byte { return m.frames }

// Size is the number of bytes the message adds to a WebSocket connection.
func (m *Message) Size() int { return len(m.frames) }

// appendPacketFrame appends one Engine.IO packet as a text frame: type then data.
func appendPacketFrame(dst []byte, t PacketType, data []byte) []byte {
	dst = appendFrameHeader(dst, opText, 1+len(data))
	dst = append(dst, byte(t))
	return append(dst, data...)
}

// appendMessageFrame appends one message packet: text ("4" + data) or binary.
func appendMessageFrame(dst []byte, data []byte, binary bool) []byte {
	if binary {
		return appendFrame(dst, opBinary, data)
	}
	return appendPacketFrame(dst, PacketMessage, data)
}

// framesToPayload turns server frames (as queued for a session) into a
// long-polling payload: text frames carry an Engine.IO packet as it is,
// binary frames become "b" + base64. Other frames are WebSocket-only.
func framesToPayload(dst, frames []byte) []byte {
	for len(frames) >= 2 {
		op := frames[0] & 0x0f
		n := int(frames[1] & 0x7f)
		h := 2
		switch n {
		case 126:
			n = int(frames[2])<<8 | int(frames[3])
			h = 4
		case 127:
			n = 0
			for _, c := range frames[2:10] {
				n = n<<8 | int(c)
			}
			h = 10
		}
		payload := frames[h : h+n]
		frames = frames[h+n:]
		switch op {
		case opText:
		case opBinary:
		default:
			continue
		}
		if len(dst) > 0 {
			dst = append(dst, recordSeparator)
		}
		if op == opBinary {
			dst = append(dst, 'b')
			dst = base64.StdEncoding.AppendEncode(dst, payload)
		} else {
			dst = append(dst, payload...)
		}
	}
	return dst
}

// bufPool holds write buffers between flushes, so that an idle connection
// keeps none.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuf() []byte { return (*bufPool.Get().(*[]byte))[:0] }

func putBuf(b []byte) {
	if cap(b) > 64<<10 || cap(b) == 0 {
		return
	}
	b = b[:0]
	bufPool.Put(&b)
}

// sharedPool holds the slices of shared messages sessions queue.
var sharedPool = sync.Pool{New: func() any { s := make([]*Message, 0, 32); return &s }}

func getShared() []*Message { return (*sharedPool.Get().(*[]*Message))[:0] }

// putShared returns ms to the pool, its references cleared: a message's
// frames are not kept alive by a slice waiting in the pool.
func putShared(ms []*Message) {
	if cap(ms) == 0 || cap(ms) > 4096 {
		return
	}
	clear(ms)
	ms = ms[:0]
	sharedPool.Put(&ms)
}
