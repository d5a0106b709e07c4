package blob_test

import (
	"fmt"
	"io"
	mrand "math/rand/v2"
	"testing"

	"github.com/reel-video/reel/internal/platform/blob"
)

// benchSource returns n pseudo-random bytes without holding them.
func benchSource(n int64) io.Reader {
	return io.LimitReader(mrand.NewChaCha8([32]byte{1}), n)
}

// BenchmarkDiskPut measures streamed Put throughput (including the fsyncs).
func BenchmarkDiskPut(b *testing.B) {
	for _, size := range []int64{1 << 20, 16 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			s, err := blob.NewDisk(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				key := fmt.Sprintf("bench/%d/video.mp4", i%8)
				i++
				if _, err := s.Put(b.Context(), key, benchSource(size), size, "video/mp4"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDiskReadAt measures ReadAt throughput over a 64 MiB object, as
// range requests would read it (page cache warm).
func BenchmarkDiskReadAt(b *testing.B) {
	const size = 64 << 20
	s, err := blob.NewDisk(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Put(b.Context(), "bench/obj", benchSource(size), size, ""); err != nil {
		b.Fatal(err)
	}
	for _, chunk := range []int{64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", chunk>>10), func(b *testing.B) {
			o, err := s.Open(b.Context(), "bench/obj")
			if err != nil {
				b.Fatal(err)
			}
			defer o.Close()
			p := make([]byte, chunk)
			b.SetBytes(int64(chunk))
			b.ReportAllocs()
			var off int64
			for b.Loop() {
				if _, err := o.ReadAt(p, off); err != nil {
					b.Fatal(err)
				}
				off += int64(chunk)
				if off+int64(chunk) > size {
					off = 0
				}
			}
		})
	}
}
