package hashring

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestStaticDiscoverer(t *testing.T) {
	in := []string{"10.0.0.1:9090", "node-b=10.0.0.2:9090"}
	s, err := NewStaticDiscoverer(in)
	if err != nil {
		t.Fatal(err)
	}
	in[0] = "changed:1"
	got, err := s.Discover(t.Context())
	if err != nil || !slices.Equal(got, []string{"10.0.0.1:9090", "node-b=10.0.0.2:9090"}) {
		t.Fatalf("Discover() = %v, %v", got, err)
	}
	got[0] = "changed:2"
	if again, _ := s.Discover(t.Context()); again[0] != "10.0.0.1:9090" {
		t.Error("changing a returned list changed the source")
	}
	if _, err := NewStaticDiscoverer([]string{"10.0.0.1"}); err == nil {
		t.Error("an entry without a port was accepted")
	}
	empty, _ := NewStaticDiscoverer(nil)
	if _, err := empty.Discover(t.Context()); !errors.Is(err, errNoPeers) {
		t.Errorf("an empty list gave %v, want errNoPeers", err)
	}
}

func TestFileDiscoverer(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string
		wantErr string // in the error; "" for none
	}{
		{"yaml_list", "# peers\n- 10.0.0.1:9090\n- node-b=10.0.0.2:9090\n", []string{"10.0.0.1:9090", "node-b=10.0.0.2:9090"}, ""},
		{"json_array", `["10.0.0.1:9090", "[fd00::2]:9090"]`, []string{"10.0.0.1:9090", "[fd00::2]:9090"}, ""},
		{"explicit_empty_list", "[]\n", []string{}, ""},
		{"zero_bytes_is_a_torn_write", "", nil, "is empty"},
		{"whitespace_only", " \n\n", nil, "is empty"},
		{"comment_only", "# nothing yet\n", nil, "holds no list"},
		{"a_map_is_not_a_list", "peers: [10.0.0.1:9090]\n", nil, "want a YAML list"},
		{"bad_yaml", "- 10.0.0.1:9090\n - x: [\n", nil, "want a YAML list"},
		{"entry_without_port", "- 10.0.0.1:9090\n- 10.0.0.2\n", nil, "entry 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "peers.yaml")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := (&FileDiscoverer{Path: path}).Discover(t.Context())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want an error saying %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) || got == nil {
				t.Fatalf("got %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
	t.Run("missing_file", func(t *testing.T) {
		_, err := (&FileDiscoverer{Path: filepath.Join(t.TempDir(), "absent")}).Discover(t.Context())
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("got %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("reread_on_every_call", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "peers.yaml")
		f := &FileDiscoverer{Path: path}
		for _, want := range [][]string{{"10.0.0.1:9090"}, {"10.0.0.1:9090", "10.0.0.3:9090"}} {
			if err := os.WriteFile(path, []byte(`["`+strings.Join(want, `","`)+`"]`), 0o600); err != nil {
				t.Fatal(err)
			}
			if got, err := f.Discover(t.Context()); err != nil || !slices.Equal(got, want) {
				t.Fatalf("got %v, %v; want %v", got, err, want)
			}
		}
	})
}

func TestDNSDiscoverer(t *testing.T) {
	lookupErr := &net.DNSError{Err: "server misbehaving", Name: "cardinal", IsTemporary: true}
	notFound := &net.DNSError{Err: "no such host", Name: "cardinal", IsNotFound: true}
	tests := []struct {
		name    string
		d       DNSDiscoverer
		want    []string
		wantErr error // errors.Is; nil for none
	}{
		{
			name: "a_and_aaaa_sorted_and_deduplicated",
			d: DNSDiscoverer{Name: "cardinal", Port: 9090, LookupIPAddr: func(_ context.Context, host string) ([]net.IPAddr, error) {
				if host != "cardinal" {
					return nil, notFound
				}
				return []net.IPAddr{{IP: net.ParseIP("10.0.0.2")}, {IP: net.ParseIP("fd00::1")}, {IP: net.ParseIP("10.0.0.1")}, {IP: net.ParseIP("10.0.0.2")}}, nil
			}},
			want: []string{"10.0.0.1:9090", "10.0.0.2:9090", "[fd00::1]:9090"},
		},
		{
			name: "srv_gives_host_and_port",
			d: DNSDiscoverer{Name: "_http._tcp.cardinal", Type: DNSTypeSRV, LookupSRV: func(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
				if service != "" || proto != "" || name != "_http._tcp.cardinal" {
					return "", nil, notFound
				}
				return name, []*net.SRV{{Target: "b.cardinal.svc.", Port: 9091}, {Target: "a.cardinal.svc.", Port: 9090}}, nil
			}},
			want: []string{"a.cardinal.svc:9090", "b.cardinal.svc:9091"},
		},
		{
			name: "a_lookup_failure_is_an_error",
			d: DNSDiscoverer{Name: "cardinal", Port: 9090, LookupIPAddr: func(context.Context, string) ([]net.IPAddr, error) {
				return nil, lookupErr
			}},
			wantErr: lookupErr,
		},
		{
			name: "nxdomain_is_an_error_not_zero_peers",
			d: DNSDiscoverer{Name: "cardinal", Type: DNSTypeSRV, LookupSRV: func(context.Context, string, string, string) (string, []*net.SRV, error) {
				return "", nil, notFound
			}},
			wantErr: notFound,
		},
		{
			name: "no_records_is_an_error",
			d: DNSDiscoverer{Name: "cardinal", Port: 9090, LookupIPAddr: func(context.Context, string) ([]net.IPAddr, error) {
				return nil, nil
			}},
			wantErr: errNoPeers,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.d.Discover(t.Context())
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || got != nil {
					t.Fatalf("got %v, %v; want no peers and %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestNewDiscoverers(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Peers = []string{"10.0.0.1:9090"}
	cfg.PeersFile = "/etc/cardinal/peers.yaml"
	cfg.DNS = DNSConfig{Name: "cardinal", Port: 9090}
	ds, err := NewDiscoverers(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 {
		t.Fatalf("got %d sources, want 3", len(ds))
	}
	if _, ok := ds[0].(*StaticDiscoverer); !ok {
		t.Errorf("source 0 is %T", ds[0])
	}
	if f, ok := ds[1].(*FileDiscoverer); !ok || f.Path != cfg.PeersFile {
		t.Errorf("source 1 is %#v", ds[1])
	}
	if d, ok := ds[2].(*DNSDiscoverer); !ok || d.Name != "cardinal" || d.Port != 9090 || d.LookupIPAddr == nil || d.LookupSRV == nil {
		t.Errorf("source 2 is %#v", ds[2])
	}
	if _, err := NewDiscoverers(DefaultConfig(), nil); err == nil {
		t.Error("a section with no discovery gave sources")
	}
}

// An SRV answer with unusable records (port 0, the target "." that says no service is there,
// or names the resolver refused, which it reports as an error beside the other records)
// gives the other records' peers and says what it left out; it fails only when none is left.
// Failing the whole lookup froze the membership for as long as one bad record was served.
func TestUnusableSRVRecordsAreLeftOut(t *testing.T) {
	resolverErr := &net.DNSError{Err: "cannot unmarshal DNS message", Name: "cardinal"}
	records := []*net.SRV{{Target: "10.0.0.2.", Port: 9090}, {Target: "10.0.0.9.", Port: 0}, {Target: ".", Port: 9090}, {Target: "10.0.0.1.", Port: 9090}}
	d := DNSDiscoverer{Name: "_http._tcp.cardinal", Type: DNSTypeSRV, LookupSRV: func(context.Context, string, string, string) (string, []*net.SRV, error) {
		return "", records, resolverErr
	}}
	got, err := d.Discover(t.Context())
	var skipped *SkippedRecords
	if !slices.Equal(got, []string{"10.0.0.1:9090", "10.0.0.2:9090"}) || !errors.As(err, &skipped) || len(skipped.Records) != 3 {
		t.Fatalf("got %v, %v; want the two usable peers and three records left out", got, err)
	}
	records = records[1:3]
	if got, err := d.Discover(t.Context()); got != nil || !errors.Is(err, errNoPeers) {
		t.Fatalf("with no usable record: got %v, %v; want no peers and %v", got, err, errNoPeers)
	}
}

// A membership round goes on with the peers a discovery found beside unusable records: a
// new member joins, and the records left out are counted.
func TestARoundGoesOnBesideUnusableRecords(t *testing.T) {
	c := newCluster(t)
	records := []*net.SRV{{Target: "10.0.0.1.", Port: 9090}, {Target: "10.0.0.9.", Port: 0}}
	d := &DNSDiscoverer{Name: "_http._tcp.cardinal", Type: DNSTypeSRV, LookupSRV: func(context.Context, string, string, string) (string, []*net.SRV, error) {
		return "", records, nil
	}}
	m, err := NewMembership(self, DefaultConfig(), []Discoverer{d}, c.prober, c.clock.now, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.m = m
	c.prober.set(addrOf("a"), Identity{Name: "a", Ready: true})
	var logs strings.Builder
	c.m.logger = slog.New(slog.NewTextHandler(&logs, nil))
	c.round(0)
	c.want("a beside a record of port 0", "a")
	if s := c.m.Stats(); s.SkippedRecords != 1 || s.FailedRounds != 0 {
		t.Errorf("Stats: %d records left out, %d failed rounds; want 1 and 0", s.SkippedRecords, s.FailedRounds)
	}
	// Logged when it appears, not each round; again when it comes back after it was gone.
	c.round(10 * time.Second)
	good := records[:1]
	records, good = good, records
	c.round(10 * time.Second)
	records = good
	c.round(10 * time.Second)
	if n := strings.Count(logs.String(), "unusable records left out"); n != 2 {
		t.Errorf("%d lines about the bad record in 4 rounds (there, there, gone, back), want 2:\n%s", n, logs.String())
	}
}
