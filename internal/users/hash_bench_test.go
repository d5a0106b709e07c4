package users_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/reel-video/reel/internal/users"
)

// The bare argon2id rate is the bound on login throughput: a login is one
// Verify, and nothing else it does costs close to it. scripts/bench.sh
// compares `reel loadtest -weights login=1` against BenchmarkVerifyParallel
// run on the same cores.

// BenchmarkHash is one hash at a time, as a single core computes them.
func BenchmarkHash(b *testing.B) {
	h := users.NewHasher(1)
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
}

// BenchmarkVerifyParallel checks passwords on every core at once, through a
// Hasher as wide as the server's default (REEL_HASH_CONCURRENCY = NumCPU).
func BenchmarkVerifyParallel(b *testing.B) {
	h := users.NewHasher(runtime.GOMAXPROCS(0))
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ok, err := h.Verify(ctx, "correct horse battery staple", enc)
			if err != nil || !ok {
				b.Errorf("verify: %v %v", ok, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
}
