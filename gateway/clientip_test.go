package gateway

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"direct client", "203.0.113.7:5000", nil, "203.0.113.7"},
		{"direct client cannot spoof", "203.0.113.7:5000", []string{"1.2.3.4"}, "203.0.113.7"},
		{"through nginx", "127.0.0.1:40000", []string{"203.0.113.7"}, "203.0.113.7"},
		{"spoofed hop left of the real one", "127.0.0.1:40000", []string{"1.2.3.4, 203.0.113.7"}, "203.0.113.7"},
		{"two trusted proxies", "127.0.0.1:40000", []string{"203.0.113.7, 10.1.2.3"}, "203.0.113.7"},
		{"headers joined", "127.0.0.1:40000", []string{"1.2.3.4", "203.0.113.7"}, "203.0.113.7"},
		{"garbage hop", "127.0.0.1:40000", []string{"203.0.113.7, bogus"}, "127.0.0.1"},
		{"trusted proxy without header", "10.0.0.5:40000", nil, "10.0.0.5"},
		{"all hops trusted", "127.0.0.1:40000", []string{"10.0.0.9"}, "10.0.0.9"},
		{"IPv6 loopback proxy", "[::1]:40000", []string{"2001:db8::1"}, "2001:db8::1"},
		{"IPv4-mapped peer", "[::ffff:203.0.113.7]:5000", nil, "203.0.113.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientIP(r, trusted); got != tt.want {
				t.Errorf("clientIP = %s, want %s", got, tt.want)
			}
		})
	}
	r := &http.Request{RemoteAddr: "127.0.0.1:1", Header: http.Header{"X-Forwarded-For": {"203.0.113.7"}}}
	if got := clientIP(r, nil); got != "127.0.0.1" {
		t.Errorf("no trusted proxies: %s", got)
	}
}
