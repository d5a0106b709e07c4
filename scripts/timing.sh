# shellcheck shell=bash
# scripts/timing.sh: run a step between two lines, the second saying how long
# it took, so that a slow step of CI or of the tests shows on its own line.
#
#   source scripts/timing.sh
#   timed "go test" go test ./...     # --- go test ... --- go test: 4m23s
#
# timed returns the command's status and leaves the duration (e.g. 4m23s) in
# TIMED_LAST. A command that is a shell function runs without errexit (it is
# the left side of ||), so such a function must check its own steps.

TIMED_LAST=""

# _timing_fmt SECONDS prints 83 as 1m23s and 7 as 7s.
_timing_fmt() {
	if (($1 >= 60)); then
		printf '%dm%02ds' $(($1 / 60)) $(($1 % 60))
	else
		printf '%ds' "$1"
	fi
}

timed() {
	local name=$1 start=$SECONDS rc=0
	shift
	echo "--- $name"
	"$@" || rc=$?
	TIMED_LAST=$(_timing_fmt $((SECONDS - start)))
	if ((rc == 0)); then
		echo "--- $name: $TIMED_LAST"
	else
		echo "--- $name: $TIMED_LAST, failed (exit status $rc)"
	fi
	return "$rc"
}
