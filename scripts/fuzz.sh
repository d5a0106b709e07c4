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

fuzztime=${FUZZTIME:-5s}
rc=0
while IFS=: read -r file name; do
	pkg=./$(dirname "$file")
	echo "fuzz $name ($pkg) for $fuzztime"
	go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" -fuzzminimizetime="${FUZZMINIMIZETIME:-2s}" "$pkg" || rc=1
done < <(grep -rHo --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' internal cmd |
	sed -E 's/:func (Fuzz[A-Za-z0-9_]*)\(.*/:\1/' | sort)
exit "$rc"
