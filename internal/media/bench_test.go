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
// with libx264's preset; "analyze" is Analyze (ffprobe, and the keyframe
// scan); "first/remux" and "first/240p" are the first rendition of a
// source that can be remuxed and of one that cannot. Each encoding one
// reports wall time ÷ the clip's duration (wall/dur: 1.0 is real time),
// ffmpeg's CPU time ÷ the duration (cpu/dur: on two cores, a wall/dur
// below cpu/dur ÷ 2 cannot be had) and the rate of all the files written
// (kbit/s: what the renditions cost in storage and, per rung, egress).
func BenchmarkLadder1080p(b *testing.B) {
	tools := realTools(b)
	const seconds = 60
	dir := b.TempDir()
	path := filepath.Join(dir, "src.mp4")
	// Made without mediatest.FFmpeg's two minutes per run, which a
	// minute of 1080p can take on a busy machine.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	err := tools.run.Run(ctx, tools.ffmpeg, []string{"-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
		"testsrc2=size=1920x1080:rate=30:duration=60,noise=alls=4:allf=t",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=60",
		"-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-g", "60", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "128k", fileURL(path)}, nil)
	if err != nil {
		b.Fatal(err)
	}
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
		var size int64
		for b.Loop() {
			before := childCPU()
			start := time.Now()
			if err := tools.Encode(context.Background(), src, rungs, out, nil); err != nil {
				b.Fatal(err)
			}
			wall += time.Since(start)
			cpu += childCPU() - before
			for _, r := range rungs {
				ix, err := IndexFile(filepath.Join(out, r.File()))
				if err != nil {
					b.Fatal(err)
				}
				size += ix.Size
				_ = os.Remove(filepath.Join(out, r.File()))
			}
		}
		n := float64(b.N) * seconds
		b.ReportMetric(wall.Seconds()/n, "wall/dur")
		b.ReportMetric(cpu.Seconds()/n, "cpu/dur")
		b.ReportMetric(float64(size)*8/n/1000, "kbit/s")
	}
	for _, preset := range []string{"veryfast", "superfast", "ultrafast"} {
		b.Run("ladder/"+preset, func(b *testing.B) {
			t := *tools
			t.preset = preset
			run(b, &t, ladder)
		})
	}
	b.Run("analyze", func(b *testing.B) {
		var wall time.Duration
		for b.Loop() {
			start := time.Now()
			if _, err := tools.Analyze(context.Background(), path); err != nil {
				b.Fatal(err)
			}
			wall += time.Since(start)
		}
		b.ReportMetric(wall.Seconds()/float64(b.N), "s/op")
	})
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
