package rules

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// fingerprint hashes every field of r that decides what the rule aggregates and emits: all of
// them but Name and Source (and the fingerprint itself). A reload keeps the state of a rule
// whose fingerprint did not change, even if it was renamed or moved.
func fingerprint(r *Rule) uint64 {
	f := fingerprinter{d: xxhash.New()}
	f.str("cardinal-rule-v1")
	f.str(string(r.Type))
	f.strs(r.MetricNames)
	f.str(r.BaseName)
	f.int(int64(len(r.Matchers)))
	for _, m := range r.Matchers {
		f.int(int64(m.Type))
		f.str(m.Name)
		f.str(m.Value)
	}
	f.bool(r.ByMode)
	f.strs(r.Without)
	f.strs(r.By)
	f.strs(r.Outputs)
	f.str(r.OutputName)
	f.int(int64(len(r.AddLabels)))
	for _, l := range r.AddLabels {
		f.str(l.Name)
		f.str(l.Value)
	}
	f.bool(r.KeepInput)
	f.int(int64(r.Interval))
	f.int(int64(r.FlushDelay))
	f.int(int64(r.Staleness))
	f.str(string(r.FirstSample))
	f.int(int64(r.MaxInputSeries))
	f.int(int64(r.MaxOutputSeries))
	if r.HA != nil { // absent from the hash when off, so fingerprints from before ha stay valid
		f.str("ha")
		f.str(r.HA.GroupLabel)
		f.str(r.HA.ReplicaLabel)
		f.int(int64(r.HA.FailoverTimeout))
	}
	if r.Exemplars > 0 { // absent when off, so fingerprints from before exemplars stay valid
		f.str("exemplars")
		f.int(int64(r.Exemplars))
	}
	return f.d.Sum64()
}

// fingerprinter writes values unambiguously: strings are length-prefixed, so ("ab","c") and
// ("a","bc") hash differently.
type fingerprinter struct{ d *xxhash.Digest }

func (f fingerprinter) int(v int64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(v))
	_, _ = f.d.Write(b[:])
}

func (f fingerprinter) str(s string) {
	f.int(int64(len(s)))
	_, _ = f.d.WriteString(s)
}

func (f fingerprinter) strs(ss []string) {
	f.int(int64(len(ss)))
	for _, s := range ss {
		f.str(s)
	}
}

func (f fingerprinter) bool(b bool) {
	if b {
		f.int(1)
	} else {
		f.int(0)
	}
}
