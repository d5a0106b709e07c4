package users_test

import (
	"context"
	"testing"

	"github.com/reel-video/reel/internal/users"
)

func TestHasherBoundsConcurrency(t *testing.T) {
	h := users.NewHasher(1)
	hash, err := h.Hash(context.Background(), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	ok, err := h.Verify(context.Background(), "correct horse", hash)
	if err != nil || !ok {
		t.Fatalf("verify: %v %v", ok, err)
	}
	if ok, _ := h.Verify(context.Background(), "wrong", hash); ok {
		t.Fatal("wrong password accepted")
	}
	if _, err := h.Verify(context.Background(), "x", "$argon2id$garbage"); err == nil {
		t.Fatal("malformed hash accepted")
	}
}

// A PHC string made by argon2's reference implementation (RFC 9106's
// phc-winner-argon2: "password", "somesalt", t=2, m=64 MiB, p=1) verifies:
// stored hashes do not depend on which argon2 code made them.
func TestVerifyReferenceHash(t *testing.T) {
	const ref = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	h := users.NewHasher(1)
	if ok, err := h.Verify(context.Background(), "password", ref); err != nil || !ok {
		t.Fatalf("reference hash: %v %v", ok, err)
	}
	if ok, _ := h.Verify(context.Background(), "passwore", ref); ok {
		t.Fatal("reference hash accepted another password")
	}
}
