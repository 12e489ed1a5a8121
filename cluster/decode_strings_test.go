package cluster

import (
	"encoding/json"
	"slices"
	"testing"
)

func checkDecodeStrings(t *testing.T, s string) {
	got, err := decodeStrings(s)
	var want []string
	werr := json.Unmarshal([]byte(s), &want)
	if (err != nil) != (werr != nil) {
		t.Fatalf("decodeStrings(%q) error %v, encoding/json %v", s, err, werr)
	}
	if err == nil && (!slices.Equal(got, want) || (got == nil) != (want == nil)) {
		t.Fatalf("decodeStrings(%q) = %#v, encoding/json %#v", s, got, want)
	}
}

func TestDecodeStringsMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{`[]`, `["a"]`, `["room-1","room-2"]`, `[""]`, `["a",""]`, `null`, `[ "a" ]`,
		`["a\"b"]`, `["\u00e9"]`, `["한국"]`, "[\"\xff\"]", "[\"a\x01\"]", `["a",]`, `["a"`, `[a]`, `["a""b"]`,
		`["a",1]`, `[,"a"]`, `["a","b",`, `{}`, `""`, `["a"] `} {
		checkDecodeStrings(t, s)
	}
}

func FuzzDecodeStrings(f *testing.F) {
	for _, s := range []string{`[]`, `["a"]`, `["room-1","x"]`, `["a",]`, "[\"\xff\"]"} {
		f.Add(s)
	}
	f.Fuzz(checkDecodeStrings)
}

// What a pod writes, every pod reads back as it was.
func FuzzStringsRoundTrip(f *testing.F) {
	f.Add("room-1", "a\"b\\c")
	f.Add("", "<&>\u2028")
	f.Fuzz(func(t *testing.T, a, b string) {
		in := []string{a, b}
		got, err := decodeStrings(string(jsonStrings(in)))
		if err != nil {
			t.Fatalf("decode(%s): %v", jsonStrings(in), err)
		}
		var want []string
		if err := json.Unmarshal(jsonStrings(in), &want); err != nil || !slices.Equal(got, want) {
			t.Fatalf("round trip of %q: %q, encoding/json reads %q (%v)", in, got, want, err)
		}
	})
}
