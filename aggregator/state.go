package aggregator

import (
	"github.com/prometheus/prometheus/prompb"
)

// inputState is what a rule keeps per input series: its last accepted sample (the value is
// the stale marker after a stale marker) and the output it feeds. It holds no labels: inputs
// are keyed by a 64-bit hash of their label set in an inputTable, 24 bytes a slot.
type inputState struct {
	t   int64   // timestamp of the last accepted sample, ms
	v   float64 // its value
	out uint32  // index of the output series in ruleShard.outputs
}

// outputState is one output series of a rule (one label set) across all its output kinds.
type outputState struct {
	hash    uint64
	labels  [][]prompb.Label // per compiled output kind; read-only once built
	live    int32            // input series currently feeding it
	firstK  int64            // first window it has a sample in
	total   float64          // counter: running total through the last closed window
	emitted bool             // has emitted a sample (so death needs a stale marker)
	// emittedK is the newest window it emitted (a handoff's windows up to it are written).
	emittedK int64
	held     bool         // new after a ring change, waiting for a handoff: not emitted yet
	stray    bool         // begun while another member owned it (see adoptStray)
	place    uint64       // placement key: which member of a cluster owns it
	wins     []windowAcc  // open windows, sorted by k; in winBuf while there are few
	winBuf   [2]windowAcc // usually one or two windows are open: kept in the same memory
}

// newOutputState returns an output series with its labels (see outputState.labels), whose
// first sample falls in window k.
func newOutputState(hash uint64, labels [][]prompb.Label, k int64) *outputState {
	o := &outputState{hash: hash, labels: labels, firstK: k}
	o.wins = o.winBuf[:0]
	return o
}

// window returns the accumulator of window k, adding it in order if absent. The search
// starts at the newest window, where nearly every sample lands.
func (o *outputState) window(k int64) *windowAcc {
	i := len(o.wins)
	for ; i > 0; i-- {
		if w := &o.wins[i-1]; w.k == k {
			return w
		} else if w.k < k {
			break
		}
	}
	o.wins = append(o.wins, windowAcc{})
	copy(o.wins[i+1:], o.wins[i:])
	o.wins[i] = windowAcc{k: k}
	return &o.wins[i]
}

// takeWindow removes and returns the accumulator of window k (zero when it saw nothing).
// Windows older than k cannot exist: they were taken when they closed.
func (o *outputState) takeWindow(k int64) windowAcc {
	if len(o.wins) > 0 && o.wins[0].k == k {
		w := o.wins[0]
		o.wins = append(o.wins[:0], o.wins[1:]...)
		return w
	}
	return windowAcc{k: k}
}

// dropReason says why a sample did not count.
type dropReason int

// Reasons a sample is dropped, as exported in cardinal_aggregator_samples_dropped_total.
const (
	dropDuplicate dropReason = iota
	dropLate
	dropNaN
	dropFuture
	dropUnaggregatable
	dropLimit
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{"duplicate", "late", "nan", "future", "unaggregatable", "limit"}

// shardStats counts what happened in one rule shard; guarded by the shard lock.
type shardStats struct {
	ingested      uint64
	dropped       [numDropReasons]uint64
	resets        uint64
	seriesFlushed uint64
	handedOff     uint64 // outputs handed off to another member
	// late counts counter samples for a closed window, credited to the oldest open one.
	late uint64
}

// ruleShard is the part of one rule's state that lives under one shard lock: the input and
// output series whose output key hashes to that shard.
//
// The fields every sample reads or writes come first, from maxT to stats.ingested, so that
// they span as few cache lines as possible and touchInputs can load them all ahead.
type ruleShard struct {
	maxT     int64 // newest sample timestamp seen, ms
	lastRecv int64 // wall clock of the last sample, ms
	closed   int64 // newest closed window
	window   windowCache
	inputs   inputTable
	outputs  []*outputState // nil entries are free, listed in free
	ready    bool           // initialised on first use
	stats    shardStats

	native    *nativeShard      // native-histogram state; nil until a native histogram arrives
	outputIdx map[uint64]uint32 // output hash -> index in outputs
	free      []uint32
	gone      []uint64 // scratch: inputs leaving at a window close
	// firsts are the first samples of inputs begun in outputs held for a handoff (or handed
	// off later): once the other member's view of the input arrives, a counter's increase
	// from its last sample counts, and a gauge's last value fills the windows before.
	firsts map[uint64]firstSample
	// exemplars are what outputs keep of their inputs' exemplars (exemplars.go), by output
	// hash; nil unless the rule keeps exemplars.
	exemplars map[uint64]*exemplarSet

	// What a window close needs to know to skip reading every input of a counter rule:
	// oldestT is at most the last timestamp of any input, and staleMarked is set once any
	// input holds a stale marker. Inputs' last timestamps only grow, so a new input is the
	// only thing that can lower the bound; the first input of an empty shard sets it.
	oldestT     int64
	staleMarked bool
}

// liveOutputs returns the number of output series in the shard.
func (rs *ruleShard) liveOutputs() int { return len(rs.outputIdx) }

// addOutput stores a new output series and returns its index.
func (rs *ruleShard) addOutput(o *outputState) uint32 {
	var idx uint32
	if n := len(rs.free); n > 0 {
		idx = rs.free[n-1]
		rs.free = rs.free[:n-1]
		rs.outputs[idx] = o
	} else {
		idx = uint32(len(rs.outputs))
		rs.outputs = append(rs.outputs, o)
	}
	rs.outputIdx[o.hash] = idx
	return idx
}

// removeOutput frees an output series whose inputs are all gone.
func (rs *ruleShard) removeOutput(idx uint32) {
	delete(rs.outputIdx, rs.outputs[idx].hash)
	rs.outputs[idx] = nil
	rs.free = append(rs.free, idx)
}
