# The two commands of the README: `make run` and `make test`.
.PHONY: run test build bench crash fuzz

run:
	go run ./cmd/reel serve

test:
	./scripts/test.sh

build:
	CGO_ENABLED=0 go build -trimpath -o bin/reel ./cmd/reel

# The full benchmark of docs/benchmarks.md (long; not part of the tests).
bench:
	./scripts/bench.sh

# Each fuzz target for FUZZTIME (make fuzz FUZZTIME=10m); the test command
# runs them for 5 s each.
FUZZTIME ?= 1m
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

# The crash harness (integration/crash_test.go): reel killed at random
# points, round after round; ROUNDS and SEED replay or lengthen it, and
# REEL_TEST_CRASH_POSTGRES=1 adds PostgreSQL. The test command runs 2
# rounds on SQLite; this runs 3 (default) or more, then waits for every
# poster the kills interrupted.
crash:
	env REEL_TEST_CRASH=1 REEL_TEST_CRASH_ROUNDS=$${ROUNDS:-3} $${SEED:+REEL_TEST_CRASH_SEED=$$SEED} \
		./scripts/test.sh -run TestCrashHarness -v ./integration/
