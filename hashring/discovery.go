package hashring

import (
	"context"
	"errors"
	"net"
)

// Discoverer finds the peers of the cluster. Each entry is "host:port" or, when the source
// knows the member's name, "name=host:port"; the address is then probed for the member's
// name and readiness. An error means the source could not say (a failed lookup, an
// unreadable file): Membership then changes nothing that round. It never means "no peers".
type Discoverer interface {
	Discover(ctx context.Context) ([]string, error)
}

// errNoPeers is the error of a source that found nothing: a lookup that finds no peer at
// all (not even this one) is more often broken than right.
var errNoPeers = errors.New("no peers found")

// NewDiscoverers returns the sources cfg configures: static peers, the peers file and DNS
// (through resolver; nil means a zero net.Resolver, the system's).
func NewDiscoverers(cfg Config, resolver *net.Resolver) ([]Discoverer, error) {
	var ds []Discoverer
	if len(cfg.Peers) > 0 {
		s, err := NewStaticDiscoverer(cfg.Peers)
		if err != nil {
			return nil, err
		}
		ds = append(ds, s)
	}
	if cfg.PeersFile != "" {
		ds = append(ds, &FileDiscoverer{Path: cfg.PeersFile})
	}
	if cfg.DNS.Name != "" {
		if resolver == nil {
			resolver = &net.Resolver{}
		}
		ds = append(ds, NewDNSDiscoverer(cfg.DNS, resolver))
	}
	if len(ds) == 0 {
		return nil, errors.New("cluster: no discovery configured: set peers, peers_file or dns.name")
	}
	return ds, nil
}
