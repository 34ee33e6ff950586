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
// 65535; an IPv6 host is written in brackets ("[fd00::1]:9090"); a name must be a valid
// member name (ValidateName), since a member answering with any other never joins.
func parsePeer(s string) (peer, error) {
	var p peer
	addr := s
	if name, rest, ok := strings.Cut(s, "="); ok {
		if name == "" {
			return p, fmt.Errorf("peer %q: empty name before '='; write host:port or name=host:port", s)
		}
		if err := ValidateName(name); err != nil {
			return p, fmt.Errorf("peer %q: %w", s, err)
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

// entryError is the problem of one entry of a peer list.
type entryError struct {
	index int // of the entry in its list, from 0
	err   error
}

// checkPeerList reads every entry of one list (cluster.peers, a peers file) as parsePeer
// does and checks them together: an address listed twice, or a name given two addresses,
// is an error at the later entry. It returns the problems in list order, none when the list
// is sound. Addresses are compared as written.
func checkPeerList(entries []string) []entryError {
	var errs []entryError
	seen := peerList{addrOfName: map[string]string{}, entryOfAddr: map[string]string{}}
	for i, s := range entries {
		p, err := parsePeer(s)
		if err == nil {
			err = seen.add(s, p)
		}
		if err != nil {
			errs = append(errs, entryError{index: i, err: err})
		}
	}
	return errs
}

// peerList is what the earlier entries of a list said, to check each new one against.
type peerList struct {
	addrOfName  map[string]string // a name given in the name= form -> its address
	entryOfAddr map[string]string // an address -> the entry that listed it first
}

// add checks p, written s, against the earlier entries and records it: its address even
// when its name is taken, so that a repeat of the entry is reported as one.
func (l *peerList) add(s string, p peer) error {
	if first, ok := l.entryOfAddr[p.addr]; ok {
		if first == s {
			return fmt.Errorf("peer %q is listed twice; remove one", s)
		}
		return fmt.Errorf("peer %q: the address %s is already listed as %q; list each address once", s, p.addr, first)
	}
	l.entryOfAddr[p.addr] = s
	if p.name == "" {
		return nil
	}
	if addr, ok := l.addrOfName[p.name]; ok {
		return fmt.Errorf("peer %q: the name %s is already given to %s; a member has one address", s, p.name, addr)
	}
	l.addrOfName[p.name] = p.addr
	return nil
}
