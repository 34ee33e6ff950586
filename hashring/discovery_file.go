package hashring

import (
	"bytes"
	"context"
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
// keeps its previous view; an explicit empty list ([]) is read as no peers.
type FileDiscoverer struct {
	// Path is the file to read.
	Path string
}

// Discover reads and checks the file.
func (f *FileDiscoverer) Discover(context.Context) ([]string, error) {
	b, err := os.ReadFile(f.Path)
	if err != nil {
		return nil, fmt.Errorf("peers file: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("peers file %s is empty; write a YAML list of host:port entries, or [] for none", f.Path)
	}
	var peers []string
	if err := yaml.Unmarshal(b, &peers); err != nil {
		return nil, fmt.Errorf("peers file %s: want a YAML list of host:port strings: %w", f.Path, err)
	}
	if peers == nil {
		return nil, fmt.Errorf("peers file %s holds no list; write a YAML list of host:port entries, or [] for none", f.Path)
	}
	for i, p := range peers {
		if _, err := parsePeer(p); err != nil {
			return nil, fmt.Errorf("peers file %s, entry %d: %w", f.Path, i+1, err)
		}
	}
	return peers, nil
}
