# shellcheck shell=bash
# scripts/pg.sh: a throwaway PostgreSQL cluster for the tests.
#
# Meant to be sourced, not run:
#
#   source scripts/pg.sh
#   pg_start || exit 1        # the caller decides whether no PostgreSQL is fatal
#   trap pg_stop EXIT
#   go test ./...
#
# pg_start makes a fresh cluster in a temporary directory, tuned for speed
# over durability (the data is thrown away), listening on 127.0.0.1 only, and
# exports REEL_TEST_POSTGRES_URL for internal/platform/sqldb/sqldbtest.
# pg_stop stops it and removes the directory; it is safe to call twice.
#
# This file sets no shell options (no set -e): it runs inside the caller's
# shell and must not change how the caller's script behaves. It works under
# a caller's set -euo pipefail.

_reel_pg_dir=""
_reel_pg_bin=""

# _reel_pg_find_bin prints the directory holding initdb and pg_ctl. The
# version the README names (15; REEL_PG_VERSION changes it) comes first when
# Debian's /usr/lib/postgresql/<version>/bin has it, so that a machine with
# several versions tests the one documented; else the initdb on PATH; else
# the newest /usr/lib/postgresql/*/bin (Debian keeps them off PATH).
_reel_pg_find_bin() {
	local want=${REEL_PG_VERSION:-15}
	if [[ -x /usr/lib/postgresql/$want/bin/initdb && -x /usr/lib/postgresql/$want/bin/pg_ctl ]]; then
		echo "/usr/lib/postgresql/$want/bin"
		return 0
	fi
	local initdb
	initdb=$(command -v initdb 2>/dev/null)
	if [[ -n $initdb ]]; then
		local dir
		# Resolve symlinks such as /usr/local/bin/initdb so pg_ctl and
		# postgres come from the same installation as initdb.
		dir=$(dirname "$(readlink -f "$initdb")")
		if [[ -x $dir/pg_ctl ]]; then
			echo "$dir"
			return 0
		fi
	fi
	local d
	# Newest major version first: sort numerically on the version field.
	for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k4,4 -rn); do
		if [[ -x $d/initdb && -x $d/pg_ctl ]]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

# _reel_pg_as_owner runs a command as the cluster's owner: the postgres user
# when we are root (PostgreSQL refuses to run as root), else ourselves.
_reel_pg_as_owner() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# _reel_pg_port_free succeeds if nothing accepts connections on the port.
_reel_pg_port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pg_start() {
	if [[ -n $_reel_pg_dir ]]; then
		echo "pg_start: a cluster is already running in $_reel_pg_dir" >&2
		return 1
	fi
	_reel_pg_bin=$(_reel_pg_find_bin) || {
		echo "pg_start: no PostgreSQL binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin" >&2
		return 1
	}
	if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
		echo "pg_start: running as root but there is no postgres user to run the server as" >&2
		return 1
	fi

	# /tmp rather than $TMPDIR: the postgres user must be able to reach the
	# directory, and the unix socket path must stay under ~100 bytes.
	_reel_pg_dir=$(mktemp -d /tmp/reel-pg.XXXXXX) || { _reel_pg_dir=""; return 1; }
	if [[ $(id -u) -eq 0 ]]; then
		chown postgres: "$_reel_pg_dir" || { pg_stop; return 1; }
	fi

	# --no-sync: nothing here needs to survive a crash, and syncing the
	# new cluster is most of initdb's time. --locale=C: the same collation
	# everywhere, and no dependence on which locales the machine has.
	if ! _reel_pg_as_owner "$_reel_pg_bin/initdb" -D "$_reel_pg_dir/data" -U postgres --auth=trust \
		-E UTF8 --locale=C --no-sync >"$_reel_pg_dir/initdb.log" 2>&1; then
		echo "pg_start: initdb failed:" >&2
		cat "$_reel_pg_dir/initdb.log" >&2
		pg_stop
		return 1
	fi

	# Try ports from 55432 upward. The probe can race with another process
	# taking the port, so a failed start moves on to the next port too.
	local port started=""
	for ((port = 55432; port < 55532; port++)); do
		_reel_pg_port_free "$port" || continue
		# A fresh log per attempt, so the check below reads this attempt's.
		rm -f "$_reel_pg_dir/server.log"
		if _reel_pg_as_owner "$_reel_pg_bin/pg_ctl" -D "$_reel_pg_dir/data" -l "$_reel_pg_dir/server.log" \
			-w -t 30 -s start -o "-c listen_addresses=127.0.0.1 -p $port -k $_reel_pg_dir \
-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null 2>&1; then
			started=1
			break
		fi
		# A start that failed for another reason than the port would
		# fail the same way on every port: stop early and say why.
		if ! grep -qi "address already in use\|could not create any TCP/IP sockets" "$_reel_pg_dir/server.log" 2>/dev/null; then
			break
		fi
	done
	if [[ -z $started ]]; then
		echo "pg_start: the PostgreSQL server did not start; its log:" >&2
		cat "$_reel_pg_dir/server.log" >&2 2>/dev/null
		pg_stop
		return 1
	fi

	# pg_ctl -w already waited for the server to accept connections; check
	# the TCP listener the tests use as well, when pg_isready exists.
	local isready
	isready=$(command -v pg_isready 2>/dev/null || echo "$_reel_pg_bin/pg_isready")
	if [[ -x $isready ]]; then
		local i
		for ((i = 0; i < 100; i++)); do
			"$isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres && break
			sleep 0.1
		done
		if ((i == 100)); then
			echo "pg_start: the server started but does not answer on 127.0.0.1:$port" >&2
			pg_stop
			return 1
		fi
	fi

	export REEL_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
	echo "pg_start: PostgreSQL $("$_reel_pg_bin/pg_ctl" --version | awk '{print $3}') on 127.0.0.1:$port ($_reel_pg_dir)" >&2
	return 0
}

pg_stop() {
	if [[ -z $_reel_pg_dir ]]; then
		return 0
	fi
	if [[ -f $_reel_pg_dir/data/postmaster.pid ]]; then
		# Immediate mode: the data is about to be deleted, so there is
		# nothing to shut down cleanly.
		_reel_pg_as_owner "$_reel_pg_bin/pg_ctl" -D "$_reel_pg_dir/data" -m immediate -w -s stop >/dev/null 2>&1 || true
	fi
	rm -rf "$_reel_pg_dir"
	_reel_pg_dir=""
	unset REEL_TEST_POSTGRES_URL
	return 0
}
