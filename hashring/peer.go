package hashring

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// peer is one discovered entry: the address to probe and, when the source names it
// ("name=host:port"), the member name the address must answer with.
type peer struct {
	name string // "" when the source does not know it
	addr string
}

// parsePeer reads "host:port" or "name=host:port". The port must be a number from 1 to
// 65535; an IPv6 host is written in brackets ("[fd00::1]:9090").
func parsePeer(s string) (peer, error) {
	var p peer
	addr := s
	if name, rest, ok := strings.Cut(s, "="); ok {
		if name == "" {
			return p, fmt.Errorf("peer %q: empty name before '='; write host:port or name=host:port", s)
		}
		p.name, addr = name, rest
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return p, fmt.Errorf("peer %q: write host:port or name=host:port: %w", s, err)
	}
	if host == "" {
		return p, fmt.Errorf("peer %q: the host is empty", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return p, fmt.Errorf("peer %q: the port must be a number from 1 to 65535", s)
	}
	p.addr = addr
	return p, nil
}
