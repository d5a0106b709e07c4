package videos_test

import (
	"encoding/base64"
	"strconv"
	"strings"
	"testing"

	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
	"github.com/reel-video/reel/internal/videos"
)

// FuzzTUSHeaders sends tus creations and PATCHes with fuzzed Upload-Length,
// Upload-Metadata, Upload-Offset, Content-Type and bytes through reel's tus
// endpoint (its checks around tusd, its hooks and its problem answers). No
// answer is a 5xx; every refusal is a problem document; an upload is
// created only for a length within the bound, with only the metadata reel
// keeps, valid; an accepted PATCH moves the offset by exactly its bytes.
func FuzzTUSHeaders(f *testing.F) {
	const maxUpload = 1 << 16
	db := sqldbtest.OpenURL(f, sqldbtest.SQLiteURL(f), videos.Migrations(), videos.MigrationTable)
	e := newEnv(f, db, func(c *envConfig) { c.maxUpload = maxUpload })
	u := e.user("user")
	for _, s := range [][3]string{
		{"10", tusMeta("title", "cats", "filename", "c.mp4"), "0"},
		{"10", tusMeta("title", "cats", "description", "d", "other", "x"), "5"},
		{"0", tusMeta("title", "empty"), "0"},
		{"", tusMeta("title", "x"), "0"},
		{"-1", tusMeta("title", "x"), "0"},
		{"+10", tusMeta("title", "x"), "0"},
		{"65537", tusMeta("title", "x"), "0"},
		{"99999999999999999999", tusMeta("title", "x"), "0"},
		{"10", "title", "0"},
		{"10", "title !!!,filename", "0"},
		{"10", tusMeta("title", "\u202e"), "0"},
		{"10", tusMeta("title", strings.Repeat("x", 201)), "0"},
		{"10", tusMeta("title", "x") + "," + tusMeta("title", "y"), "-1"},
		{"10", tusMeta("title", "x"), "11"},
	} {
		f.Add(s[0], s[1], s[2], "application/offset+octet-stream", []byte("0123456789"))
	}
	f.Add("4", tusMeta("title", "x"), "0", "text/plain", []byte("abcd"))
	f.Fuzz(func(t *testing.T, length, meta, offset, ctype string, chunk []byte) {
		if !sendable(length, meta, offset, ctype) {
			t.Skip("net/http sends no control characters in a header (its server refuses them with 400)")
		}
		e.t = t
		c := e.do("POST", "/api/v1/uploads", u.token, nil, "Tus-Resumable", "1.0.0", "Upload-Length", length, "Upload-Metadata", meta)
		checkTUSAnswer(t, "create", c)
		if c.status != 201 {
			return
		}
		// The server sees a header's value without the spaces and tabs
		// around it (HTTP's optional whitespace): " 1" is 1.
		n, err := strconv.ParseInt(strings.Trim(length, " \t"), 10, 64)
		if err != nil || n < 0 || n > maxUpload {
			t.Fatalf("Upload-Length %q: created", length)
		}
		loc := c.header.Get("Location")
		if !strings.HasPrefix(loc, e.srv.URL+videos.UploadsPath+"/") {
			t.Fatalf("Location %q", loc)
		}
		h := e.do("HEAD", loc, u.token, nil, "Tus-Resumable", "1.0.0")
		if h.status != 200 || h.header.Get("Upload-Length") != strconv.FormatInt(n, 10) || h.header.Get("Upload-Offset") != "0" {
			t.Fatalf("HEAD after creating with %q: %d %v", length, h.status, h.header)
		}
		checkKeptMetadata(t, meta, h.header.Get("Upload-Metadata"))

		p := e.do("PATCH", loc, u.token, chunk, "Tus-Resumable", "1.0.0", "Upload-Offset", offset, "Content-Type", ctype)
		checkTUSAnswer(t, "patch", p)
		if p.status == 204 {
			at, err := strconv.ParseInt(strings.Trim(offset, " \t"), 10, 64)
			want := strconv.FormatInt(at+int64(len(chunk)), 10)
			if err != nil || at != 0 || int64(len(chunk)) > n || p.header.Get("Upload-Offset") != want {
				t.Fatalf("PATCH of %d bytes at %q into %d: offset %q", len(chunk), offset, n, p.header.Get("Upload-Offset"))
			}
		}
		// Give the upload back, unless it completed or was refused whole.
		if d := e.do("DELETE", loc, u.token, nil, "Tus-Resumable", "1.0.0"); d.status != 204 && d.status != 404 {
			t.Fatalf("DELETE: %d %s", d.status, d.raw)
		}
	})
}

// checkTUSAnswer fails on a 5xx, and on a refusal that is not a problem
// document (tusd's own plain-text errors must not reach the client).
func checkTUSAnswer(t *testing.T, what string, r resp) {
	t.Helper()
	if r.status >= 500 || r.status < 200 {
		t.Fatalf("%s: %d %s", what, r.status, r.raw)
	}
	if r.status >= 400 && (r.header.Get("Content-Type") != "application/problem+json" || r.code() == "") {
		t.Fatalf("%s: %d is no problem document: %q %s", what, r.status, r.header.Get("Content-Type"), r.raw)
	}
}

// checkKeptMetadata checks that an upload keeps only title, filename and
// description, with a title that validates.
func checkKeptMetadata(t *testing.T, sent, kept string) {
	t.Helper()
	m := videos.Meta{}
	for pair := range strings.SplitSeq(kept, ",") {
		k, v, _ := strings.Cut(pair, " ")
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Fatalf("kept metadata %q: %v", kept, err)
		}
		switch k {
		case "title":
			m.Title = string(b)
		case "filename":
			m.Filename = string(b)
		case "description":
			m.Description = string(b)
		default:
			t.Fatalf("sent %q, kept %q: key %q", sent, kept, k)
		}
	}
	if v, err := m.Validate(); err != nil || v.Title == "" {
		t.Fatalf("sent %q, kept %q: %v", sent, kept, err)
	}
}

// sendable reports whether net/http's client sends these header values.
func sendable(values ...string) bool {
	for _, v := range values {
		if strings.ContainsFunc(v, func(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f }) {
			return false
		}
	}
	return true
}
