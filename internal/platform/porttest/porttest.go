// Package porttest hands tests loopback addresses for the processes they
// start themselves, which must be told an address before they listen.
package porttest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// handedOut holds every port Addr has returned in this test binary: a
// test often picks several addresses before it starts any process, so a
// port that is free now may still be one it was given already.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// Addr picks a free loopback address, never one it picked before. The
// port is taken below Linux's ephemeral range (32768 and up): a port the
// kernel hands out for :0 is also what it hands to outgoing connections,
// which can take it between this check and the child's listen.
func Addr(t testing.TB) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 1000 {
		port := 20000 + rand.IntN(12000)
		if handedOut.ports[port] {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		handedOut.ports[port] = true
		return addr
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}
