package hashring

import (
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

func TestConfigUnmarshalFillsDefaults(t *testing.T) {
	var c Config
	in := "peers: [10.0.0.1:9090, node-b=10.0.0.2:9090]\ndns:\n  name: _http._tcp.cardinal\n  type: SRV\nleave_after: 10m\n"
	if err := yaml.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Peers = []string{"10.0.0.1:9090", "node-b=10.0.0.2:9090"}
	want.DNS = DNSConfig{Name: "_http._tcp.cardinal", Type: DNSTypeSRV}
	want.LeaveAfter = setting.Duration(10 * time.Minute)
	if !slices.Equal(c.Peers, want.Peers) || c.DNS != want.DNS || c.LeaveAfter != want.LeaveAfter ||
		c.RefreshInterval != want.RefreshInterval || c.JoinAfter != want.JoinAfter || c.ProbeTimeout != want.ProbeTimeout {
		t.Fatalf("decoded %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestConfigUnmarshalRejectsUnknownKeys(t *testing.T) {
	dec := yaml.NewDecoder(strings.NewReader("peers: [a:1]\nleave_afer: 1m\n"))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err == nil || !strings.Contains(err.Error(), "leave_afer") {
		t.Fatalf("got %v, want an error naming leave_afer", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	c := DefaultConfig()
	for _, d := range []struct {
		name      string
		got, want setting.Duration
	}{
		{"refresh_interval", c.RefreshInterval, setting.Duration(10 * time.Second)},
		{"join_after", c.JoinAfter, setting.Duration(30 * time.Second)},
		{"leave_after", c.LeaveAfter, setting.Duration(5 * time.Minute)},
		{"probe_timeout", c.ProbeTimeout, setting.Duration(2 * time.Second)},
	} {
		if d.got != d.want {
			t.Errorf("default %s is %s, want %s", d.name, d.got, d.want)
		}
	}
	if err := c.Validate(); err == nil {
		t.Error("the default section, with no discovery, validated")
	}
}

func TestConfigValidate(t *testing.T) {
	valid := DefaultConfig()
	valid.Peers = []string{"10.0.0.1:9090"}
	tests := []struct {
		name   string
		change func(*Config)
		key    setting.Key // of the one problem expected
		msg    string      // the message names this
	}{
		{"no_discovery", func(c *Config) { c.Peers = nil }, setting.At(), "at least one of peers, peers_file and dns.name"},
		{"peer_without_port", func(c *Config) { c.Peers = []string{"10.0.0.1:9090", "10.0.0.2"} }, setting.At("peers", 1), "cluster.peers[1]"},
		{"peer_port_out_of_range", func(c *Config) { c.Peers = []string{"10.0.0.1:70000"} }, setting.At("peers", 0), "1 to 65535"},
		{"peer_empty_name", func(c *Config) { c.Peers = []string{"=10.0.0.1:9090"} }, setting.At("peers", 0), "empty name"},
		{"peer_empty_host", func(c *Config) { c.Peers = []string{":9090"} }, setting.At("peers", 0), "host is empty"},
		{"dns_a_needs_port", func(c *Config) { c.DNS = DNSConfig{Name: "cardinal"} }, setting.At("dns", "port"), "cluster.dns.port"},
		{"dns_srv_takes_no_port", func(c *Config) { c.DNS = DNSConfig{Name: "cardinal", Type: DNSTypeSRV, Port: 9090} }, setting.At("dns", "port"), "SRV"},
		{"dns_unknown_type", func(c *Config) { c.DNS = DNSConfig{Name: "cardinal", Type: "AAAA", Port: 1} }, setting.At("dns", "type"), "cluster.dns.type"},
		{"dns_port_without_name", func(c *Config) { c.DNS = DNSConfig{Port: 9090} }, setting.At("dns", "name"), "cluster.dns.name"},
		{"refresh_below_1s", func(c *Config) {
			c.RefreshInterval, c.ProbeTimeout = setting.Duration(500*time.Millisecond), setting.Duration(100*time.Millisecond)
		}, setting.At("refresh_interval"), "cluster.refresh_interval"},
		{"probe_timeout_zero", func(c *Config) { c.ProbeTimeout = 0 }, setting.At("probe_timeout"), "cluster.probe_timeout"},
		{"probe_timeout_above_refresh", func(c *Config) { c.ProbeTimeout = setting.Duration(11 * time.Second) }, setting.At("probe_timeout"), "cluster.probe_timeout"},
		{"join_after_negative", func(c *Config) { c.JoinAfter = -1 }, setting.At("join_after"), "cluster.join_after"},
		{"leave_after_below_refresh", func(c *Config) { c.LeaveAfter = setting.Duration(5 * time.Second) }, setting.At("leave_after"), "cluster.leave_after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.change(&c)
			errs := setting.Errors(c.Validate())
			if len(errs) != 1 || !slices.Equal(errs[0].Key, tt.key) {
				t.Fatalf("got %v, want one problem at %v", errs, tt.key)
			}
			if !strings.Contains(errs[0].Msg, tt.msg) {
				t.Errorf("message %q does not say %q", errs[0].Msg, tt.msg)
			}
		})
	}
	for _, ok := range []struct {
		name   string
		change func(*Config)
	}{
		{"name_may_be_empty", func(c *Config) { c.Name = "" }},
		{"peers_file_alone", func(c *Config) { c.Peers, c.PeersFile = nil, "/etc/cardinal/peers.yaml" }},
		{"dns_a_alone", func(c *Config) { c.Peers, c.DNS = nil, DNSConfig{Name: "cardinal", Type: DNSTypeA, Port: 9090} }},
		{"every_source", func(c *Config) {
			c.PeersFile, c.DNS = "/etc/peers.yaml", DNSConfig{Name: "_http._tcp.cardinal", Type: DNSTypeSRV}
		}},
		{"ipv6_and_named_peers", func(c *Config) { c.Peers = []string{"[fd00::1]:9090", "node-a=node-a.local:9090"} }},
		{"join_immediately", func(c *Config) { c.JoinAfter = 0 }},
	} {
		t.Run(ok.name, func(t *testing.T) {
			c := valid
			ok.change(&c)
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
