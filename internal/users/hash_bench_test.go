package users

import (
	"context"
	"testing"

	"golang.org/x/crypto/argon2"
)

// The bare argon2id rate is the bound on login throughput: a login is one
// Verify, and nothing else it does costs close to it. scripts/bench.sh
// compares `reel loadtest -weights login=1` against BenchmarkIDKey run on
// the same cores.

// BenchmarkHash is one Hasher.Hash at a time, as a single core computes them.
func BenchmarkHash(b *testing.B) {
	h := NewHasher(1)
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
}

// BenchmarkIDKey is x/crypto's argon2.IDKey at reel's parameters on every
// core at once (GOMAXPROCS hashes in flight, as many as the server's
// default REEL_HASH_CONCURRENCY lets run): the login bound.
func BenchmarkIDKey(b *testing.B) {
	pw, salt := []byte("correct horse battery staple"), []byte("0123456789abcdef")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			argon2.IDKey(pw, salt, argonTime, argonMemory, argonThreads, argonKeyLen)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
}
