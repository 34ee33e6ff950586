package hashring

import (
	"errors"
	"time"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// DNS record types the dns source looks up.
const (
	// DNSTypeA looks up the A and AAAA records of dns.name and uses dns.port.
	DNSTypeA = "A"
	// DNSTypeSRV looks up the SRV records of dns.name, which carry host and port.
	DNSTypeSRV = "SRV"
)

// Config is the cluster section of the configuration. At least one of peers, peers_file
// and dns.name must be given; when several are, the peers they find are put together.
type Config struct {
	// Name is this member's name in the ring. Empty means the server fills it in from
	// --cluster.name, $NODE_NAME or the hostname, in that order.
	Name string `yaml:"name"`
	// Peers is a fixed list of "host:port" or "name=host:port" entries; with a name, the
	// peer at that address must answer with it.
	Peers []string `yaml:"peers"`
	// PeersFile is the path of a YAML file listing peers as Peers does, re-read every
	// refresh_interval (see FileDiscoverer).
	PeersFile string `yaml:"peers_file"`
	// DNS finds peers by a DNS name, such as a headless Service's.
	DNS DNSConfig `yaml:"dns"`
	// RefreshInterval is the period of discovery and probing (default 10s).
	RefreshInterval setting.Duration `yaml:"refresh_interval"`
	// JoinAfter is how long a peer must be seen ready, without a break, before it joins
	// (default 30s).
	JoinAfter setting.Duration `yaml:"join_after"`
	// LeaveAfter is how long a member must go unseen, without a break, before it leaves
	// (default 5m, enough to ride out a rolling restart of its pod).
	LeaveAfter setting.Duration `yaml:"leave_after"`
	// ProbeTimeout bounds one identity probe of one peer (default 2s).
	ProbeTimeout setting.Duration `yaml:"probe_timeout"`
	// HandoffTimeout is how long a member that gained outputs in a ring change holds their
	// new series back waiting for the previous owner's state, and how long that owner tries
	// to deliver it (default 1m).
	HandoffTimeout setting.Duration `yaml:"handoff_timeout"`
	// LeaveOnShutdown makes a member leave the ring when it shuts down (SIGTERM) instead of
	// keeping its place for its next process: it hands every output over to the member that
	// owns it in the ring without this one, and says it is leaving, before it exits. Its
	// outputs then go on without a reset whether it comes back or not (a node drained and
	// deleted); a restart joins again as a new member does, after join_after, and gets its
	// share handed back. Off (the default), a restart with a WAL moves nothing, and a member
	// that never comes back hands nothing off.
	LeaveOnShutdown bool `yaml:"leave_on_shutdown"`
	// Forward is how series are sent to the members that own them.
	Forward ForwardConfig `yaml:"forward"`
}

// DNSConfig is the cluster.dns section.
type DNSConfig struct {
	// Name is the name to look up, e.g. cardinal.monitoring.svc.cluster.local (A) or
	// _http._tcp.cardinal.monitoring.svc.cluster.local (SRV). Empty: no DNS discovery.
	Name string `yaml:"name"`
	// Type is A (the default: A and AAAA records, with Port) or SRV.
	Type string `yaml:"type"`
	// Port is the port of every peer found by A/AAAA records; SRV records carry their own.
	Port int `yaml:"port"`
}

// DefaultConfig is a cluster section with only its discovery to fill in.
func DefaultConfig() Config {
	return Config{
		RefreshInterval: setting.Duration(10 * time.Second),
		JoinAfter:       setting.Duration(30 * time.Second),
		LeaveAfter:      setting.Duration(5 * time.Minute),
		ProbeTimeout:    setting.Duration(2 * time.Second),
		HandoffTimeout:  setting.Duration(time.Minute),
		Forward:         DefaultForwardConfig(),
	}
}

// plainConfig has no methods, so decoding into it does not recurse.
type plainConfig Config

// UnmarshalYAML fills the defaults, then the keys present.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	return unmarshal((*plainConfig)(c))
}

// Validate reports every problem of the section, each as a *setting.Error at its key. It
// does not require Name, which the server may fill in later, nor read the peers file
// (CheckFiles does).
func (c *Config) Validate() error {
	var errs []error
	if len(c.Peers) == 0 && c.PeersFile == "" && c.DNS.Name == "" {
		errs = append(errs, setting.At().Errorf("cluster needs at least one of peers, peers_file and dns.name"))
	}
	for _, e := range checkPeerList(c.Peers) {
		errs = append(errs, setting.At("peers", e.index).Errorf("cluster.peers[%d]: %v", e.index, e.err))
	}
	errs = append(errs, c.DNS.validate()...)
	if c.Name != "" {
		if err := ValidateName(c.Name); err != nil {
			errs = append(errs, setting.At("name").Errorf("cluster.name: %v", err))
		}
	}
	if c.HandoffTimeout < setting.Duration(time.Second) {
		errs = append(errs, setting.At("handoff_timeout").Errorf("cluster.handoff_timeout must be at least 1s, not %s", c.HandoffTimeout))
	}
	for _, e := range setting.Errors(c.Forward.Validate()) {
		errs = append(errs, &setting.Error{Key: append(setting.At("forward"), e.Key...), Msg: e.Msg})
	}
	if c.RefreshInterval < setting.Duration(time.Second) {
		errs = append(errs, setting.At("refresh_interval").Errorf("cluster.refresh_interval must be at least 1s, not %s", c.RefreshInterval))
	}
	if c.ProbeTimeout <= 0 || c.ProbeTimeout > c.RefreshInterval {
		errs = append(errs, setting.At("probe_timeout").Errorf("cluster.probe_timeout must be more than 0 and at most cluster.refresh_interval (%s), not %s", c.RefreshInterval, c.ProbeTimeout))
	}
	if c.JoinAfter < 0 {
		errs = append(errs, setting.At("join_after").Errorf("cluster.join_after must not be negative, not %s", c.JoinAfter))
	}
	if c.LeaveAfter < c.RefreshInterval {
		errs = append(errs, setting.At("leave_after").Errorf("cluster.leave_after must be at least cluster.refresh_interval (%s), so that one missed round never removes a member, not %s", c.RefreshInterval, c.LeaveAfter))
	}
	return errors.Join(errs...)
}

// CheckFiles reads the files the section names: the peers file, as FileDiscoverer reads it
// every round (a missing, unparseable or unsound one is an error at peers_file), and the
// files of the forward section, as ForwardConfig.CheckFiles does.
func (c *Config) CheckFiles() error {
	var errs []error
	if c.PeersFile != "" {
		_, fileErrs := readPeersFile(c.PeersFile)
		for _, err := range fileErrs {
			errs = append(errs, setting.At("peers_file").Errorf("cluster.peers_file: %v", err))
		}
	}
	for _, e := range setting.Errors(c.Forward.CheckFiles()) {
		errs = append(errs, &setting.Error{Key: append(setting.At("forward"), e.Key...), Msg: e.Msg})
	}
	return errors.Join(errs...)
}

// validate checks the dns section; its keys are inside "dns".
func (d *DNSConfig) validate() []error {
	var errs []error
	if d.Name == "" {
		if d.Type != "" || d.Port != 0 {
			errs = append(errs, setting.At("dns", "name").Errorf("cluster.dns.name is required when cluster.dns.type or cluster.dns.port is set"))
		}
		return errs
	}
	switch d.Type {
	case "", DNSTypeA:
		if d.Port < 1 || d.Port > 65535 {
			errs = append(errs, setting.At("dns", "port").Errorf("cluster.dns.port must be from 1 to 65535 with type A, not %d", d.Port))
		}
	case DNSTypeSRV:
		if d.Port != 0 {
			errs = append(errs, setting.At("dns", "port").Errorf("cluster.dns.port is not used with type SRV (the records carry the port); remove it"))
		}
	default:
		errs = append(errs, setting.At("dns", "type").Errorf("cluster.dns.type must be A or SRV, not %q", d.Type))
	}
	return errs
}
