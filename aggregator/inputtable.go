package aggregator

// inputTable maps an input series' 64-bit label hash to its state. It is an open-addressing
// table with linear probing over one flat array of 24-byte slots that hold no pointers: a
// lookup usually touches a single cache line (a Go map touches two or three), the garbage
// collector never scans it, and it shrinks as series go away, so memory follows the live
// series whatever the churn. Deletion shifts the probe sequence back instead of leaving
// tombstones. The hash alone is the key: no labels are stored to tell two series with one
// hash apart (seriesHashes gives the probability of that).
type inputTable struct {
	slots []inputSlot // length is a power of two, or zero
	n     int
}

// inputSlot is one stored input: key 0 marks an empty slot.
type inputSlot struct {
	key  uint64
	v    float64
	meta uint64 // timestamp (tsBits, biased) << outBits | output index
}

const (
	outBits = 21 // output series per rule shard: up to 2M
	tsBits  = 64 - outBits
	tsBias  = int64(1) << (tsBits - 1) // timestamps from 1831 to 2109 fit
	maxOuts = 1 << outBits
	minCap  = 8
)

func packMeta(t int64, out uint32) uint64 {
	t = min(max(t, -tsBias), tsBias-1)
	return uint64(t+tsBias)<<outBits | uint64(out)
}

// state unpacks a slot.
func (s *inputSlot) state() inputState {
	return inputState{t: int64(s.meta>>outBits) - tsBias, v: s.v, out: uint32(s.meta & (maxOuts - 1))}
}

func (s *inputSlot) set(in inputState) {
	s.v, s.meta = in.v, packMeta(in.t, in.out)
}

// tableKey keeps real keys off the empty marker; a hash of 0 is as likely as any other.
func tableKey(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// find returns the slot holding key, or the empty slot where it would go.
func (t *inputTable) find(key uint64) (int, bool) {
	mask := len(t.slots) - 1
	for i := int(key) & mask; ; i = (i + 1) & mask {
		switch t.slots[i].key {
		case key:
			return i, true
		case 0:
			return i, false
		}
	}
}

// get returns the slot index and state of the input with hash h.
func (t *inputTable) get(h uint64) (int, inputState, bool) {
	if t.n == 0 {
		return -1, inputState{}, false
	}
	i, ok := t.find(tableKey(h))
	if !ok {
		return -1, inputState{}, false
	}
	return i, t.slots[i].state(), true
}

// slotHinted returns the slot of the input with hash h, first trying slot hint, where the
// input was found earlier under the same lock: it is used if it still holds the key (an
// insert since may have moved it by a resize), which saves the probe.
func (t *inputTable) slotHinted(h uint64, hint int) (int, bool) {
	if uint(hint) < uint(len(t.slots)) && t.slots[hint].key == tableKey(h) {
		return hint, true
	}
	i, _, ok := t.get(h)
	return i, ok
}

// insert adds an input that get did not find.
func (t *inputTable) insert(h uint64, in inputState) {
	if (t.n+1)*5 > len(t.slots)*4 { // keep the load at most 0.8
		t.resize(max(minCap, 2*len(t.slots)))
	}
	key := tableKey(h)
	i, _ := t.find(key)
	t.slots[i].key = key
	t.slots[i].set(in)
	t.n++
}

// delete removes the input with hash h, shifting later members of its probe run back.
func (t *inputTable) delete(h uint64) {
	if t.n == 0 {
		return
	}
	i, ok := t.find(tableKey(h))
	if !ok {
		return
	}
	mask := len(t.slots) - 1
	for j := (i + 1) & mask; t.slots[j].key != 0; j = (j + 1) & mask {
		home := int(t.slots[j].key) & mask
		// The entry at j may move to i only if its home is not cyclically within (i, j].
		if (i < j && (home <= i || home > j)) || (i > j && home <= i && home > j) {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = inputSlot{}
	t.n--
}

// shrink halves the table while it is at most one eighth full.
func (t *inputTable) shrink() {
	c := len(t.slots)
	for c > minCap && t.n*8 <= c {
		c /= 2
	}
	if c < len(t.slots) {
		t.resize(c)
	}
}

func (t *inputTable) resize(c int) {
	old := t.slots
	t.slots = make([]inputSlot, c)
	mask := c - 1
	for _, s := range old {
		if s.key == 0 {
			continue
		}
		i := int(s.key) & mask
		for t.slots[i].key != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// len returns the number of inputs stored.
func (t *inputTable) len() int { return t.n }
