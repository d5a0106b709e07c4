#!/usr/bin/env bash
# scripts/test.sh: run every test of reel, on SQLite and on a real
# PostgreSQL, with the S3 half against a real S3-compatible server.
#
# It starts a throwaway PostgreSQL 15 cluster (scripts/pg.sh) and a versitygw
# S3 server (scripts/s3.sh) on loopback, runs go vet and go test, and stops
# both. Extra arguments go to `go test` (e.g. -run TestLogin ./internal/users).
# A whole run (no arguments) then runs each fuzz target for 5 s
# (scripts/fuzz.sh). It prints how long each step (go vet and gofmt; go
# test; go fuzz) took.
#
# It also runs the crash harness (integration/crash_test.go) for 2 rounds on
# SQLite (REEL_TEST_CRASH=1, unless set otherwise); `make crash` runs it
# longer.
#
# With CI=true a missing PostgreSQL, S3 server or ffmpeg fails the run; on a
# laptop without them their half of the tests is skipped with a loud notice.
set -euo pipefail
cd "$(dirname "$0")/.."

ci=${CI:-false}
export REEL_TEST_CRASH=${REEL_TEST_CRASH:-1}
warn() { printf '\n!!! %s\n\n' "$*" >&2; }

# shellcheck source=scripts/pg.sh
source scripts/pg.sh
# shellcheck source=scripts/s3.sh
source scripts/s3.sh
# shellcheck source=scripts/timing.sh
source scripts/timing.sh
cleanup() { s3_stop || true; pg_stop || true; }
trap cleanup EXIT

if ! pg_start; then
	if [[ $ci == true ]]; then
		echo "scripts/test.sh: PostgreSQL could not be started and CI=true: failing" >&2
		exit 1
	fi
	warn "POSTGRESQL NOT AVAILABLE: the PostgreSQL half of the database tests will be SKIPPED"
fi
if ! s3_start; then
	if [[ $ci == true ]]; then
		echo "scripts/test.sh: the S3 test server could not be started and CI=true: failing" >&2
		exit 1
	fi
	warn "S3 SERVER NOT AVAILABLE: the S3 half of the blob tests will be SKIPPED"
fi
if ! command -v ffprobe >/dev/null || ! command -v ffmpeg >/dev/null; then
	if [[ $ci == true ]]; then
		echo "scripts/test.sh: ffmpeg/ffprobe are missing and CI=true: failing (apt-get install ffmpeg)" >&2
		exit 1
	fi
	warn "FFMPEG NOT INSTALLED: video probing tests will be SKIPPED (apt-get install ffmpeg)"
fi

# vet_and_fmt runs go vet and fails on a file gofmt would change.
vet_and_fmt() {
	go vet ./... || return
	local unformatted
	unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go')) || return
	if [[ -n $unformatted ]]; then
		echo "gofmt would change:" >&2
		echo "$unformatted" >&2
		return 1
	fi
}

run_all=false
if [[ $# -eq 0 ]]; then
	run_all=true
	set -- ./...
fi
# Each step's time on its own line, and all again at the end, where they
# are not lost above go test's output.
timed "go vet and gofmt" vet_and_fmt
vet_time=$TIMED_LAST
rc=0
timed "go test" go test -count=1 -timeout 45m "$@" || rc=$?
test_time=$TIMED_LAST
# A few seconds of each fuzz target (scripts/fuzz.sh), on a whole run only:
# arguments pick some tests, not the fuzzing.
fuzz_took=""
if [[ $run_all == true ]]; then
	timed "go fuzz" env FUZZTIME=5s scripts/fuzz.sh || rc=$?
	fuzz_took=", go fuzz $TIMED_LAST"
fi
echo "--- took: go vet and gofmt $vet_time, go test $test_time$fuzz_took"
exit "$rc"
