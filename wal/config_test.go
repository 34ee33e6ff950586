package wal

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

func TestConfigUnmarshalFillsDefaults(t *testing.T) {
	var c Config
	if err := yaml.Unmarshal([]byte("dir: /var/lib/cardinal/wal\nfsync: always\n"), &c); err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Dir, want.Fsync = "/var/lib/cardinal/wal", FsyncAlways
	if c != want {
		t.Fatalf("decoded %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestConfigUnmarshalRejectsUnknownKeys(t *testing.T) {
	dec := yaml.NewDecoder(strings.NewReader("dir: x\nfsynk: always\n"))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err == nil || !strings.Contains(err.Error(), "fsynk") {
		t.Fatalf("got %v, want an error naming fsynk", err)
	}
}

func TestConfigValidate(t *testing.T) {
	valid := DefaultConfig()
	valid.Dir = "/data/wal"
	tests := []struct {
		name   string
		change func(*Config)
		key    string // of the one problem expected
	}{
		{"dir_required", func(c *Config) { c.Dir = "" }, "dir"},
		{"unknown_fsync_mode", func(c *Config) { c.Fsync = "sometimes" }, "fsync"},
		{"interval_needs_a_period", func(c *Config) { c.FsyncInterval = 0 }, "fsync_interval"},
		{"max_bytes_below_four_segments", func(c *Config) { c.MaxBytes = 4*defaultSegmentSize - 1 }, "max_bytes"},
		{"max_bytes_zero", func(c *Config) { c.MaxBytes = 0 }, "max_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.change(&c)
			errs := setting.Errors(c.Validate())
			if len(errs) != 1 || len(errs[0].Key) != 1 || errs[0].Key[0] != tt.key {
				t.Fatalf("got %v, want one problem at %q", errs, tt.key)
			}
			if !strings.Contains(errs[0].Msg, "wal."+tt.key) {
				t.Errorf("message %q does not name wal.%s", errs[0].Msg, tt.key)
			}
		})
	}
	t.Run("never_ignores_interval", func(t *testing.T) {
		c := valid
		c.Fsync, c.FsyncInterval = FsyncNever, 0
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("default_interval_is_one_second", func(t *testing.T) {
		if got := time.Duration(DefaultConfig().FsyncInterval); got != time.Second {
			t.Fatalf("got %v", got)
		}
	})
}
