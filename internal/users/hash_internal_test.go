package users

import (
	"context"
	"errors"
	"testing"
	"time"
)

// With every slot taken, a hash waits; a caller whose context ends gives up
// instead of queueing forever, and a freed slot lets the next one through.
func TestHasherQueues(t *testing.T) {
	h := NewHasher(1)
	if err := h.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, "correct horse"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hash with all slots busy: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := h.Hash(context.Background(), "correct horse")
		done <- err
	}()
	select {
	case <-done:
		t.Fatal("hash ran while the only slot was taken")
	case <-time.After(50 * time.Millisecond):
	}
	h.release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
