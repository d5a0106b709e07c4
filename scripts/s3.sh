#!/usr/bin/env bash
# scripts/s3.sh: a throwaway S3-compatible server for tests.
#
# Source this file, then:
#
#   s3_install print the path of versitygw, installing it first if missing
#   s3_start   start versitygw (https://github.com/versity/versitygw, Apache-2.0)
#              on 127.0.0.1:<free port>, serving a fresh temp directory with its
#              posix backend, and export REEL_TEST_S3_URL, e.g.
#              s3://reel-test?endpoint=127.0.0.1:41234&region=us-east-1&insecure=true&create_bucket=true&access_key=...&secret_key=...
#   s3_stop    stop it and delete its directory.
#
# Typical use in a test script:
#
#   source scripts/s3.sh
#   s3_start || exit 1
#   trap s3_stop EXIT
#   go test ./...
#
# versitygw is taken from PATH or $(go env GOPATH)/bin, and installed there
# with `go install` (a few minutes, needs the Go module proxy) if missing.
# Run as a command, `scripts/s3.sh install` does only that, so that CI can
# build it before the tests and show its cost apart (.ci/run).
# Knobs: REEL_VERSITYGW_VERSION (default v1.8.0), REEL_VERSITYGW (path to
# the binary). The functions return non-zero on failure and never exit the
# calling shell.

: "${REEL_VERSITYGW_VERSION:=v1.8.0}"

# Fixed credentials: the server lives only as long as the test run.
_REEL_S3_ACCESS_KEY=reeltestaccess
_REEL_S3_SECRET_KEY=reeltestsecret0123456789
_REEL_S3_REGION=us-east-1

_s3_log() { printf 's3.sh: %s\n' "$*" >&2; }

# s3_install prints the path of the versitygw binary, installing it if needed.
s3_install() {
	if [ -n "${REEL_VERSITYGW:-}" ]; then
		if [ -x "$REEL_VERSITYGW" ]; then
			printf '%s\n' "$REEL_VERSITYGW"
			return 0
		fi
		_s3_log "REEL_VERSITYGW=$REEL_VERSITYGW is not executable"
		return 1
	fi
	if command -v versitygw >/dev/null 2>&1; then
		command -v versitygw
		return 0
	fi
	local bindir gopath
	bindir="$(go env GOBIN 2>/dev/null)"
	if [ -z "$bindir" ]; then
		gopath="$(go env GOPATH 2>/dev/null)"
		bindir="${gopath%%:*}/bin"
	fi
	if [ ! -x "$bindir/versitygw" ]; then
		_s3_log "installing versitygw $REEL_VERSITYGW_VERSION into $bindir (takes a few minutes)..."
		# Outside the module, so the project's go.mod is not involved.
		if ! (cd "${TMPDIR:-/tmp}" && GOBIN="$bindir" go install "github.com/versity/versitygw/cmd/versitygw@$REEL_VERSITYGW_VERSION") >&2; then
			_s3_log "go install github.com/versity/versitygw/cmd/versitygw@$REEL_VERSITYGW_VERSION failed"
			return 1
		fi
	fi
	printf '%s\n' "$bindir/versitygw"
}

# _s3_answers PORT succeeds when the gateway's health endpoint answers 200.
_s3_answers() {
	local port=$1
	if command -v curl >/dev/null 2>&1; then
		curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/health" 2>/dev/null
		return
	fi
	local line
	{
		exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
		printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
		IFS= read -r -t 1 line <&3
		exec 3<&-
	} 2>/dev/null
	[[ $line == "HTTP/1."?" 200"* ]]
}

# _s3_port_in_use PORT succeeds if something accepts connections on it.
_s3_port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

s3_start() {
	if [ -n "${_REEL_S3_PID:-}" ]; then
		_s3_log "already running (pid $_REEL_S3_PID); stopping it first"
		s3_stop
	fi
	local gw
	gw="$(s3_install)" || return 1

	_REEL_S3_DIR="$(mktemp -d "${TMPDIR:-/tmp}/reel-s3.XXXXXX")" || return 1
	mkdir -p "$_REEL_S3_DIR/root" || return 1

	local attempt port _
	for attempt in 1 2 3 4 5 6 7 8; do
		port=$((20000 + RANDOM % 40000))
		if _s3_port_in_use "$port"; then
			continue
		fi
		"$gw" --port "127.0.0.1:$port" \
			--access "$_REEL_S3_ACCESS_KEY" --secret "$_REEL_S3_SECRET_KEY" \
			--region "$_REEL_S3_REGION" --health /health --keep-alive --quiet \
			posix "$_REEL_S3_DIR/root" >"$_REEL_S3_DIR/versitygw.log" 2>&1 &
		_REEL_S3_PID=$!
		# Up to ~20s for it to answer; give up on this port if it exits
		# (most likely someone took the port in the meantime).
		for _ in $(seq 1 200); do
			if ! kill -0 "$_REEL_S3_PID" 2>/dev/null; then
				break
			fi
			if _s3_answers "$port"; then
				export REEL_TEST_S3_URL="s3://reel-test?endpoint=127.0.0.1:$port&region=$_REEL_S3_REGION&insecure=true&create_bucket=true&access_key=$_REEL_S3_ACCESS_KEY&secret_key=$_REEL_S3_SECRET_KEY"
				_s3_log "versitygw (pid $_REEL_S3_PID) serving $_REEL_S3_DIR/root on 127.0.0.1:$port"
				return 0
			fi
			sleep 0.1
		done
		_s3_log "versitygw did not come up on port $port (attempt $attempt):"
		sed 's/^/    /' "$_REEL_S3_DIR/versitygw.log" >&2
		kill "$_REEL_S3_PID" 2>/dev/null || true
		wait "$_REEL_S3_PID" 2>/dev/null || true
		_REEL_S3_PID=
	done
	_s3_log "could not start versitygw"
	rm -rf "$_REEL_S3_DIR"
	_REEL_S3_DIR=
	return 1
}

s3_stop() {
	if [ -n "${_REEL_S3_PID:-}" ]; then
		kill "$_REEL_S3_PID" 2>/dev/null || true
		local _
		for _ in $(seq 1 50); do
			kill -0 "$_REEL_S3_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$_REEL_S3_PID" 2>/dev/null || true
		wait "$_REEL_S3_PID" 2>/dev/null || true
		_REEL_S3_PID=
	fi
	if [ -n "${_REEL_S3_DIR:-}" ]; then
		rm -rf "$_REEL_S3_DIR"
		_REEL_S3_DIR=
	fi
	unset REEL_TEST_S3_URL
	return 0
}

# Run as a command rather than sourced: `scripts/s3.sh install`.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	case ${1:-} in
	install)
		gw=$(s3_install) || exit 1
		_s3_log "versitygw: $gw"
		;;
	*)
		echo "usage: scripts/s3.sh install    (or source it for s3_start and s3_stop)" >&2
		exit 2
		;;
	esac
fi
