package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/fitmate/commserver/internal/jsonw"
)

// The adapter's Redis format, version 1 (docs/cluster.md, "Socket.IO
// adapter"). Every stream entry is a flat list of fields; values are Redis
// strings (binary-safe: packet text and attachments are stored as the bytes
// the encoder produced, never re-marshalled). Receivers ignore fields they do
// not know and kinds they do not know, so a later release may add both
// without bumping the version.
//
//	v        "1"                       every entry
//	kind     see the kind constants    every entry
//	from     the publishing pod's id   every entry
//	seq      the pod's publish counter every entry (decimal; increasing per pod)
//	rooms    JSON array of rooms       selections (absent: every socket)
//	except   JSON array of rooms       selections (absent: none)
//	volatile "1"                       broadcasts that may be dropped, never replayed
//	text     Socket.IO packet text     broadcast, broadcast-ack, server-emit, ack
//	bins     attachment count          when there are attachments
//	bin0..   attachment bytes          one field per attachment
//	req      request id                requests and their replies
//	to       pod id                    replies: the requesting pod
//	count    decimal                   ack-count: sockets reached on the replying pod
//	close    "1"                       disconnect: close the whole connection
//	target   JSON array of rooms       join, leave: the rooms to join or leave
//	sockets  JSON array                fetch-reply: [{"id","rooms","data","address"}]
const (
	kindBroadcast    = "broadcast"     // deliver to the selected sockets (recoverable unless volatile)
	kindBroadcastAck = "broadcast-ack" // deliver with an ack id; pods answer ack-count then ack entries
	kindAckCount     = "ack-count"     // a pod's count of sockets reached by a broadcast-ack
	kindAck          = "ack"           // one socket's answer to a broadcast-ack (text: an EVENT of the answer's args)
	kindJoin         = "join"          // the selected sockets join target
	kindLeave        = "leave"         // the selected sockets leave target
	kindDisconnect   = "disconnect"    // the selected sockets disconnect
	kindServerEmit   = "server-emit"   // an event for the other pods' namespace (text: an EVENT)
	kindFetch        = "fetch"         // describe the selected sockets
	kindFetchReply   = "fetch-reply"   // a pod's sockets for a fetch
)

// errEntryVersion marks an entry of another format version (ignored).
var errEntryVersion = errors.New("adapter entry: unknown format version")

// entry is one stream entry, decoded.
type entry struct {
	Kind     string
	From     string
	Seq      uint64
	Rooms    []string
	Except   []string
	Volatile bool
	Text     []byte
	Bins     [][]byte
	Req      string
	To       string
	Count    int
	Close    bool
	Target   []string
	Sockets  []socketInfo
}

// socketInfo is a socket as fetch-reply describes it.
type socketInfo struct {
	ID      string          `json:"id"`
	Rooms   []string        `json:"rooms"`
	Data    json.RawMessage `json:"data,omitempty"`
	Address string          `json:"address,omitempty"`
}

// fields returns the entry as XADD's field-value list.
func (e *entry) fields() []any {
	f := make([]any, 0, 16+2*len(e.Bins))
	f = append(f, "v", strconv.Itoa(KeyLayoutVersion), "kind", e.Kind, "from", e.From,
		"seq", strconv.FormatUint(e.Seq, 10))
	if len(e.Rooms) > 0 {
		f = append(f, "rooms", jsonStrings(e.Rooms))
	}
	if len(e.Except) > 0 {
		f = append(f, "except", jsonStrings(e.Except))
	}
	if e.Volatile {
		f = append(f, "volatile", "1")
	}
	if e.Text != nil {
		f = append(f, "text", e.Text)
	}
	if len(e.Bins) > 0 {
		f = append(f, "bins", strconv.Itoa(len(e.Bins)))
		for i, b := range e.Bins {
			f = append(f, "bin"+strconv.Itoa(i), b)
		}
	}
	if e.Req != "" {
		f = append(f, "req", e.Req)
	}
	if e.To != "" {
		f = append(f, "to", e.To)
	}
	if e.Kind == kindAckCount {
		f = append(f, "count", strconv.Itoa(e.Count))
	}
	if e.Close {
		f = append(f, "close", "1")
	}
	if e.Target != nil {
		f = append(f, "target", jsonStrings(e.Target))
	}
	if e.Sockets != nil {
		b, _ := json.Marshal(e.Sockets)
		f = append(f, "sockets", b)
	}
	return f
}

// size is about what the entry weighs in the publish queue.
func (e *entry) size() int {
	n := 128 + len(e.Text)
	for _, b := range e.Bins {
		n += len(b) + 8
	}
	for _, r := range e.Rooms {
		n += len(r) + 3
	}
	for _, r := range e.Except {
		n += len(r) + 3
	}
	return n
}

func jsonStrings(s []string) []byte {
	return jsonw.AppendStrings(make([]byte, 0, 2+16*len(s)), s)
}

// decodeEntry reads an entry as XRANGE or XREAD return it. An entry of
// another version gives errEntryVersion; a broken one another error. Unknown
// fields are ignored; an unknown kind decodes (the receiver ignores it).
func decodeEntry(values map[string]any) (entry, error) {
	var e entry
	str := func(k string) string {
		s, _ := values[k].(string)
		return s
	}
	if v := str("v"); v != strconv.Itoa(KeyLayoutVersion) {
		return e, fmt.Errorf("%w: %q", errEntryVersion, v)
	}
	e.Kind, e.From = str("kind"), str("from")
	if e.Kind == "" || e.From == "" {
		return e, errors.New("adapter entry: no kind or from")
	}
	var err error
	if e.Seq, err = strconv.ParseUint(str("seq"), 10, 64); err != nil {
		return e, fmt.Errorf("adapter entry: seq: %w", err)
	}
	for _, f := range []struct {
		name string
		dst  *[]string
	}{{"rooms", &e.Rooms}, {"except", &e.Except}, {"target", &e.Target}} {
		if s := str(f.name); s != "" {
			if *f.dst, err = decodeStrings(s); err != nil {
				return e, fmt.Errorf("adapter entry: %s: %w", f.name, err)
			}
		}
	}
	e.Volatile = str("volatile") == "1"
	e.Close = str("close") == "1"
	if t, ok := values["text"].(string); ok {
		e.Text = []byte(t)
	}
	if s := str("bins"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 1024 {
			return e, fmt.Errorf("adapter entry: bins %q", s)
		}
		e.Bins = make([][]byte, n)
		for i := range n {
			b, ok := values["bin"+strconv.Itoa(i)].(string)
			if !ok {
				return e, fmt.Errorf("adapter entry: bin%d missing", i)
			}
			e.Bins[i] = []byte(b)
		}
	}
	e.Req, e.To = str("req"), str("to")
	if s := str("count"); s != "" {
		if e.Count, err = strconv.Atoi(s); err != nil {
			return e, fmt.Errorf("adapter entry: count: %w", err)
		}
	}
	if s := str("sockets"); s != "" {
		if err := json.Unmarshal([]byte(s), &e.Sockets); err != nil {
			return e, fmt.Errorf("adapter entry: sockets: %w", err)
		}
	}
	return e, nil
}

// storedSession is a persisted session (key <base>session:<nsp>:<pid>, JSON).
type storedSession struct {
	V     int             `json:"v"`
	SID   string          `json:"sid"`
	PID   string          `json:"pid"`
	Rooms []string        `json:"rooms"`
	Data  json.RawMessage `json:"data,omitempty"`
	// Live: written while the socket was connected, by Pod (adapter_live.go).
	// Added within v1: a release that does not know it restores a live
	// session as an ordinary one.
	Live bool   `json:"live,omitempty"`
	Pod  string `json:"pod,omitempty"`
}

// streamID is a Redis stream id, for comparisons.
type streamID struct{ ms, seq uint64 }

func parseStreamID(s string) (streamID, bool) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return streamID{}, false
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil {
		return streamID{}, false
	}
	return streamID{ms, seq}, true
}

func (x streamID) less(y streamID) bool {
	return x.ms < y.ms || (x.ms == y.ms && x.seq < y.seq)
}

func (x streamID) String() string {
	return strconv.FormatUint(x.ms, 10) + "-" + strconv.FormatUint(x.seq, 10)
}

// decodeStrings decodes a JSON array of strings: by hand when no string
// holds an escape (room names and socket ids: every entry a pod reads has
// one), else through encoding/json. A pod decodes every entry of the
// stream, its own included, so this was ~7 % of a receiving pod's CPU.
func decodeStrings(s string) ([]string, error) {
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' && !strings.ContainsRune(s, '\\') {
		inner := s[1 : len(s)-1]
		if inner == "" {
			return []string{}, nil
		}
		out := make([]string, 0, 1+strings.Count(inner, ","))
		ok := true
		for inner != "" {
			if len(inner) < 2 || inner[0] != '"' {
				ok = false
				break
			}
			end := strings.IndexByte(inner[1:], '"')
			if end < 0 {
				ok = false
				break
			}
			v := inner[1 : 1+end]
			if !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 }) {
				ok = false
				break
			}
			out = append(out, v)
			inner = inner[2+end:]
			if inner == "" {
				break
			}
			if inner[0] != ',' || len(inner) == 1 {
				ok = false
				break
			}
			inner = inner[1:]
		}
		if ok {
			return out, nil
		}
	}
	var out []string
	err := json.Unmarshal([]byte(s), &out)
	return out, err
}
