// Package text holds the checks that every service applies to names and
// titles that other people will read.
package text

import "strings"

// Deceptive reports whether r is an invisible formatting character that can
// make a name or title read differently from what it is: zero-width
// characters (U+200B–U+200D, U+FEFF), the directional marks and embeddings
// (U+200E, U+200F, U+202A–U+202E) and isolates (U+2066–U+2069), with which
// "ann" and "a\u200bnn" look alike, or a title's words appear reversed.
func Deceptive(r rune) bool {
	switch {
	case r >= 0x200B && r <= 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0xFEFF:
		return true
	}
	return false
}

// HasDeceptive reports whether s holds a Deceptive character.
func HasDeceptive(s string) bool { return strings.ContainsFunc(s, Deceptive) }
