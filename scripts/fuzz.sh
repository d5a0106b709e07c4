#!/usr/bin/env bash
# scripts/fuzz.sh: run every fuzz target of reel for a while each.
#
#   scripts/fuzz.sh          # each target for $FUZZTIME (default 5s)
#   FUZZTIME=10m scripts/fuzz.sh
#
# go test -fuzz takes one target of one package per run, so the targets are
# found (every `func FuzzX(f *testing.F)` in a _test.go file) and run one
# after the other. Their seed corpora (f.Add and testdata/fuzz/FuzzX) also
# run as plain tests in `go test ./...`. A failure leaves the input that
# made it in the package's testdata/fuzz/FuzzX: fix the bug and commit the
# input with the fix, so it stays a test. Minimising a new interesting input
# is capped (FUZZMINIMIZETIME, 2s): go's default minute of it stalls a short
# run of a target whose inputs are files, such as the container parser.
set -euo pipefail
cd "$(dirname "$0")/.."

# Go 1.26's fuzzing coordinator can end a run that found nothing with
# "context deadline exceeded" at the -fuzztime boundary (go.dev/issue/75804,
# fixed in Go 1.27): a run that fails with exactly that and writes no new
# input to testdata/fuzz is reported as that race, not as a failure. Any
# other failure, or a new input, fails.

fuzztime=${FUZZTIME:-5s}
rc=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# inputs counts the files of a corpus directory (0 when there is none).
inputs() { if [[ -d $1 ]]; then find "$1" -type f | wc -l; else echo 0; fi; }
while IFS=: read -r file name; do
	pkg=./$(dirname "$file")
	corpus=$(dirname "$file")/testdata/fuzz/$name
	before=$(inputs "$corpus")
	echo "fuzz $name ($pkg) for $fuzztime"
	if go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" -fuzzminimizetime="${FUZZMINIMIZETIME:-2s}" "$pkg" 2>&1 | tee "$out"; then
		continue
	fi
	if [[ $(inputs "$corpus") == "$before" ]] && grep -q '^    context deadline exceeded$' "$out"; then
		echo "fuzz $name: stopped by Go's fuzztime race (go.dev/issue/75804), no failing input: not a failure"
		continue
	fi
	rc=1
done < <(grep -rHo --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' internal cmd |
	sed -E 's/:func (Fuzz[A-Za-z0-9_]*)\(.*/:\1/' | sort)
exit "$rc"
