package porttest

import (
	"net"
	"testing"
)

// TestAddrNeverRepeats: addresses picked before anything listens on them
// are all different and all free.
func TestAddrNeverRepeats(t *testing.T) {
	seen := map[string]bool{}
	for range 500 {
		a := Addr(t)
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
	}
	ln, err := net.Listen("tcp", Addr(t))
	if err != nil {
		t.Fatalf("the address is not free: %v", err)
	}
	ln.Close()
}
