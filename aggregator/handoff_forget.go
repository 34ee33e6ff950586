package aggregator

import (
	"errors"
	"fmt"
)

// Forget takes out of the state, and drops, the outputs that handoff body b (Handoff.Encode's)
// names, with the inputs that feed them, and returns how many it dropped. It is the replay of
// a handoff this member took out of its aggregator before a restart: the WAL's replay from a
// checkpoint older than the handoff rebuilds those outputs, which their new owner has (or
// gets again, under the handoff's id, which it merges once), and which would otherwise be
// handed off once more under a new id and counted twice.
//
// An output is named by its rule and output hash; one of a rule this member does not have is
// skipped. A body that cannot be read drops nothing.
func (a *Aggregator) Forget(b []byte) (int, error) {
	native, ok := handoffFormat(b)
	if !ok {
		return 0, errors.New("not a cardinal handoff")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	byPrint := make(map[uint64]*ruleState, len(a.rules))
	for _, r := range a.rules {
		byPrint[r.rule.Fingerprint] = r
	}
	named := map[*ruleState]namedOutputs{}
	name := func(fp uint64, labels int, hash uint64) {
		r := byPrint[fp]
		if r == nil || labels != len(r.outputs) {
			return
		}
		if named[r] == nil {
			named[r] = namedOutputs{}
		}
		named[r][hash] = struct{}{}
	}
	var d frameDecoder
	d.eachHandoffOutput(b, native, func(fp uint64, _ int64, o *outputState, _ []handoffInput) {
		name(fp, len(o.labels), o.hash)
	}, func(fp uint64, _ int64, o *nativeOutput, _ []nativeHandoffInput) {
		name(fp, len(o.labels), o.hash)
	})
	if d.err != nil {
		return 0, fmt.Errorf("handoff: %w", d.err)
	}
	forgotten := 0
	var h Handoff
	for r, outputs := range named {
		for s := range numShards {
			a.locks[s].Lock()
			if rs := &r.shards[s]; rs.ready {
				r.export(rs, outputs, &h) // not counted: handed off before the restart
			}
			a.locks[s].Unlock()
			forgotten += h.Len()
			h.Outputs, h.Native = h.Outputs[:0], h.Native[:0]
		}
	}
	return forgotten, nil
}

// namedOutputs is the takeOut of Forget: the outputs of one rule a handoff names, by their
// output hashes (not their placement keys: the flush that took them out may have taken some
// outputs of a key and not others, across a ring change).
type namedOutputs map[uint64]struct{}

func (n namedOutputs) takes(_, hash uint64) bool { _, ok := n[hash]; return ok }
