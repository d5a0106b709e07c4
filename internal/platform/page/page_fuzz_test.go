package page

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/reel-video/reel/internal/platform/errs"
)

// FuzzCursor: any cursor a client sends either decodes or is refused as
// ErrBadCursor (a 400); a decoded cursor encodes back to one that decodes
// to the same position; a position the server encodes decodes to itself;
// a limit is refused as ErrBadLimit or lands in [1, max].
func FuzzCursor(f *testing.F) {
	for _, s := range []string{"", Cursor{T: 1733100000000000, ID: "0191e7a4-0000-7000-8000-000000000000"}.Encode(),
		"MTIzfGE", "fGE", "MTIz", "LTF8eA", "K3wxfHg", "%%%", strings.Repeat("A", 257)} {
		f.Add(s, int64(0), "", "")
	}
	f.Add("", int64(-1), "a|b", "16")
	f.Add("", int64(9223372036854775807), "\x00", "0")
	for _, l := range []string{"1", "101", "-1", "1000000000000000000000", "1e3", " 5", "+7", "0x10"} {
		f.Add("", int64(0), "", l)
	}
	f.Fuzz(func(t *testing.T, s string, ts int64, id, limit string) {
		if r, err := Parse("", limit, 16, 100); err != nil {
			if !errors.Is(err, ErrBadLimit) || errs.KindOf(err) != errs.Invalid {
				t.Fatalf("limit %q: %v, want ErrBadLimit", limit, err)
			}
		} else if r.Limit < 1 || r.Limit > 100 || (limit == "" && r.Limit != 16) {
			t.Fatalf("limit %q = %d", limit, r.Limit)
		}

		c, err := Decode(s)
		switch {
		case err != nil:
			if !errors.Is(err, errs.ErrBadCursor) || errs.KindOf(err) != errs.Invalid {
				t.Fatalf("Decode(%q): %v, want ErrBadCursor", s, err)
			}
		case s == "":
			if !c.Zero() {
				t.Fatalf("the empty cursor decodes to %+v", c)
			}
		default:
			if c.Zero() || !utf8.ValidString(c.ID) || strings.ContainsFunc(c.ID, unicode.IsControl) {
				t.Fatalf("Decode(%q) = %+v: an id no row can have", s, c)
			}
			if back, err := Decode(c.Encode()); err != nil || back != c {
				t.Fatalf("Decode(%q) = %+v, re-encoded decodes to %+v, %v", s, c, back, err)
			}
		}

		// What the server encodes comes back whole, unless the id is one
		// no row has (ids are UUIDs) or the cursor outgrows the bound.
		mine := Cursor{T: ts, ID: id}
		enc := mine.Encode()
		back, err := Decode(enc)
		valid := id != "" && utf8.ValidString(id) && !strings.ContainsFunc(id, unicode.IsControl)
		switch {
		case valid && len(enc) <= 256:
			if err != nil || back != mine {
				t.Fatalf("Encode(%+v) = %q decodes to %+v, %v", mine, enc, back, err)
			}
		case err == nil && back != mine:
			t.Fatalf("Encode(%+v) = %q decodes to another position %+v", mine, enc, back)
		}
	})
}
