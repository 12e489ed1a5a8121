package jsonw

import (
	"bytes"
	"encoding/json"
	"testing"
)

func stdString(t testing.TB, s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "ctl\x00\x01\x1f\b\f\n\r\t", "<a href='x'>&amp;</a>",
		"한국어 운동", "emoji 🏋️", "line\u2028sep\u2029", "bad\xff\xfeutf8", "\xed\xa0\x80 surrogate", "trailing\xe2\x82"} {
		if got, want := AppendString([]byte("x"), s), append([]byte("x"), stdString(t, s)...); !bytes.Equal(got, want) {
			t.Errorf("AppendString(%q) = %s, encoding/json writes %s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("hello")
	f.Add("\u2028\x00\"\\\xff")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := AppendString(nil, s), stdString(t, s); !bytes.Equal(got, want) {
			t.Fatalf("AppendString(%q) = %s, encoding/json writes %s", s, got, want)
		}
	})
}

func TestAppendValue(t *testing.T) {
	got, err := AppendValue([]byte("["), map[string]any{"a": "<b>", "n": 1})
	if err != nil || string(got) != `[{"a":"<b>","n":1}` {
		t.Fatalf("AppendValue = %s, %v", got, err)
	}
	if _, err := AppendValue(nil, func() {}); err == nil {
		t.Fatal("AppendValue of a func did not fail")
	}
}

func TestAppendStrings(t *testing.T) {
	for _, ss := range [][]string{nil, {}, {"a"}, {"a\"b", "<c>", "\xff"}} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		v := ss
		if v == nil {
			v = []string{} // AppendStrings writes [] for nil, as the message's readBy always did
		}
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		if got := AppendStrings(nil, ss); !bytes.Equal(got, bytes.TrimSuffix(want.Bytes(), []byte{'\n'})) {
			t.Errorf("AppendStrings(%q) = %s, want %s", ss, got, want.Bytes())
		}
	}
}
