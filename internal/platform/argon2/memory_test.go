package argon2

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	xargon2 "golang.org/x/crypto/argon2"
)

// A known answer: RFC 9106's reference implementation (phc-winner-argon2),
// argon2id, "password", "somesalt", t=2, m=64 MiB, p=1.
func TestKnownAnswer(t *testing.T) {
	want, _ := hex.DecodeString("09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7")
	var m Memory
	for range 2 { // in fresh memory, then in reused memory
		if got := m.IDKey([]byte("password"), []byte("somesalt"), 2, 64*1024, 1, 32); !bytes.Equal(got, want) {
			t.Fatalf("got %x, want %x", got, want)
		}
	}
	if got := IDKey([]byte("password"), []byte("somesalt"), 2, 64*1024, 1, 32); !bytes.Equal(got, want) {
		t.Fatalf("IDKey: got %x, want %x", got, want)
	}
}

// One Memory, reused across passwords and parameters (growing, shrinking,
// several lanes) and left full of garbage in between, derives exactly what
// x/crypto derives in fresh memory. Were the first pass to XOR into the
// reused blocks, as x/crypto's does into its zeroed ones, this would fail.
func TestMemoryReuseMatchesXCrypto(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var m Memory
	for i, c := range []struct {
		time, memory uint32
		threads      uint8
	}{
		{2, 19 * 1024, 1}, {1, 64, 1}, {3, 8 * 1024, 4}, {2, 19 * 1024, 1}, {1, 19*1024 + 100, 2}, {2, 1024, 1},
	} {
		pw, salt := make([]byte, 1+i*7), make([]byte, 16)
		for j := range pw {
			pw[j] = byte(rng.Uint32())
		}
		for j := range salt {
			salt[j] = byte(rng.Uint32())
		}
		for j := range m.blocks[:cap(m.blocks)] {
			for k := range m.blocks[j] {
				m.blocks[j][k] = rng.Uint64()
			}
		}
		want := xargon2.IDKey(pw, salt, c.time, c.memory, c.threads, 32)
		if got := m.IDKey(pw, salt, c.time, c.memory, c.threads, 32); !bytes.Equal(got, want) {
			t.Fatalf("case %d %+v: got %x, want %x", i, c, got, want)
		}
		if got := IDKey(pw, salt, c.time, c.memory, c.threads, 32); !bytes.Equal(got, want) {
			t.Fatalf("case %d %+v: IDKey got %x, want %x", i, c, got, want)
		}
	}
	// Argon2i (Key) shares the changed first pass.
	if got, want := Key([]byte("pw"), []byte("somesaltsomesalt"), 3, 4096, 2, 32), xargon2.Key([]byte("pw"), []byte("somesaltsomesalt"), 3, 4096, 2, 32); !bytes.Equal(got, want) {
		t.Fatalf("Key: got %x, want %x", got, want)
	}
}

// x/crypto's IDKey and a reused Memory, at reel's parameters (OWASP's
// m=19 MiB, t=2, p=1), one derivation per core at a time.
func BenchmarkIDKey(b *testing.B) {
	pw, salt := []byte("correct horse battery staple"), []byte("0123456789abcdef")
	b.Run("xcrypto", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				xargon2.IDKey(pw, salt, 2, 19*1024, 1, 32)
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
	})
	b.Run("memory", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			var m Memory
			for pb.Next() {
				m.IDKey(pw, salt, 2, 19*1024, 1, 32)
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
	})
}
