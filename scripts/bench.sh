#!/usr/bin/env bash
# scripts/bench.sh: the original system's 1000-user load test against reel,
# and reel against the physical limits of the machine it runs on, in one run.
#
#   scripts/bench.sh            # takes about ten minutes on 2 cores
#
# It builds reel, then on loopback:
#   1. the 1000-user scenario (reel loadtest: the API's mix and the web
#      app's pages) against an all-in-one reel on SQLite, the same without
#      uploads (the reads' own figures), a flat-out
#      read run, small uploads with no pause, and a login-only run beside
#      the bare argon2id hash rate on the same cores (HASH_BENCH);
#   2. a 1 GiB upload against a fresh reel, beside a raw sequential write of
#      the same bytes (dd conv=fsync), with reel's peak RSS (VmHWM) during it;
#   3. byte-range serving of that video from /media beside nginx and a bare
#      Go file server (scripts/goserve.go) serving the same file, with wrk;
#   4. the two 1000-user scenarios again on PostgreSQL (scripts/pg.sh),
#      and the full mix once more with REEL_STREAMING=off: every other run
#      has adaptive streaming on, so uploads enqueue transcodes;
#   5. adaptive streaming (scripts/bench-streaming.sh): the first playable
#      HLS rendition of a 60 s 1080p clip, idle and behind a queue, its
#      full ladder, and HLS viewers at real-time pace against reel and
#      against nginx serving the same files.
# The reports and charts go under docs/bench/. In docs/benchmarks.md it
# rewrites only the text between pairs of marker comments: the
# current-results table (<!-- bench:results:begin --> ... end -->), the
# section of the latest run (<!-- bench:run:begin --> ... end -->) and
# that of the latest streaming run (<!-- bench:streaming:begin --> ...);
# the rest of the document (method, history) is written by hand. The
# report is scripts/bench-report.sh.
#
# Environment: USERS (1000), DURATION (60s), THINK (1s), SAT_USERS (100,
# 0 skips the flat-out run), BENCH_OUT (docs/bench), BENCH_DOC
# (docs/benchmarks.md), SKIP_PG=1, SKIP_BIG=1 (no 1 GiB upload or media),
# SKIP_STREAMING=1, BENCH_ONLY=streaming (5. alone, about ten minutes;
# the run section of 1. to 4. is left as it is); skipped rows keep their
# last figures. DRAIN_S (300): the longest wait for a mix's media jobs.
# HASH_PKG (./internal/users) and HASH_BENCH (IDKey): the benchmark of the
# bare hash, which reports hashes/s. The streaming part's own variables
# are described in scripts/bench-streaming.sh. Needs ffmpeg, jq, curl,
# nginx and wrk; as root it installs the last two with apt-get when they
# are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${USERS:-1000}
DURATION=${DURATION:-60s}
THINK=${THINK:-1s}
SAT_USERS=${SAT_USERS:-100}
OUT=${BENCH_OUT:-docs/bench}
DOC=${BENCH_DOC:-docs/benchmarks.md}
ADMIN_EMAIL=bench-admin@example.com
ADMIN_PASSWORD=bench-admin-password
BIG_BYTES=$((1 << 30))
# The original mix without its writes: what reads do when uploads (each
# one spawns ffmpeg for its poster) are not eating the cores.
READ_WEIGHTS="feed=10,storage=5,usage=5,logs=3,play=3,admin_logs=1"
HASH_PKG=${HASH_PKG:-./internal/users}
HASH_BENCH=${HASH_BENCH:-IDKey}
DRAIN_S=${DRAIN_S:-300}
BENCH_ONLY=${BENCH_ONLY:-}
case $BENCH_ONLY in
"" | streaming) ;;
*) echo "bench.sh: BENCH_ONLY=$BENCH_ONLY: the only part that runs alone is streaming" >&2; exit 1 ;;
esac
# part NAME: whether this run measures a part: mix (1. to 4.) or streaming.
part() {
	case $1 in
	mix) [[ -z $BENCH_ONLY ]] ;;
	streaming) [[ ${SKIP_STREAMING:-0} != 1 && (-z $BENCH_ONLY || $BENCH_ONLY == streaming) ]] ;;
	esac
}

log() { printf '\n=== %s\n' "$*" >&2; }
die() { echo "bench.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- tools
for t in go ffmpeg jq curl dd awk; do
	command -v "$t" >/dev/null || die "$t is required"
done
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		log "installing nginx and wrk (Debian packages)"
		apt-get install -y nginx wrk >/dev/null || die "apt-get install nginx wrk failed"
	else
		die "nginx and wrk are required (apt-get install nginx wrk)"
	fi
fi

work=$(mktemp -d /tmp/reel-bench.XXXXXX)
chmod 755 "$work"
: >"$work/summaries.txt"
reel_pid="" nginx_pid="" goserve_pid="" autogroup_was=""
autogroup_knob=/proc/sys/kernel/sched_autogroup_enabled
# shellcheck source=scripts/pg.sh
source scripts/pg.sh
cleanup() {
	[[ -n $reel_pid ]] && kill "$reel_pid" 2>/dev/null && wait "$reel_pid" 2>/dev/null
	[[ -n $nginx_pid ]] && kill "$nginx_pid" 2>/dev/null
	[[ -n $goserve_pid ]] && kill "$goserve_pid" 2>/dev/null
	pg_stop || true
	[[ -n $autogroup_was ]] && echo "$autogroup_was" >"$autogroup_knob"
	rm -rf "$work"
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
	local p
	for ((p = ${1:-18400}; p < ${1:-18400} + 200; p++)); do
		port_free "$p" && { echo "$p"; return 0; }
	done
	die "no free port"
}
# calc EXPR: floating-point arithmetic through awk; ratio EXPR: the same
# with two decimals.
calc() { awk "BEGIN { printf \"%.4g\", $1 }"; }
ratio() { awk "BEGIN { printf \"%.2f\", $1 }"; }
fixed() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }

# ---------------------------------------------------------------- machine
ncpu=$(nproc)
model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
kernel=$(uname -sr)
gover=$(go version | awk '{print $3}')
fstype=$(df -T "$work" | awk 'NR==2 {print $2}')
commit=$(git describe --always --dirty 2>/dev/null || echo unknown)
# Other work on the machine moves every figure: say how busy it was.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# Autogroup scheduling (on in most distributions' kernels) shares the
# cores between sessions before threads, and PostgreSQL gives every
# backend a session of its own: each busy backend would weigh as much as
# all of reel. Hosts that run PostgreSQL turn it off (docs/operations.md,
# decision 0021); so does the bench for its run, as root, and puts it back.
if [[ ! -e $autogroup_knob ]]; then
	autogroup="not in this kernel"
elif [[ $(<"$autogroup_knob") == 0 ]]; then
	autogroup="off"
elif [[ -w $autogroup_knob ]] && echo 0 >"$autogroup_knob" 2>/dev/null; then
	autogroup_was=1 autogroup="off for the run (on before it)"
else
	autogroup="on (not root: could not turn it off; PostgreSQL's figures suffer, see decision 0021)"
fi
log "machine: $ncpu × $model, $mem, $kernel, $gover, $fstype under /tmp; autogroup scheduling $autogroup"

log "building reel"
go build -o "$work/reel" ./cmd/reel
if part mix; then
	go build -o "$work/goserve" scripts/goserve.go
	# The hash benchmark is looked up now rather than after the first runs.
	listed=$(go test "$HASH_PKG" -list "^Benchmark$HASH_BENCH\$")
	grep -qx "Benchmark$HASH_BENCH" <<<"$listed" ||
		die "no Benchmark$HASH_BENCH in $HASH_PKG (set HASH_PKG and HASH_BENCH to the bare hash's benchmark)"
fi

# ---------------------------------------------------------------- reel
# start_reel NAME [VAR=value …]: an all-in-one reel on a fresh data dir on
# loopback, limits opened (every virtual user comes from 127.0.0.1 and
# uploads more than the default daily 100 MiB), with a bootstrap admin and
# adaptive streaming on (every upload enqueues its transcodes) unless
# REEL_STREAMING=off is given.
start_reel() {
	local name=$1
	shift
	local dir=$work/$name port
	mkdir -p "$dir/data"
	port=$(free_port 18400)
	env REEL_DATA_DIR="$dir/data" REEL_HTTP_ADDR="127.0.0.1:$port" REEL_LOG_LEVEL=warn \
		REEL_STORAGE_QUOTA=-1 REEL_DAILY_UPLOAD_LIMIT=-1 REEL_DAILY_EGRESS_LIMIT=-1 \
		REEL_MAX_UPLOAD_SIZE=2GiB REEL_LOGIN_MAX_PER_IP=1000000 REEL_LOGIN_MAX_PER_ACCOUNT=1000000 \
		REEL_ADMIN_EMAIL="$ADMIN_EMAIL" REEL_ADMIN_PASSWORD="$ADMIN_PASSWORD" REEL_STREAMING=on \
		"$@" "$work/reel" serve >"$dir/reel.log" 2>&1 &
	reel_pid=$!
	reel_url=http://127.0.0.1:$port
	reel_data=$dir/data
	local i
	for ((i = 0; i < 600; i++)); do
		curl -fsS -o /dev/null "$reel_url/readyz" 2>/dev/null && return 0
		kill -0 "$reel_pid" 2>/dev/null || { cat "$dir/reel.log" >&2; die "reel ($name) exited at start"; }
		sleep 0.1
	done
	cat "$dir/reel.log" >&2
	die "reel ($name) not ready after 60 s"
}
stop_reel() {
	kill -TERM "$reel_pid" 2>/dev/null || true
	wait "$reel_pid" 2>/dev/null || true
	reel_pid=""
}
admin_token() {
	curl -fsS -H 'Content-Type: application/json' \
		-d "{\"email\":\"$ADMIN_EMAIL\",\"password\":\"$ADMIN_PASSWORD\"}" "$reel_url/api/v1/auth/login" | jq -r .access_token
}
# loadtest OUTDIR ARGS…: reel loadtest against the running reel.
loadtest() {
	local dir=$1
	shift
	"$work/reel" loadtest -url "$reel_url" -out "$dir" -progress 10s "$@" 2>"$work/loadtest.log" | tee -a "$work/summaries.txt" >&2
}
route() { jq -r --arg r "$2" ".routes[] | select(.name == \$r) | $3" "$1/results.json"; }

# The 1000-user scenario: the original test plan, THINK between actions.
# scenario DIR [FLAGS…]
scenario() {
	local dir=$1
	shift
	rm -rf "$dir"
	loadtest "$dir" -users "$USERS" -duration "$DURATION" -think "$THINK" -timeout 3m \
		-admin-email "$ADMIN_EMAIL" -admin-password "$ADMIN_PASSWORD" "$@"
}
# media_jobs: the running reel's poster, transcode and storyboard jobs
# that run or wait to run (its reel_jobs metric).
media_jobs() {
	curl -fsS "$reel_url/metrics" 2>/dev/null | awk '
		$1 ~ /^reel_jobs\{/ && $1 ~ /kind="(poster|transcode|storyboard)"/ && $1 ~ /state="(running|available)"/ { n += $2 }
		END { print n + 0 }'
}
# drain_jobs: wait (at most DRAIN_S) until the running reel has done the
# media jobs (posters, transcodes, storyboards) the last run left, so that
# the next run does not share the cores with them; prints "jobs seconds
# left": the jobs at the start, the wait, and the jobs left at its end.
drain_jobs() {
	local n first="" t0=$SECONDS
	while :; do
		n=$(media_jobs)
		[[ -z $first ]] && first=$n
		((n == 0 || SECONDS - t0 >= DRAIN_S)) && break
		sleep 1
	done
	echo "$first $((SECONDS - t0)) $n"
}
# Uploads of the small video as fast as the server takes them.
upload_run() {
	rm -rf "$1"
	loadtest "$1" -users $((4 * ncpu)) -duration 20s -think 0 -weights upload=1
	route "$1" upload '"\(.throughput_rps) \(.latency_ms.p50)"'
}
# Logins as fast as the server takes them: a few users, no pause.
login_run() {
	rm -rf "$1"
	loadtest "$1" -users $((4 * ncpu)) -duration 30s -think 0 -weights login=1
	route "$1" login .throughput_rps
}

# nginx_start ROOT CONNECTIONS: nginx serving the files under ROOT on a free
# loopback port (nginx_port), a worker per core, sendfile, no access log,
# up to CONNECTIONS connections per worker.
nginx_start() {
	local user_line="" i
	nginx_port=$(free_port 18600)
	mkdir -p "$work/nginx/logs"
	[[ $(id -u) -eq 0 ]] && user_line="user root;"
	cat >"$work/nginx/nginx.conf" <<EOF
$user_line
worker_processes $ncpu;
worker_rlimit_nofile $((2 * $2 + 64));
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections $2; }
http {
	access_log off;
	sendfile on;
	tcp_nopush off; # with sendfile and small ranges it waits out delayed ACKs (40 ms a request)
	keepalive_requests 1000000;
	types { video/mp4 mp4; application/vnd.apple.mpegurl m3u8; }
	default_type application/octet-stream;
	server {
		listen 127.0.0.1:$nginx_port backlog=4096;
		root $1;
	}
}
EOF
	nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
	nginx_pid=$!
	for ((i = 0; i < 50; i++)); do port_free "$nginx_port" || break; sleep 0.1; done
}
nginx_stop() {
	kill "$nginx_pid" 2>/dev/null || true
	wait "$nginx_pid" 2>/dev/null || true
	nginx_pid=""
}

# shellcheck source=scripts/bench-streaming.sh
source scripts/bench-streaming.sh

# ---------------------------------------------------------------- 1. to 4.
# The mix and the physical limits: everything but BENCH_ONLY=streaming.
mkdir -p "$OUT"
pg_ok=""
login_pg=""
upload_note="" media_note=""
up_mibs="" dd_mibs="" hwm_kib="" up_status="" big_size=""
media_done=""
if part mix; then
	# ---------------------------------------------------------------- 1. SQLite
	log "SQLite: $USERS users for $DURATION"
	start_reel sqlite
	scenario "$OUT/sqlite"
	log "SQLite: $USERS users for $DURATION, reads only"
	read -r drain_sqlite drain_sqlite_s drain_sqlite_left < <(drain_jobs)
	log "media jobs left by the full mix: $drain_sqlite; $drain_sqlite_left left after $drain_sqlite_s s"
	scenario "$OUT/sqlite-reads" -weights "$READ_WEIGHTS"
	read -r upload_cap upload_cap_p50 < <(upload_run "$work/upload-sqlite")
	read -r drain_upload drain_upload_s drain_upload_left < <(drain_jobs)
	log "media jobs left by the upload run: $drain_upload; $drain_upload_left left after $drain_upload_s s"
	# What starting ffmpeg costs before it reads a byte (CPU ms per start).
	exec_ms=$( { TIMEFORMAT='%U %S'; time (for _ in 1 2 3 4 5 6 7 8 9 10; do ffmpeg -version >/dev/null; done); } 2>&1 | awk '{ printf "%.0f", ($1 + $2) * 100 }')
	ffmpeg_libs=$(ldd "$(command -v ffmpeg)" | wc -l)
	sat_rps="" sat_dir="$OUT/sqlite-flat-out"
	if ((SAT_USERS > 0)); then
		log "SQLite: $SAT_USERS users reading flat out (no pause) for 30s"
		rm -rf "$sat_dir"
		loadtest "$sat_dir" -users "$SAT_USERS" -duration 30s -think 0 -weights "$READ_WEIGHTS" \
			-admin-email "$ADMIN_EMAIL" -admin-password "$ADMIN_PASSWORD"
		sat_rps=$(jq -r '([.routes[] | select(.name | IN("register", "login", "admin_login", "web_login") | not) | .requests] | add) / .load_s' "$sat_dir/results.json")
	fi
	stop_reel

	# ---------------------------------------------------------------- 1. logins vs the hash rate
	# hash_runs: five runs of the bare hash benchmark, one rate a line.
	hash_runs() {
		go test "$HASH_PKG" -run '^$' -bench "^Benchmark$HASH_BENCH\$" -benchtime 100x -count 5 |
			awk -v b="Benchmark$HASH_BENCH" '$1 ~ "^" b "(-[0-9]+)?$" { for (i = 1; i < NF; i++) if ($(i+1) == "hashes/s") print $i }'
	}
	# The bound is the median of five runs right before the login run and five
	# right after it: the machine's speed drifts over minutes, and this way the
	# logins and the bound see the same machine. The spread says how noisy it
	# is (other work on it moves both figures alike).
	log "bare argon2id rate on $ncpu cores (Benchmark$HASH_BENCH, 5 runs before the logins and 5 after)"
	hash_before=$(hash_runs)
	# On a fresh reel: what the runs above left for the background (the
	# outbox relays delivering their events, the WAL's checkpoints) would
	# otherwise take cores from the logins.
	start_reel login
	login_sqlite=$(login_run "$work/login-sqlite")
	stop_reel
	hash_after=$(hash_runs)
	hash_all=$(printf '%s\n%s\n' "$hash_before" "$hash_after" | sed '/^$/d' | sort -g)
	[[ -n $hash_all ]] || die "go test $HASH_PKG -bench Benchmark$HASH_BENCH reported no hashes/s"
	hash_rate=$(echo "$hash_all" | awk '{ v[NR] = $1 } END { print (v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2 }')
	hash_lo=$(echo "$hash_all" | head -1)
	hash_hi=$(echo "$hash_all" | tail -1)
	log "hash rate: $hash_rate hashes/s (runs from $hash_lo to $hash_hi); logins: $login_sqlite/s"

	# ---------------------------------------------------------------- 2. upload, RSS, raw disk
	if [[ ${SKIP_BIG:-0} != 1 ]]; then
		log "making a 1 GiB video (MPEG-4 of noise, so that nothing compresses it away)"
		ffmpeg -nostdin -v error -y -f rawvideo -video_size 1280x720 -pix_fmt yuv420p -framerate 25 -i /dev/urandom \
			-frames:v 2000 -fs "$BIG_BYTES" -c:v mpeg4 -q:v 2 "$work/big.mp4"
		big_size=$(stat -c %s "$work/big.mp4")

		log "raw sequential write of the same bytes (dd conv=fsync)"
		cat "$work/big.mp4" >/dev/null # both read it from the page cache
		t0=$(date +%s.%N)
		dd if="$work/big.mp4" of="$work/dd.out" bs=1M conv=fsync status=none
		t1=$(date +%s.%N)
		rm -f "$work/dd.out"
		dd_mibs=$(calc "$big_size / 1048576 / ($t1 - $t0)")

		log "1 GiB upload to a fresh reel, peak RSS"
		start_reel upload
		token=$(admin_token)
		# Start the high-water mark afresh (5 = reset peak RSS), so that it is
		# the upload's; a fresh process has little before it anyway.
		echo 5 >"/proc/$reel_pid/clear_refs" 2>/dev/null || true
		read -r up_status up_time < <(curl -sS -o "$work/upload.json" -w '%{http_code} %{time_total}\n' \
			-H "Authorization: Bearer $token" -F title="one gibibyte" -F "video=@$work/big.mp4;type=video/mp4" \
			"$reel_url/api/v1/videos")
		hwm_kib=$(awk '/^VmHWM/ {print $2}' "/proc/$reel_pid/status")
		if [[ $up_status == 201 ]]; then
			up_mibs=$(calc "$big_size / 1048576 / $up_time")
		else
			upload_note="the upload answered $up_status ($(head -c 300 "$work/upload.json")): the videos service is not (fully) served by this build"
			up_mibs=""
		fi

		# ------------------------------------------------------------ 3. media vs nginx
		video_id=$(jq -r '.video.id // .id // empty' "$work/upload.json" 2>/dev/null || true)
		play_url=""
		if [[ -n $video_id ]]; then
			play_url=$(curl -fsS -X POST -H "Authorization: Bearer $token" "$reel_url/api/v1/videos/$video_id/playback" | jq -r '.url // empty' || true)
			[[ $play_url == /* ]] && play_url=$reel_url$play_url
		fi
		# The stored video, under the disk store's directory: the spool holds
		# a second name of the upload until its poster is cut, then drops it.
		blob=$(find "$reel_data/blobs" -type f -size +$(((BIG_BYTES - (64 << 20)) / 1024))k | head -1)
		if [[ -n $play_url && -n $blob ]]; then
			nginx_start "$(dirname "$blob")" 4096
			nginx_url=http://127.0.0.1:$nginx_port/$(basename "$blob")
			# Random ranges across the whole file, the same script for both.
			cat >"$work/ranges.lua" <<-'EOF'
	local counter = 0
	function setup(thread) counter = counter + 1; thread:set("id", counter) end
	function init(args)
		size, chunk = tonumber(args[1]), tonumber(args[2])
		math.randomseed(os.time() * 1000 + id)
	end
	function request()
		local off = math.random(0, size - chunk)
		return wrk.format(nil, nil, { ["Range"] = "bytes=" .. off .. "-" .. (off + chunk - 1) })
	end
	function done(s, latency, requests)
		local e = s.errors
		io.write(string.format("RESULT %d %d %d %d %d\n", s.requests, s.bytes, s.duration,
			e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(99)))
	end
	EOF
			# wrkrun URL CHUNK → "req/s MiB/s errors p99_ms"
			wrkrun() {
				wrk -t "$ncpu" -c 32 -d 15s -s "$work/ranges.lua" "$1" -- "$big_size" "$2" |
					awk '/^RESULT/ { printf "%.1f %.1f %d %.2f\n", $2 / ($4 / 1e6), $3 / 1048576 / ($4 / 1e6), $5, $6 / 1000 }'
			}
			log "range serving: nginx vs /media, 64 KiB and 1 MiB random ranges"
			read -r nginx_small_rps nginx_small_mibs nginx_small_err nginx_small_p99 < <(wrkrun "$nginx_url" 65536)
			read -r reel_small_rps reel_small_mibs reel_small_err reel_small_p99 < <(wrkrun "$play_url" 65536)
			read -r nginx_big_rps nginx_big_mibs nginx_big_err nginx_big_p99 < <(wrkrun "$nginx_url" 1048576)
			read -r reel_big_rps reel_big_mibs reel_big_err reel_big_p99 < <(wrkrun "$play_url" 1048576)
			# What Go's net/http itself does with the same file, in the same
			# minutes: the bound for reel, which is a Go server too.
			gport=$(free_port 18700)
			"$work/goserve" -addr "127.0.0.1:$gport" "$blob" &
			goserve_pid=$!
			for ((i = 0; i < 50; i++)); do port_free "$gport" || break; sleep 0.1; done
			read -r go_small_rps go_small_mibs go_small_err go_small_p99 < <(wrkrun "http://127.0.0.1:$gport/" 65536)
			read -r go_big_rps go_big_mibs go_big_err go_big_p99 < <(wrkrun "http://127.0.0.1:$gport/" 1048576)
			kill "$goserve_pid" 2>/dev/null || true
			goserve_pid=""
			media_done=1
			if ((nginx_small_err + nginx_big_err + reel_small_err + reel_big_err > 0)); then
				# A ratio against error answers would mean nothing.
				media_done=""
				media_note="errors in the runs (nginx $nginx_small_err and $nginx_big_err, reel $reel_small_err and $reel_big_err): no ratio"
			fi
			nginx_stop
		else
			media_note="no playback URL (the videos service is not served by this build, or the upload failed): /media was not measured"
		fi
		stop_reel
	else
		media_note="skipped (SKIP_BIG=1)"
		upload_note="skipped (SKIP_BIG=1)"
	fi

	# ---------------------------------------------------------------- 4. PostgreSQL
	if [[ ${SKIP_PG:-0} != 1 ]]; then
		if pg_start; then
			pg_port=${REEL_TEST_POSTGRES_URL##*127.0.0.1:}
			pg_port=${pg_port%%/*}
			psql -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -c 'CREATE DATABASE reel_bench' >/dev/null
			pg_version=$(psql -tA -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -c 'SHOW server_version')
			log "PostgreSQL $pg_version: $USERS users for $DURATION"
			start_reel postgres REEL_DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/reel_bench?sslmode=disable"
			scenario "$OUT/postgres"
			read -r drain_pg drain_pg_s drain_pg_left < <(drain_jobs)
			log "media jobs left by the full mix: $drain_pg; $drain_pg_left left after $drain_pg_s s"
			log "PostgreSQL: $USERS users for $DURATION, reads only"
			scenario "$OUT/postgres-reads" -weights "$READ_WEIGHTS"
			login_pg=$(login_run "$work/login-pg")
			stop_reel
			# The full mix again without adaptive streaming (no transcode or
			# storyboard jobs, posters only), on a fresh database: what the
			# workers beside the requests cost the reads.
			psql -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -c 'CREATE DATABASE reel_bench_off' >/dev/null
			log "PostgreSQL: $USERS users for $DURATION, REEL_STREAMING=off"
			start_reel postgres-off REEL_DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/reel_bench_off?sslmode=disable" REEL_STREAMING=off
			scenario "$OUT/postgres-nostreaming"
			stop_reel
			pg_stop
			pg_ok=1
		else
			log "PostgreSQL could not be started: its half is skipped"
		fi
	fi
fi

# ---------------------------------------------------------------- 5. streaming
if part streaming; then
	streaming_bench
fi

# ---------------------------------------------------------------- report
# shellcheck source=scripts/bench-report.sh
source scripts/bench-report.sh
