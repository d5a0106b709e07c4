package blobtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/reel-video/reel/internal/platform/blob"
)

// testPutFile stores local files through blob.PutFile (the store's Import
// when it is an Importer): the content arrives, a file of another size
// than declared or a missing file stores nothing and leaves the previous
// object as it was, and so does a cancelled context.
func (c *suite) testPutFile(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, importer := c.s.(blob.Importer)
	t.Logf("store is an Importer: %v", importer)

	key := c.key("file/a")
	want := data(21, 300<<10)
	info, err := blob.PutFile(ctx, c.s, key, file("a", want), int64(len(want)), "video/mp4")
	if err != nil {
		t.Fatalf("PutFile: %v", err)
	}
	if info.Key != key || info.Size != int64(len(want)) || info.ETag == "" {
		t.Fatalf("PutFile info %+v", info)
	}
	c.wantContent(t, key, want)
	if st, err := c.s.Stat(ctx, key); err != nil || st.Size != info.Size || st.ETag != info.ETag {
		t.Fatalf("Stat after PutFile = %+v, %v; want %+v", st, err, info)
	}

	// Unknown size, and an overwrite.
	again := data(22, 1000)
	if info, err := blob.PutFile(ctx, c.s, key, file("b", again), -1, ""); err != nil || info.Size != 1000 {
		t.Fatalf("PutFile of unknown size over an object = %+v, %v", info, err)
	}
	c.wantContent(t, key, again)

	// Failures leave the previous object.
	for name, tc := range map[string]struct {
		path string
		size int64
		is   error
	}{
		"shorter":  {file("short", data(23, 999)), 1000, blob.ErrSizeMismatch},
		"longer":   {file("long", data(24, 1001)), 1000, blob.ErrSizeMismatch},
		"missing":  {filepath.Join(dir, "none"), 1000, os.ErrNotExist},
		"dir":      {dir, -1, nil},
		"bad key":  {file("badkey", data(25, 10)), 10, blob.ErrInvalidKey},
		"canceled": {file("canceled", data(26, 10)), 10, context.Canceled},
	} {
		k, cctx := key, ctx
		switch name {
		case "bad key":
			k = c.key("file/../x")
		case "canceled":
			cc, cancel := context.WithCancel(ctx)
			cancel()
			cctx = cc
		}
		_, err := blob.PutFile(cctx, c.s, k, tc.path, tc.size, "")
		if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Fatalf("PutFile %s = %v; want an error (%v)", name, err, tc.is)
		}
		c.wantContent(t, key, again)
	}
	fresh := c.key("file/fresh")
	if _, err := blob.PutFile(ctx, c.s, fresh, file("fresh", data(27, 10)), 11, ""); !errors.Is(err, blob.ErrSizeMismatch) {
		t.Fatalf("PutFile of a mismatched size = %v", err)
	}
	c.wantNotFound(t, fresh)
}
