package hashring

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// DNSDiscoverer finds peers by DNS (cluster.dns): the A and AAAA records of Name with Port,
// or the SRV records of Name with the port each carries. A Kubernetes headless Service
// gives both (SRV needs a named port: _http._tcp.<service>.<namespace>.svc). A failed
// lookup, NXDOMAIN included, or an answer with no records is an error: a DNS blip must not
// read as an empty cluster. The price: if the name stays empty (every peer gone, this one
// included, say with a Service that lists only ready pods), no member ever leaves; list this
// member in the answer too (publishNotReadyAddresses) to avoid that.
type DNSDiscoverer struct {
	// Name is the name to look up.
	Name string
	// Type is DNSTypeA or DNSTypeSRV; empty means DNSTypeA.
	Type string
	// Port is the port of the peers found by A and AAAA records.
	Port int
	// LookupIPAddr resolves A and AAAA records, as (*net.Resolver).LookupIPAddr does.
	LookupIPAddr func(ctx context.Context, host string) ([]net.IPAddr, error)
	// LookupSRV resolves SRV records, as (*net.Resolver).LookupSRV does.
	LookupSRV func(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

// NewDNSDiscoverer looks cfg's name up through r.
func NewDNSDiscoverer(cfg DNSConfig, r *net.Resolver) *DNSDiscoverer {
	return &DNSDiscoverer{
		Name: cfg.Name, Type: cfg.Type, Port: cfg.Port,
		LookupIPAddr: r.LookupIPAddr,
		LookupSRV:    r.LookupSRV,
	}
}

// Discover looks the name up and returns the addresses found, sorted and without repeats.
func (d *DNSDiscoverer) Discover(ctx context.Context) ([]string, error) {
	var addrs []string
	switch d.Type {
	case "", DNSTypeA:
		ips, err := d.LookupIPAddr(ctx, d.Name)
		if err != nil {
			return nil, fmt.Errorf("dns lookup of %s: %w", d.Name, err)
		}
		port := strconv.Itoa(d.Port)
		for _, ip := range ips {
			addrs = append(addrs, net.JoinHostPort(ip.String(), port))
		}
	case DNSTypeSRV:
		_, srvs, err := d.LookupSRV(ctx, "", "", d.Name)
		if err != nil {
			return nil, fmt.Errorf("dns SRV lookup of %s: %w", d.Name, err)
		}
		for _, s := range srvs {
			addrs = append(addrs, net.JoinHostPort(strings.TrimSuffix(s.Target, "."), strconv.Itoa(int(s.Port))))
		}
	default:
		return nil, fmt.Errorf("dns type %q: want A or SRV", d.Type)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("dns lookup of %s: %w", d.Name, errNoPeers)
	}
	slices.Sort(addrs)
	return slices.Compact(addrs), nil
}
