package blob

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// http.ServeContent over a real socket hands a disk object's file to
// sendfile: net unwraps ServeContent's io.LimitedReader to the object's
// SyscallConn (after which the object no longer knows its offset), and the
// bytes and the offset afterwards are right, on a fresh file and on a
// reused one.
func TestDiskObjectServedWithSendfile(t *testing.T) {
	d, err := NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("abcdefghij"), 10_000)
	if _, err := d.Put(t.Context(), "v", bytes.NewReader(body), int64(len(body)), ""); err != nil {
		t.Fatal(err)
	}
	type after struct {
		sent bool
		pos  int64
	}
	got := make(chan after, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o, err := d.Open(r.Context(), "v")
		if err != nil {
			t.Error(err)
			return
		}
		defer o.Close()
		http.ServeContent(w, r, "", time.Time{}, o)
		do := o.(*DiskObject)
		sent := do.lost
		pos, err := o.Seek(0, io.SeekCurrent)
		if err != nil {
			t.Error(err)
		}
		got <- after{sent, pos}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		rng        string
		start, end int // inclusive
		sendfile   bool
	}{
		{"bytes=1000-5999", 1000, 5999, true},
		{"bytes=70000-", 70000, len(body) - 1, true},
		// Under net/http's 512 sniffing bytes the answer is written from
		// memory; the offset must still come out right.
		{"bytes=5-9", 5, 9, false},
		{"bytes=0-99999", 0, 99999, true},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
		req.Header.Set("Range", tc.rng)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, body[tc.start:tc.end+1]) {
			t.Fatalf("range %s: %d, %d bytes", tc.rng, resp.StatusCode, len(b))
		}
		a := <-got
		if a.sent != tc.sendfile {
			t.Fatalf("range %s: sent by sendfile %v, want %v", tc.rng, a.sent, tc.sendfile)
		}
		if a.pos != int64(tc.end+1) {
			t.Fatalf("range %s: offset after sending %d, want %d", tc.rng, a.pos, tc.end+1)
		}
	}
}
