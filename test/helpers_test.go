package test

import (
	"net/url"
	"testing"
)

// ackError returns the error object of a failed acknowledgement, or nil when it succeeded.
func ackError(ack map[string]any) map[string]any {
	if ack["ok"] == true {
		return nil
	}
	e, _ := ack["error"].(map[string]any)
	if e == nil {
		e = map[string]any{"code": "(no error object)", "ack": ack}
	}
	return e
}

// wantOK fails unless ack is { ok: true, ... }.
func wantOK(t testing.TB, what string, ack map[string]any) {
	t.Helper()
	if ack["ok"] != true {
		t.Fatalf("%s: ack %v, want ok", what, ack)
	}
}

// wantCode fails unless ack is { ok: false, error: { code, message } } with that code and a message.
func wantCode(t testing.TB, what string, ack map[string]any, code string) map[string]any {
	t.Helper()
	e := ackError(ack)
	if e == nil || e["code"] != code {
		t.Fatalf("%s: ack %v, want error code %s", what, ack, code)
	}
	if m, _ := e["message"].(string); m == "" {
		t.Fatalf("%s: ack error %v has no message", what, e)
	}
	return e
}

// send posts a message with an ack and returns the stored message.
func send(t testing.TB, c *js, name, room, text string, extra ...any) map[string]any {
	t.Helper()
	p := map[string]any{"chatRoomId": room, "message": text}
	for i := 0; i+1 < len(extra); i += 2 {
		p[extra[i].(string)] = extra[i+1]
	}
	ack := c.emitAck(name, "sendMessage", p)
	wantOK(t, name+" sendMessage "+text, ack)
	m, _ := ack["message"].(map[string]any)
	if m == nil {
		t.Fatalf("sendMessage ack has no message: %v", ack)
	}
	return m
}

// messagesOf reads a REST history page's messages.
func messagesOf(t testing.TB, body map[string]any) []map[string]any {
	t.Helper()
	list, ok := body["messages"].([]any)
	if !ok {
		t.Fatalf("no messages in %v", body)
	}
	out := make([]map[string]any, len(list))
	for i, m := range list {
		out[i] = m.(map[string]any)
	}
	return out
}

// texts lists the message field of each message.
func texts(list []any) []string {
	out := make([]string, len(list))
	for i, m := range list {
		out[i], _ = m.(map[string]any)["message"].(string)
	}
	return out
}

func textsOf(list []map[string]any) []string {
	out := make([]string, len(list))
	for i, m := range list {
		out[i], _ = m["message"].(string)
	}
	return out
}

func query(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return "?" + v.Encode()
}
