package hashring

import (
	"net"
	"strings"
	"testing"
)

func FuzzParsePeer(f *testing.F) {
	for _, s := range []string{"10.0.0.1:9090", "node-a=10.0.0.1:9090", "[fd00::1]:9090", "a=b=c:1", "=x:1", "x:0", "x:65536", ":1", "host", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePeer(s)
		if err != nil {
			return
		}
		host, _, err := net.SplitHostPort(p.addr)
		if err != nil || host == "" {
			t.Fatalf("parsePeer(%q) accepted address %q: %v", s, p.addr, err)
		}
		if p.name != "" && p.name+"="+p.addr != s || p.name == "" && (p.addr != s || strings.HasPrefix(s, "=")) {
			t.Fatalf("parsePeer(%q) = %+v, which does not spell the input", s, p)
		}
	})
}
