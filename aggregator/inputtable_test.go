package aggregator

import (
	"math/rand/v2"
	"testing"
)

// The table must agree with a Go map through any sequence of inserts, updates and deletes,
// including colliding home slots, wrap-around runs and the zero hash.
func TestInputTableAgreesWithMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, keySpace := range []uint64{16, 300, 1 << 40} {
		var tab inputTable
		ref := map[uint64]inputState{}
		for op := 0; op < 200_000; op++ {
			h := rng.Uint64N(keySpace) + 2 // 0 and 1 share a slot key by design (see tableKey)
			if keySpace == 16 {
				h = h<<59 | 3 // every key homes to the same slot: the longest runs, wrap-around
			}
			switch r := rng.IntN(10); {
			case r < 5:
				in := inputState{t: rng.Int64N(1 << 41), v: rng.Float64(), out: rng.Uint32N(maxOuts)}
				if i, _, ok := tab.get(h); ok {
					tab.slots[i].set(in)
				} else {
					tab.insert(h, in)
				}
				ref[h] = in
			case r < 8:
				tab.delete(h)
				delete(ref, h)
				if rng.IntN(100) == 0 {
					tab.shrink()
				}
			default:
				_, got, ok := tab.get(h)
				want, wok := ref[h]
				if ok != wok || got != want {
					t.Fatalf("space %d op %d: get(%x) = %v %v, want %v %v", keySpace, op, h, got, ok, want, wok)
				}
			}
			if tab.len() != len(ref) {
				t.Fatalf("space %d op %d: len %d, want %d", keySpace, op, tab.len(), len(ref))
			}
		}
		for h, want := range ref {
			if _, got, ok := tab.get(h); !ok || got != want {
				t.Fatalf("space %d: final get(%x) = %v %v, want %v", keySpace, h, got, ok, want)
			}
		}
	}
}

func TestInputTableStoresTheZeroHash(t *testing.T) {
	var tab inputTable
	tab.insert(0, inputState{t: 5})
	if _, in, ok := tab.get(0); !ok || in.t != 5 {
		t.Fatalf("get(0) = %v %v", in, ok)
	}
	tab.delete(0)
	if _, _, ok := tab.get(0); ok || tab.len() != 0 {
		t.Fatal("delete(0) left the input")
	}
}

// A hint is only a shortcut: a stale, wrong or out-of-range one still finds the input, and
// never another input's state.
func TestInputTableSlotHinted(t *testing.T) {
	var tab inputTable
	tab.insert(42, inputState{t: 1, out: 7})
	slot, _, _ := tab.get(42)
	for range 100 { // grows the table: the hint goes stale
		tab.insert(uint64(1000+len(tab.slots)*31+tab.len()), inputState{t: 2})
	}
	other, _, _ := tab.get(1000 + 8*31 + 1)
	for _, hint := range []int{slot, other, -1, len(tab.slots), 1 << 30} {
		i, ok := tab.slotHinted(42, hint)
		if !ok || tab.slots[i].key != 42 || tab.slots[i].state().t != 1 || tab.slots[i].state().out != 7 {
			t.Fatalf("slotHinted(42, %d) = slot %d %v", hint, i, ok)
		}
	}
	if _, ok := tab.slotHinted(43, slot); ok {
		t.Fatal("slotHinted found an input that was never stored")
	}
}

func TestInputTablePacksTimestampsAndOutputs(t *testing.T) {
	for _, in := range []inputState{
		{t: 0, out: 0}, {t: -1, out: 1}, {t: 1_795_000_000_000, v: 3.5, out: maxOuts - 1},
		{t: tsBias - 1, out: 7}, {t: -tsBias, out: 9},
	} {
		var s inputSlot
		s.set(in)
		if got := s.state(); got != in {
			t.Errorf("packed %+v, unpacked %+v", in, got)
		}
	}
}

func TestInputTableShrinksWhenSeriesGo(t *testing.T) {
	var tab inputTable
	for h := uint64(1); h <= 10_000; h++ {
		tab.insert(h*0x9e3779b97f4a7c15, inputState{t: int64(h)})
	}
	grown := len(tab.slots)
	for h := uint64(1); h <= 9_990; h++ {
		tab.delete(h * 0x9e3779b97f4a7c15)
	}
	tab.shrink()
	if len(tab.slots) > 128 || len(tab.slots) >= grown {
		t.Errorf("table of %d inputs kept %d slots (had %d)", tab.len(), len(tab.slots), grown)
	}
	for h := uint64(9_991); h <= 10_000; h++ {
		if _, in, ok := tab.get(h * 0x9e3779b97f4a7c15); !ok || in.t != int64(h) {
			t.Fatalf("lost input %d after shrinking", h)
		}
	}
}
