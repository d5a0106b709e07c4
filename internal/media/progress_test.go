package media

import (
	"strings"
	"testing"
	"time"
)

// writeInPieces writes s to w a few bytes at a time, as a pipe may
// deliver it.
func writeInPieces(w interface{ Write([]byte) (int, error) }, s string, n int) {
	for len(s) > 0 {
		k := min(n, len(s))
		w.Write([]byte(s[:k]))
		s = s[k:]
	}
}

func TestProgress(t *testing.T) {
	out := "frame=10\nfps=0.00\nout_time_us=N/A\nspeed=N/A\nprogress=continue\n" +
		"frame=60\nout_time_us=2500000\nout_time=00:00:02.500000\nspeed=1.25x\nprogress=continue\n" +
		strings.Repeat("x", 1000) + "=1\n" + // a line too long is dropped
		"out_time_us=-5\n" + // and a negative time ignored
		"out_time_us=9900000\nspeed= 2.5x\nprogress=end\n"
	for _, n := range []int{1, 7, len(out)} {
		var got []Progress
		w := newProgressWriter(10, func(p Progress) { got = append(got, p) })
		writeInPieces(w, out, n)
		want := []Progress{
			{},
			{Done: 2500 * time.Millisecond, Percent: 25, Speed: 1.25},
			{Done: 9900 * time.Millisecond, Percent: 100, Speed: 2.5},
		}
		if len(got) != len(want) {
			t.Fatalf("pieces of %d: %+v", n, got)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("pieces of %d: call %d: %+v, want %+v", n, i, got[i], want[i])
			}
		}
	}
	// No callback, unknown duration: no panic, no percent.
	w := newProgressWriter(0, nil)
	writeInPieces(w, out, 3)
	if w.cur.Percent != 100 || w.cur.Done != 9900*time.Millisecond {
		t.Errorf("%+v", w.cur)
	}
}

func TestKeyScan(t *testing.T) {
	tests := []struct {
		name     string
		lines    string
		duration float64
		interval float64
		first    bool
	}{
		{"every 2 s", "0.000000,K_\n0.5,__\n2.0,K_\n3.9,__\n4.0,K_\n5.5,__\n", 6, 2, true},
		{"the tail counts", "0.0,K_\n2.0,K_\n", 9, 7, true},
		{"a long gap", "0.0,K_\n1.0,K_\n8.5,K_\n9.0,__\n", 9.5, 7.5, true},
		{"no keyframe first", "0.0,__\n0.1,K_\n2.0,K_\n", 3, 1.9, false},
		{"an MPEG-TS clock", "1.4,K_\n1.44,__\n3.4,K_\n", 3, 2, true},
		{"times missing", "N/A,K_\n0.0,K_\nN/A,__\n2.0,K_\n", 3, 2, true},
		{"B-frames out of order", "0.0,K_\n0.3,__\n0.1,__\n2.0,K_\n", 3, 2, true},
		{"junk", "garbage\n\n" + strings.Repeat("9", 500) + ",K_\n0.0,K_\n", 1, 1, true},
	}
	for _, tc := range tests {
		for _, n := range []int{1, 5, 1000} {
			k := newKeyScan()
			writeInPieces(k, tc.lines, n)
			interval, first := k.result(tc.duration)
			if !near(interval, tc.interval, 1e-9) || first != tc.first {
				t.Errorf("%s (pieces of %d): %v %v, want %v %v", tc.name, n, interval, first, tc.interval, tc.first)
			}
		}
	}
	k := newKeyScan()
	writeInPieces(k, "0.0,__\n1.0,__\n", 100)
	if interval, _ := k.result(2); interval <= maxRemuxKeyframeInterval {
		t.Errorf("no keyframe: interval %v", interval)
	}
}
