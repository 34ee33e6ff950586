package hashring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"
)

// FileDiscoverer reads the peers from a file (cluster.peers_file) on every Discover, so an
// edited file (a ConfigMap update, a config-management run) is picked up within one
// refresh_interval without a watch.
//
// The file is a YAML list of strings, each "host:port" or "name=host:port":
//
//	# /etc/cardinal/peers.yaml
//	- 10.0.0.1:9090
//	- node-b=10.0.0.2:9090
//
// A JSON array (["10.0.0.1:9090", "10.0.0.2:9090"], as Thanos's hashring file lists
// endpoints) is valid YAML and reads the same. A missing file, a parse error, a bad entry
// or a file with nothing in it (a torn write leaves one empty) is an error, and Membership
// keeps its previous view; so are an address listed twice and a name given two addresses,
// as in cluster.peers. An explicit empty list ([]) is read as no peers.
type FileDiscoverer struct {
	// Path is the file to read.
	Path string
}

// Discover reads and checks the file.
func (f *FileDiscoverer) Discover(context.Context) ([]string, error) {
	peers, errs := readPeersFile(f.Path)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return peers, nil
}

// readPeersFile reads the peers file at path and checks its entries together, as
// cluster.peers is checked (checkPeerList). It returns the entries, or every problem found,
// each naming the file. Config.CheckFiles reads the file the same way at start-up.
func readPeersFile(path string) ([]string, []error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, []error{fmt.Errorf("peers file: %w", err)}
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, []error{fmt.Errorf("peers file %s is empty; write a YAML list of host:port entries, or [] for none", path)}
	}
	var peers []string
	if err := yaml.Unmarshal(b, &peers); err != nil {
		return nil, []error{fmt.Errorf("peers file %s: want a YAML list of host:port strings: %w", path, err)}
	}
	if peers == nil {
		return nil, []error{fmt.Errorf("peers file %s holds no list; write a YAML list of host:port entries, or [] for none", path)}
	}
	var errs []error
	for _, e := range checkPeerList(peers) {
		errs = append(errs, fmt.Errorf("peers file %s, entry %d: %w", path, e.index+1, e.err))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return peers, nil
}
