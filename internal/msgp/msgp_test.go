package msgp

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// reference encodes v as the reflection encoder does with compact ints.
func reference(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAppendersWriteWhatMsgpackWrites(t *testing.T) {
	for _, n := range []int{0, 1, 31, 32, 255, 256, math.MaxUint16, math.MaxUint16 + 1} {
		s := strings.Repeat("x", n)
		if got, want := AppendStr(nil, s), reference(t, s); !bytes.Equal(got, want) {
			t.Errorf("str of %d: % x…, want % x…", n, got[:min(len(got), 6)], want[:min(len(want), 6)])
		}
		arr := make([]bool, n)
		if got, want := append(AppendArrayLen(nil, n), bytes.Repeat([]byte{0xc2}, n)...), reference(t, arr); !bytes.Equal(got, want) {
			t.Errorf("array of %d differs", n)
		}
	}
	for _, n := range []int{0, 1, 15, 16, math.MaxUint16, math.MaxUint16 + 1} {
		m := make(map[int]bool, n)
		for i := range n {
			m[i] = false
		}
		if got, want := AppendMapLen(nil, n), reference(t, m); !bytes.Equal(got, want[:len(got)]) {
			t.Errorf("map of %d: header % x, want % x", n, got, want[:len(got)])
		}
	}
	for _, u := range []uint64{0, 127, 128, 255, 256, math.MaxUint16, math.MaxUint16 + 1, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64} {
		if got, want := AppendUint(nil, u), reference(t, u); !bytes.Equal(got, want) {
			t.Errorf("uint %d: % x, want % x", u, got, want)
		}
	}
	for _, i := range []int64{0, 1, -1, -32, -33, math.MinInt8, math.MinInt8 - 1, math.MinInt16, math.MinInt16 - 1, math.MinInt32, math.MinInt32 - 1, math.MinInt64, math.MaxInt64, 300} {
		if got, want := AppendInt(nil, i), reference(t, i); !bytes.Equal(got, want) {
			t.Errorf("int %d: % x, want % x", i, got, want)
		}
	}
	for _, v := range []bool{false, true} {
		if got, want := AppendBool(nil, v), reference(t, v); !bytes.Equal(got, want) {
			t.Errorf("bool %v: % x, want % x", v, got, want)
		}
	}
}

// The readers take back what msgpack writes, as its decoder reads it, and
// refuse a value cut short, nil and other families.
func TestReadersReadWhatMsgpackWrites(t *testing.T) {
	for _, i := range []int64{0, 1, -1, -33, math.MinInt8 - 1, math.MinInt16 - 1, math.MinInt32 - 1, math.MinInt64, math.MaxInt64} {
		b := reference(t, i)
		if v, next, ok := ReadInt(b, 0); !ok || int64(v) != i || next != len(b) {
			t.Errorf("int %d: %d, %d, %v", i, int64(v), next, ok)
		}
		if _, _, ok := ReadInt(b[:len(b)-1], 0); ok {
			t.Errorf("int %d cut short was read", i)
		}
	}
	if v, _, ok := ReadInt(reference(t, uint64(math.MaxUint64)), 0); !ok || v != math.MaxUint64 {
		t.Errorf("uint64 max: %d %v", v, ok)
	}
	for _, n := range []int{0, 31, 32, 300, math.MaxUint16 + 1} {
		s := strings.Repeat("y", n)
		b := reference(t, s)
		if got, next, ok := ReadStr(b, 0); !ok || string(got) != s || next != len(b) {
			t.Errorf("str of %d: %d bytes, next %d, %v", n, len(got), next, ok)
		}
		if _, _, ok := ReadStr(b[:len(b)-1], 0); ok {
			t.Errorf("str of %d cut short was read", n)
		}
	}
	for _, v := range []bool{false, true} {
		if got, _, ok := ReadBool(reference(t, v), 0); !ok || got != v {
			t.Errorf("bool %v: %v %v", v, got, ok)
		}
	}
	for _, n := range []int{0, 15, 16, math.MaxUint16 + 1} {
		if got, _, ok := ReadArrayLen(reference(t, make([]bool, n)), 0); !ok || got != n {
			t.Errorf("array of %d: %d %v", n, got, ok)
		}
		m := make(map[int]bool, n)
		for i := range n {
			m[i] = true
		}
		if got, _, ok := ReadMapLen(reference(t, m), 0); !ok || got != n {
			t.Errorf("map of %d: %d %v", n, got, ok)
		}
	}
	nilv := []byte{0xc0}
	if _, next, ok := ReadInt(nilv, 0); ok || next != 0 {
		t.Error("ReadInt took nil")
	}
	if _, _, ok := ReadStr(nilv, 0); ok {
		t.Error("ReadStr took nil")
	}
	if _, _, ok := ReadStr([]byte{0xc4, 1, 'x'}, 0); ok {
		t.Error("ReadStr took a bin")
	}
	if _, _, ok := ReadMapLen(reference(t, []bool{}), 0); ok {
		t.Error("ReadMapLen took an array")
	}
}
