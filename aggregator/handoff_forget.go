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
// An output is named by its rule and placement key, as the flush chose what to take out; an
// output of a rule this member does not have is skipped. A body that cannot be read drops
// nothing.
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
	name := func(fp uint64, labels int, first func(r *ruleState) uint64) {
		r := byPrint[fp]
		if r == nil || labels != len(r.outputs) {
			return
		}
		if named[r] == nil {
			named[r] = namedOutputs{}
		}
		named[r][first(r)] = struct{}{}
	}
	var d frameDecoder
	d.eachHandoffOutput(b, native, func(fp uint64, _ int64, o *outputState, _ []handoffInput) {
		name(fp, len(o.labels), func(r *ruleState) uint64 { return r.placeKeyOfOutput(o.labels[0]) })
	}, func(fp uint64, _ int64, o *nativeOutput, _ []nativeHandoffInput) {
		name(fp, len(o.labels), func(r *ruleState) uint64 { return r.placeKeyOfOutput(o.labels[0]) })
	})
	if d.err != nil {
		return 0, fmt.Errorf("handoff: %w", d.err)
	}
	forgotten := 0
	var h Handoff
	for r, keys := range named {
		for s := range numShards {
			a.locks[s].Lock()
			if rs := &r.shards[s]; rs.ready {
				r.exportUnowned(rs, keys, &h)
				rs.stats.handedOff -= uint64(h.Len()) // handed off before the restart, not by this process
			}
			a.locks[s].Unlock()
			forgotten += h.Len()
			h.Outputs, h.Native = h.Outputs[:0], h.Native[:0]
		}
	}
	return forgotten, nil
}

// namedOutputs is the Ownership of Forget: this member owns every output but those whose
// placement keys it holds.
type namedOutputs map[uint64]struct{}

// Owns implements Ownership.
func (n namedOutputs) Owns(key uint64) bool { _, named := n[key]; return !named }

// Awaits implements Ownership.
func (namedOutputs) Awaits(uint64) bool { return false }
