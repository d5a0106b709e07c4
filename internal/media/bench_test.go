//go:build unix

package media

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkLadder1080p encodes a 60 s 1080p30 H.264/AAC clip (a moving
// test picture with a little temporal noise, as a camera's) as the worker
// will, run by hand:
//
//	go test -run '^$' -bench Ladder1080p -benchtime 1x ./internal/media
//
// "ladder/PRESET" is the full ladder (240p to 1080p) in one ffmpeg run
// with libx264's preset; "first/remux" and "first/240p" are the first
// rendition of a source that can be remuxed and of one that cannot. Each
// reports wall time ÷ the clip's duration (wall/dur: 1.0 is real time)
// and ffmpeg's CPU time ÷ the duration (cpu/dur: on two cores, a wall/dur
// below cpu/dur ÷ 2 cannot be had).
func BenchmarkLadder1080p(b *testing.B) {
	tools := realTools(b)
	const seconds = 60
	dir := b.TempDir()
	path := clip(b, dir, "src.mp4", "-f", "lavfi", "-i",
		"testsrc2=size=1920x1080:rate=30:duration=60,noise=alls=4:allf=t",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=60",
		"-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-g", "60", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "128k")
	src, err := tools.Analyze(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	if why := src.FastStart(); why != "" {
		b.Fatalf("the clip cannot be remuxed: %s", why)
	}
	ladder := Ladder(src)

	run := func(b *testing.B, tools *Tools, rungs []Rung) {
		out := b.TempDir()
		var wall, cpu time.Duration
		for b.Loop() {
			before := childCPU()
			start := time.Now()
			if err := tools.Encode(context.Background(), src, rungs, out, nil); err != nil {
				b.Fatal(err)
			}
			wall += time.Since(start)
			cpu += childCPU() - before
			for _, r := range rungs {
				if _, err := IndexFile(filepath.Join(out, r.File())); err != nil {
					b.Fatal(err)
				}
				_ = os.Remove(filepath.Join(out, r.File()))
			}
		}
		n := float64(b.N) * seconds
		b.ReportMetric(wall.Seconds()/n, "wall/dur")
		b.ReportMetric(cpu.Seconds()/n, "cpu/dur")
	}
	for _, preset := range []string{"veryfast", "superfast", "ultrafast"} {
		b.Run("ladder/"+preset, func(b *testing.B) {
			t := *tools
			t.preset = preset
			run(b, &t, ladder)
		})
	}
	b.Run("first/remux", func(b *testing.B) {
		run(b, tools, []Rung{PlanLadder(src).First})
	})
	b.Run("first/240p", func(b *testing.B) {
		run(b, tools, ladder[:1])
	})
}

// childCPU is the CPU time used so far by the processes this one has
// waited for.
func childCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
