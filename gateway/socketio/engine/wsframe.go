package engine

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// WebSocket (RFC 6455) opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// WebSocket close codes used by the engine.
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	CloseProtocolError   = 1002
	CloseNoStatus        = 1005
	CloseInvalidPayload  = 1007
	CloseMessageTooBig   = 1009
	CloseInternalError   = 1011
	maxControlPayload    = 125
	maxFrameHeaderLength = 14 // 2 + 8 (length) + 4 (mask)
)

// FrameError is a WebSocket protocol violation found by the frame reader;
// Code is the close code to answer with.
type FrameError struct {
	Code   uint16
	Reason string
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("websocket: %s (close %d)", e.Reason, e.Code)
}

func frameErr(code uint16, format string, args ...any) *FrameError {
	return &FrameError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// frameHandler receives what a frameReader parses, in order.
type frameHandler interface {
	// onMessage gets one complete data message. data is valid only during the call.
	onMessage(binary bool, data []byte)
	// onOversize gets a message that was over the reader's limit and was
	// skipped as it streamed: prefix holds its first bytes, size its length.
	onOversize(binary bool, prefix []byte, size int64)
	// onControl gets a ping, pong or close frame (a close frame's code and
	// reason already validated). payload is valid only during the call.
	onControl(op byte, payload []byte)
}

// frameReader parses the frames a client sends (masked, possibly fragmented,
// control frames interleaved) from a byte stream fed in arbitrary pieces. It is
// a pure codec: no I/O, no goroutine, memory bounded by its limits. A message
// that arrives whole in one piece is unmasked in place and handed over without
// a copy; a fragmented one is assembled up to limit bytes. A message over limit
// is not kept: its first prefix bytes are, the rest is skipped as it streams,
// and it is reported with onOversize (up to discard bytes; beyond, an error).
type frameReader struct {
	*frameLimits // shared by every connection of a server

	hdr  [maxFrameHeaderLength]byte
	hdrN uint8

	inFrame bool
	op      byte
	fin     bool
	maskPos uint8
	mask    [4]byte
	left    int64 // payload bytes of the current frame still to read

	msgOp   byte // opcode of the data message in progress (0: none)
	over    bool // the message in progress is over limit
	msgSize int64
	msg     []byte // assembled message (or its prefix when over)
	ctl     []byte // payload of the control frame in progress
}

// frameLimits bound a frameReader.
type frameLimits struct {
	limit   int   // largest message kept whole
	discard int64 // largest message skipped and reported; beyond it the stream is refused
	prefix  int   // bytes kept of a skipped message
}

func newFrameReader(limit int, discard int64, prefix int) frameReader {
	return frameReader{frameLimits: &frameLimits{limit: limit, discard: discard, prefix: prefix}}
}

// feed parses data (which it may modify: payloads are unmasked in place) and
// calls h for every message and control frame completed in it. After an error
// the reader must not be used again.
func (r *frameReader) feed(data []byte, h frameHandler) error {
	for len(data) > 0 {
		if !r.inFrame {
			var err error
			data, err = r.readHeader(data)
			if err != nil {
				return err
			}
			if !r.inFrame {
				return nil // header incomplete: wait for more
			}
			if r.left == 0 {
				if err := r.endFrame(h); err != nil {
					return err
				}
				continue
			}
		}
		n := int64(len(data))
		if n > r.left {
			n = r.left
		}
		chunk := data[:n]
		data = data[n:]
		r.unmask(chunk)
		whole := r.left == n
		r.left -= n
		switch {
		case r.op >= opClose:
			r.ctl = append(r.ctl, chunk...)
		case r.over:
			if keep := r.prefix - len(r.msg); keep > 0 {
				r.msg = append(r.msg, chunk[:min(keep, len(chunk))]...)
			}
		case whole && r.fin && len(r.msg) == 0 && r.msgSize == n:
			// The whole message is in this piece: hand it over without a copy.
			if err := r.deliver(h, chunk); err != nil {
				return err
			}
			r.inFrame, r.hdrN = false, 0
			continue
		default:
			r.msg = append(r.msg, chunk...)
		}
		if r.left == 0 {
			if err := r.endFrame(h); err != nil {
				return err
			}
		}
	}
	return nil
}

// readHeader consumes header bytes; once the header is complete it validates
// it and starts the frame.
func (r *frameReader) readHeader(data []byte) ([]byte, error) {
	need := 2
	for {
		if int(r.hdrN) < need {
			n := copy(r.hdr[r.hdrN:need], data)
			r.hdrN += uint8(n)
			data = data[n:]
			if int(r.hdrN) < need {
				return data, nil
			}
		}
		if need == 2 {
			switch r.hdr[1] & 0x7f {
			case 126:
				need = 2 + 2 + 4
			case 127:
				need = 2 + 8 + 4
			default:
				need = 2 + 4
			}
			if r.hdr[1]&0x80 == 0 {
				return data, frameErr(CloseProtocolError, "client frame not masked")
			}
			continue
		}
		break
	}
	b0, b1 := r.hdr[0], r.hdr[1]
	if b0&0x70 != 0 {
		return data, frameErr(CloseProtocolError, "reserved bits set")
	}
	op := b0 & 0x0f
	fin := b0&0x80 != 0
	var length uint64
	switch b1 & 0x7f {
	case 126:
		length = uint64(binary.BigEndian.Uint16(r.hdr[2:4]))
		copy(r.mask[:], r.hdr[4:8])
	case 127:
		length = binary.BigEndian.Uint64(r.hdr[2:10])
		copy(r.mask[:], r.hdr[10:14])
		if length>>63 != 0 {
			return data, frameErr(CloseProtocolError, "frame length out of range")
		}
	default:
		length = uint64(b1 & 0x7f)
		copy(r.mask[:], r.hdr[2:6])
	}
	switch op {
	case opClose, opPing, opPong:
		if !fin {
			return data, frameErr(CloseProtocolError, "fragmented control frame")
		}
		if length > maxControlPayload {
			return data, frameErr(CloseProtocolError, "control frame too long")
		}
	case opText, opBinary:
		if r.msgOp != 0 {
			return data, frameErr(CloseProtocolError, "new message inside a fragmented one")
		}
		r.msgOp, r.msgSize, r.over = op, 0, false
	case opContinuation:
		if r.msgOp == 0 {
			return data, frameErr(CloseProtocolError, "continuation without a message")
		}
	default:
		return data, frameErr(CloseProtocolError, "reserved opcode %d", op)
	}
	if op < opClose {
		r.msgSize += int64(length)
		if r.msgSize > r.discard || r.msgSize < 0 {
			return data, frameErr(CloseMessageTooBig, "message of %d bytes or more", r.msgSize)
		}
		if !r.over && r.msgSize > int64(r.limit) {
			r.over = true
			if len(r.msg) > r.prefix {
				r.msg = r.msg[:r.prefix]
			}
		}
	}
	r.op, r.fin, r.left, r.maskPos = op, fin, int64(length), 0
	r.inFrame = true
	return data, nil
}

func (r *frameReader) unmask(b []byte) {
	pos := r.maskPos
	for i := range b {
		b[i] ^= r.mask[pos&3]
		pos++
	}
	r.maskPos = pos & 3
}

// endFrame finishes the current frame: a control frame is handed over, the
// last frame of a message completes it.
func (r *frameReader) endFrame(h frameHandler) error {
	r.inFrame, r.hdrN = false, 0
	if r.op >= opClose {
		p := r.ctl
		r.ctl = r.ctl[:0]
		if r.op == opClose {
			if err := validClosePayload(p); err != nil {
				return err
			}
		}
		h.onControl(r.op, p)
		return nil
	}
	if !r.fin {
		return nil
	}
	if r.over {
		h.onOversize(r.msgOp == opBinary, r.msg, r.msgSize)
		r.resetMessage()
		return nil
	}
	return r.deliver(h, r.msg)
}

func (r *frameReader) deliver(h frameHandler, data []byte) error {
	binary := r.msgOp == opBinary
	if !binary && !utf8.Valid(data) {
		return frameErr(CloseInvalidPayload, "text message is not UTF-8")
	}
	h.onMessage(binary, data)
	r.resetMessage()
	return nil
}

func (r *frameReader) resetMessage() {
	r.msgOp, r.msgSize, r.over = 0, 0, false
	if cap(r.msg) > 4096 {
		r.msg = nil // do not keep a large buffer on an idle connection
	} else {
		r.msg = r.msg[:0]
	}
}

// validClosePayload checks a close frame: empty, or a valid code and UTF-8 reason.
func validClosePayload(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if len(p) == 1 {
		return frameErr(CloseProtocolError, "close frame of one byte")
	}
	code := binary.BigEndian.Uint16(p)
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
	default:
		return frameErr(CloseProtocolError, "invalid close code %d", code)
	}
	if !utf8.Valid(p[2:]) {
		return frameErr(CloseInvalidPayload, "close reason is not UTF-8")
	}
	return nil
}

// frameHeaderLen is the length of a server (unmasked) frame header for n payload bytes.
func frameHeaderLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xffff:
		return 4
	default:
		return 10
	}
}

// appendFrameHeader appends the header of an unmasked, final frame.
func appendFrameHeader(dst []byte, op byte, n int) []byte {
	b0 := 0x80 | op
	switch {
	case n < 126:
		return append(dst, b0, byte(n))
	case n <= 0xffff:
		return append(dst, b0, 126, byte(n>>8), byte(n))
	default:
		return append(dst, b0, 127, byte(uint64(n)>>56), byte(uint64(n)>>48), byte(uint64(n)>>40),
			byte(uint64(n)>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// appendFrame appends an unmasked, final frame.
func appendFrame(dst []byte, op byte, payload []byte) []byte {
	dst = appendFrameHeader(dst, op, len(payload))
	return append(dst, payload...)
}

// appendCloseFrame appends a close frame with a code (none for CloseNoStatus).
func appendCloseFrame(dst []byte, code uint16) []byte {
	if code == CloseNoStatus {
		return append(dst, 0x80|opClose, 0)
	}
	return append(dst, 0x80|opClose, 2, byte(code>>8), byte(code))
}
