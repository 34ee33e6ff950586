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

// Discover looks the name up and returns the addresses found, sorted and without repeats,
// with a *SkippedRecords error when it left unusable SRV records out.
func (d *DNSDiscoverer) Discover(ctx context.Context) ([]string, error) {
	var addrs, skipped []string
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
		// The resolver leaves out records with invalid names and returns an error beside
		// the others: those, like a record of port 0 or of the target "." (no service
		// there, RFC 2782), are left out, not the whole answer, which would freeze the
		// membership for as long as one bad record is served.
		_, srvs, err := d.LookupSRV(ctx, "", "", d.Name)
		if err != nil && len(srvs) == 0 {
			return nil, fmt.Errorf("dns SRV lookup of %s: %w", d.Name, err)
		}
		if err != nil {
			skipped = append(skipped, err.Error())
		}
		for _, s := range srvs {
			target := strings.TrimSuffix(s.Target, ".")
			if target == "" || s.Port == 0 {
				skipped = append(skipped, fmt.Sprintf("target %q port %d", s.Target, s.Port))
				continue
			}
			addrs = append(addrs, net.JoinHostPort(target, strconv.Itoa(int(s.Port))))
		}
	default:
		return nil, fmt.Errorf("dns type %q: want A or SRV", d.Type)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("dns lookup of %s (unusable: %s): %w", d.Name, strings.Join(skipped, "; "), errNoPeers)
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	if len(skipped) > 0 {
		return addrs, &SkippedRecords{Source: "dns " + d.Name, Records: skipped}
	}
	return addrs, nil
}

// SkippedRecords is the error of a Discover that left some records out and found peers in
// the others: the round goes on with the peers returned, and logs what was left out.
type SkippedRecords struct {
	// Source names the discovery; Records what was left out and why.
	Source  string
	Records []string
}

func (e *SkippedRecords) Error() string {
	return fmt.Sprintf("%s: left out %d unusable records: %s", e.Source, len(e.Records), strings.Join(e.Records, "; "))
}
