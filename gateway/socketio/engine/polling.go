package engine

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

// servePoll answers a long-polling GET: at once with what is queued, or
// when something is (a ping at the latest). One GET at a time: a second
// one while the first waits is an error that closes the session (Node's
// "overlap from client"); the first is answered with the close packet. A GET
// that races a close is always answered.
func (s *Session) servePoll(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		abortRequest(w, ErrUnknownSID, "")
		return
	}
	if s.transport != transportPolling {
		s.mu.Unlock()
		s.refuseStalePoll(w)
		return
	}
	if s.poll != nil {
		s.mu.Unlock()
		s.close(ReasonTransportError, false)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if s.state == stateOpen && len(s.pending) == 0 {
		// Park until something is queued. During an upgrade whose probe is
		// answered, a real client sends no poll; one that comes is released
		// with a noop shortly (Node: within 100 ms), or refused if the upgrade
		// completes first, as if it had come after it.
		var noop <-chan time.Time
		if s.upgrading && s.probed {
			t := time.NewTimer(50 * time.Millisecond)
			defer t.Stop()
			noop = t.C
		}
		ch := make(chan struct{}, 1)
		s.poll = ch
		s.mu.Unlock()
		select {
		case <-ch:
		case <-noop:
		case <-r.Context().Done():
			s.mu.Lock()
			parked := s.poll == ch
			if parked {
				s.poll = nil
			}
			s.mu.Unlock()
			if parked {
				// Node: "poll connection closed prematurely".
				s.close(ReasonTransportError, false)
				return
			}
			// Woken at the same moment: answer anyway.
		}
		s.mu.Lock()
		if s.poll == ch {
			s.poll = nil
		}
		if s.transport != transportPolling {
			s.mu.Unlock()
			s.refuseStalePoll(w)
			return
		}
	}
	out, finished := s.pollReplyLocked()
	s.mu.Unlock()
	if finished {
		s.srv.remove(s)
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(out)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
	putBuf(out)
}

// staleSettle is how long after an upgrade a poll on the session is held
// before it is refused: the WebSocket's own frames (the probe's answer) then
// reach the client first, as from a server that handles requests in order.
// A real client sends no poll after it upgraded.
const staleSettle = 100 * time.Millisecond

// refuseStalePoll answers a poll on a session that now uses WebSocket:
// 400 (Node: "TRANSPORT_MISMATCH").
func (s *Session) refuseStalePoll(w http.ResponseWriter) {
	if d := time.Until(time.Unix(0, s.upgradedAt.Load()).Add(staleSettle)); d > 0 {
		time.Sleep(d)
	}
	abortRequest(w, ErrBadRequest, "")
}

// pollReplyLocked builds a poll's answer: the queued packets as a payload,
// then the close packet when the session closed (a noop when the client
// closed it), or a noop when there is nothing (released for an upgrade).
func (s *Session) pollReplyLocked() (out []byte, finished bool) {
	out = getBuf()
	out = framesToPayload(out, s.pending)
	putBuf(s.pending)
	s.pending = nil
	if len(out) > 0 {
		s.pingDeliveredLocked()
	}
	if s.state != stateOpen {
		if s.pollNoop {
			if len(out) == 0 {
				out = append(out, byte(PacketNoop))
			}
		} else {
			if len(out) > 0 {
				out = append(out, recordSeparator)
			}
			out = append(out, byte(PacketClose))
		}
		if s.state == stateClosing {
			s.state = stateClosed
			if s.aux != nil {
				s.aux.Stop()
			}
			finished = true
		}
		return out, finished
	}
	if len(out) == 0 {
		out = append(out, byte(PacketNoop))
	}
	return out, false
}

var errBodyTooLarge = errors.New("engine.io: body over the discard limit")

// serveData handles a long-polling POST: its payload's packets in order. A
// malformed payload closes the session with 400 (the packets before the bad
// one are handled, as in Node). A body over MaxPayload is not kept: its
// prefix goes to OnOversize, which may keep the session (then "ok"); else 413
// and the session closes. One POST at a time.
func (s *Session) serveData(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.state != stateOpen {
		s.mu.Unlock()
		abortRequest(w, ErrUnknownSID, "")
		return
	}
	if s.posting || r.Header.Get("Content-Type") == "application/octet-stream" {
		// Node: "data request overlap from client" / "invalid content".
		s.mu.Unlock()
		s.close(ReasonTransportError, false)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.posting = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.posting = false
		s.mu.Unlock()
	}()

	o := &s.srv.opts
	body, over, err := readBody(r.Body, r.ContentLength, o.MaxPayload, o.OversizePrefix, o.OversizeDiscard)
	switch {
	case errors.Is(err, errBodyTooLarge):
		s.srv.stats.oversize.Add(1)
		s.close(ReasonTransportError, false)
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		// Node: "data request connection closed prematurely".
		s.close(ReasonTransportError, false)
		w.WriteHeader(http.StatusBadRequest)
		return
	case over:
		if !s.onOversize(body, false) {
			s.close(ReasonTransportError, false)
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		writeOK(w)
		return
	}
	defer putBuf(body)
	packets, err := DecodePayload(body, 0)
	for _, p := range packets {
		if !s.onPacket(p) {
			break
		}
	}
	if err != nil {
		s.close(ReasonParseError, false)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	writeOK(w)
}

func writeOK(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", "2")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok"))
}

// readBody reads a POST body of at most max bytes. A longer one is reported
// as over with its first prefix bytes, the rest skipped unread into memory;
// one longer than discard is errBodyTooLarge (not read further).
func readBody(r io.Reader, contentLength int64, max, prefix int, discard int64) (body []byte, over bool, err error) {
	if contentLength > int64(max) {
		if contentLength > discard {
			return nil, false, errBodyTooLarge
		}
		pre := make([]byte, min(int64(prefix), contentLength))
		n, err := io.ReadFull(r, pre)
		if err != nil {
			return nil, false, err
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return nil, false, err
		}
		return pre[:n], true, nil
	}
	buf := getBuf()
	limited := io.LimitReader(r, int64(max)+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := limited.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			putBuf(buf)
			return nil, false, err
		}
	}
	if len(buf) <= max {
		return buf, false, nil
	}
	pre := append([]byte(nil), buf[:min(prefix, len(buf))]...)
	putBuf(buf)
	n, err := io.Copy(io.Discard, io.LimitReader(r, discard-int64(max)))
	if err != nil {
		return nil, false, err
	}
	if n == discard-int64(max) {
		return nil, false, errBodyTooLarge
	}
	return pre, true, nil
}
