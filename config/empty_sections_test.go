package config

import (
	"slices"
	"testing"
)

// A section written with nothing under it (its contents commented out) decodes as absent,
// which turns its feature off: the load says so.
func TestWarningForAnEmptySection(t *testing.T) {
	const head = "downstream: {file: {path: \"-\"}}\nrules: [{metric_name: x, type: counter, drop_labels: [pod]}]\n"
	const walOff = "wal: the section is empty, so there is no write-ahead log; set wal.dir to keep one, or remove the key"
	const clusterOff = "cluster: the section is empty, so clustering is off and this cardinal aggregates alone; set cluster.peers, cluster.peers_file or cluster.dns.name to join a cluster, or remove the key"
	tests := []struct {
		name string
		text string // after head, from line 3
		want []string
	}{
		{"cluster_with_its_contents_commented_out", "cluster:\n  # peers: [a:9091]\n", []string{"cardinal.yaml:3: " + clusterOff}},
		{"cluster_written_null", "cluster: null\n", []string{"cardinal.yaml:3: " + clusterOff}},
		{"wal_with_its_contents_commented_out", "wal:\n#  dir: /var/lib/cardinal\n", []string{"cardinal.yaml:3: " + walOff}},
		{"wal_written_tilde", "wal: ~\n", []string{"cardinal.yaml:3: " + walOff}},
		{"both_in_file_order", "cluster:\nwal:\n", []string{"cardinal.yaml:3: " + clusterOff, "cardinal.yaml:4: " + walOff}},
		{"absent_sections_are_no_warning", "", nil},
		{"sections_with_settings_are_no_warning", "wal: {dir: wal}\ncluster: {peers: ['127.0.0.1:1']}\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, head+tt.text)
			if !slices.Equal(cfg.Warnings, tt.want) {
				t.Errorf("warnings:\n got %q\nwant %q", cfg.Warnings, tt.want)
			}
		})
	}
}

// An empty section is still off, as an absent one is: the warning is all that changes.
func TestAnEmptySectionIsOff(t *testing.T) {
	cfg := mustParse(t, "downstream: {file: {path: \"-\"}}\nwal:\ncluster:\n")
	if cfg.WAL != nil || cfg.Cluster != nil {
		t.Errorf("wal %+v, cluster %+v; want both nil", cfg.WAL, cfg.Cluster)
	}
}
