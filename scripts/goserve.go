//go:build ignore

// goserve is the bench's bare Go file server: what Go's net/http itself can
// do with one file, beside nginx and reel's /media (scripts/bench.sh). It
// serves the file named on the command line at every path, opening it for
// each request as nginx does without open_file_cache, with
// http.ServeContent. As reel does, it sends the header before handing the
// file to sendfile (net/http would otherwise read the first 512 bytes
// through user space first). Nothing else: no auth, metering, logging or
// metrics.
//
//	go run scripts/goserve.go -addr 127.0.0.1:18600 FILE
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18600", "listen address")
	flag.Parse()
	path := flag.Arg(0)
	if path == "" {
		log.Fatal("usage: goserve [-addr host:port] FILE")
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, "cannot open the file", http.StatusInternalServerError)
			return
		}
		defer func() { _ = f.Close() }()
		fi, err := f.Stat()
		if err != nil {
			http.Error(w, "cannot stat the file", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "video/mp4")
		http.ServeContent(headerFirst{w}, r, "", fi.ModTime(), f)
	})
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// headerFirst flushes the header before net/http's sendfile path.
type headerFirst struct{ http.ResponseWriter }

func (h headerFirst) ReadFrom(src io.Reader) (int64, error) {
	h.ResponseWriter.(http.Flusher).Flush()
	return h.ResponseWriter.(io.ReaderFrom).ReadFrom(src)
}
