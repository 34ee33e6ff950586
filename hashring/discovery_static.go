package hashring

import (
	"context"
	"slices"
)

// StaticDiscoverer returns a fixed list of peers (cluster.peers).
type StaticDiscoverer struct {
	peers []string
}

// NewStaticDiscoverer checks each entry ("host:port" or "name=host:port") and returns a
// source that always finds them.
func NewStaticDiscoverer(peers []string) (*StaticDiscoverer, error) {
	for _, p := range peers {
		if _, err := parsePeer(p); err != nil {
			return nil, err
		}
	}
	return &StaticDiscoverer{peers: slices.Clone(peers)}, nil
}

// Discover returns the list; it fails only if the list is empty.
func (s *StaticDiscoverer) Discover(context.Context) ([]string, error) {
	if len(s.peers) == 0 {
		return nil, errNoPeers
	}
	return slices.Clone(s.peers), nil
}
