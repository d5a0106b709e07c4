# scripts/bench-report.sh: the report of scripts/bench.sh, sourced by it
# once every part has run: the results table and the run sections written
# between their markers in docs/benchmarks.md, from the figures in
# bench.sh's variables and the results files under BENCH_OUT.

# ---------------------------------------------------------------- report
# The document keeps its own text; the bench rewrites two generated parts
# of it, each between its marker comments: the current-results table at
# the top and the section of the latest run. A row of the table that this
# run did not measure (SKIP_PG, SKIP_BIG) keeps the figures and date of
# the run that did.
log "writing $DOC"
run_date=$(date -u +%Y-%m-%d)
# verdict OK: "met" or "missed".
verdict() { [[ $1 == 1 ]] && echo "**met**" || echo "**missed**"; }
ge() { awk "BEGIN { exit !($1 >= $2) }"; }
lt() { awk "BEGIN { exit !($1 < $2) }"; }

# block NAME [FILE]: the text between NAME's markers in FILE (default DOC).
block() {
	[[ -f ${2:-$DOC} ]] || return 0
	awk -v b="<!-- bench:$1:begin -->" -v e="<!-- bench:$1:end -->" \
		'index($0, e) == 1 { f = 0 } f { print } index($0, b) == 1 { f = 1 }' "${2:-$DOC}"
}
old_results=$work/old-results.md
block results >"$old_results"

# row KEY WHAT GOAL FIGURE OK: a row measured by this run.
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$(verdict "$5")" "$run_date"; }
# kept KEY WHAT GOAL WHY: the row of the run that last measured KEY, or
# else one that says why it was not measured.
kept() {
	local r
	r=$(awk -v k="| $1 |" 'index($0, k) == 1 { print; exit }' "$old_results")
	if [[ -n $r ]]; then
		echo "$r"
	else
		printf '| %s | %s | %s | not measured: %s | — | — |\n' "$1" "$2" "$3" "$4"
	fi
}
# failed KEY WHAT GOAL WHY: a row this run tried and could not measure.
failed() { printf '| %s | %s | %s | not measured: %s | **not measured** | %s |\n' "$1" "$2" "$3" "$4" "$run_date"; }

# reads_ok DIR: 1 when every read route that ran has p99 < 100 ms.
reads_ok() {
	jq -r '[.routes[] | select(.read and .requests > 0) | .latency_ms.p99 < 100] | if length == 0 then 0 elif all then 1 else 0 end' "$1/results.json"
}
# pages_ok DIR: 1 when every page route that ran has p99 < 50 ms.
pages_ok() {
	jq -r '[.routes[] | select(.page and .requests > 0) | .latency_ms.p99 < 50] | if length == 0 then 0 elif all then 1 else 0 end' "$1/results.json"
}
errors_ok() { jq -r 'if .totals.errors == 0 and .users_ready == .users then 1 else 0 end' "$1/results.json"; }
worst_read() { jq -r '[.routes[] | select(.read and .requests > 0)] | max_by(.latency_ms.p99) | "\(.name) \(.latency_ms.p99 * 10 | round / 10) ms"' "$1/results.json"; }
worst_page() {
	jq -r '[.routes[] | select(.page and .requests > 0)] | if length == 0 then "no page was requested" else (max_by(.latency_ms.p99) | "\(.name) \(.latency_ms.p99 * 10 | round / 10) ms") end' "$1/results.json"
}
unserved() { jq -r '[.routes[] | select(.requests > 0 and .status["404"] == .requests) | .name] | join(", ")' "$1/results.json"; }

full_what="every user registers, logs in, then reads, uploads, plays and deletes with pauses (the original's test plan), and opens the web app's pages"
full_goal="0 errors, every user through setup"
p99_what="the worst p99 among the read routes (feed, storage, usage, own and admin logs) in that run"
reads_what="the same users and pauses without uploads and deletes"
page_what="the worst p99 among the web app's server-rendered pages (feed, watch, my videos; cookie session) in the full mix"
reads_goal="< 100 ms, 0 errors"
# engine_rows ENGINE DIR: the four rows of one engine's two scenarios.
engine_rows() {
	local e=$1 d=$2 ok=0
	row "Errors, full mix ($e)" "$full_what" "$full_goal" \
		"$(jq -r '"\(.totals.errors) errors in \(.totals.requests) requests, \(.users_ready)/\(.users) users, \(.load_s | round) s"' "$d/results.json")" \
		"$(errors_ok "$d")"
	row "Read p99, full mix ($e)" "$p99_what" "< 100 ms" "$(worst_read "$d")" "$(reads_ok "$d")"
	row "Page p99, full mix ($e)" "$page_what" "< 50 ms" "$(worst_page "$d")" "$(pages_ok "$d")"
	[[ $(reads_ok "$d-reads") == 1 && $(errors_ok "$d-reads") == 1 ]] && ok=1
	row "Read p99, reads only ($e)" "$reads_what" "$reads_goal" \
		"$(worst_read "$d-reads"), $(jq -r '"\(.totals.errors) errors"' "$d-reads/results.json")" "$ok"
}
# engine_missing HOW ENGINE WHY: its four rows when it was not measured
# (HOW: kept or failed).
engine_missing() {
	"$1" "Errors, full mix ($2)" "$full_what" "$full_goal" "$3"
	"$1" "Read p99, full mix ($2)" "$p99_what" "< 100 ms" "$3"
	"$1" "Page p99, full mix ($2)" "$page_what" "< 50 ms" "$3"
	"$1" "Read p99, reads only ($2)" "$reads_what" "$reads_goal" "$3"
}

media_what="random 64 KiB and 1 MiB ranges of a 1 GiB video at its signed /media URL, wrk with 32 connections, against nginx serving the same file"
upload_what="one 1 GiB multipart upload with curl, against \`dd conv=fsync\` of the same bytes"
rss_what="reel's peak resident memory (VmHWM) during that upload"
login_what="logins with no pause on SQLite, against the bare argon2id hash rate (x/crypto IDKey on the same cores)"
off_what="the full mix on a fresh reel with REEL_STREAMING=off (posters only, no transcodes): what the workers cost the reads"
off_key="Read p99, full mix, streaming off (PostgreSQL)"
not_mix="not in this run (BENCH_ONLY=streaming)"

results=$work/results.md
{
	echo
	if part mix; then
		echo "Last run: $run_date at \`$commit\`, $ncpu cores; its details are under [Latest run](#latest-run)."
	else
		echo "Last run: $run_date at \`$commit\`, $ncpu cores: the streaming benchmarks alone (BENCH_ONLY=streaming), details"
		echo "under [Latest streaming run](#latest-streaming-run); the other rows keep the figures of the runs that measured them."
	fi
	echo
	echo "| target | what is measured | goal | latest | verdict | run |"
	echo "|---|---|---|---|---|---|"
	if part mix; then
		engine_rows SQLite "$OUT/sqlite"
	else
		engine_missing kept SQLite "$not_mix"
	fi
	if [[ -n $pg_ok ]]; then
		engine_rows PostgreSQL "$OUT/postgres"
		ok=0
		[[ $(reads_ok "$OUT/postgres-nostreaming") == 1 && $(errors_ok "$OUT/postgres-nostreaming") == 1 ]] && ok=1
		row "$off_key" "$off_what" "$reads_goal" \
			"$(worst_read "$OUT/postgres-nostreaming"), $(jq -r '"\(.totals.errors) errors"' "$OUT/postgres-nostreaming/results.json"); pages: $(worst_page "$OUT/postgres-nostreaming")" "$ok"
	elif [[ ${SKIP_PG:-0} == 1 ]] || ! part mix; then
		engine_missing kept PostgreSQL "skipped"
		kept "$off_key" "$off_what" "$reads_goal" "skipped"
	else
		engine_missing failed PostgreSQL "PostgreSQL could not be started"
		failed "$off_key" "$off_what" "$reads_goal" "PostgreSQL could not be started"
	fi
	if [[ -n $media_done ]]; then
		r1=$(ratio "$reel_big_mibs / $nginx_big_mibs")
		r2=$(ratio "$reel_small_rps / $nginx_small_rps")
		ok=0
		ge "$r1" 0.8 && ge "$r2" 0.8 && ok=1
		row "/media vs nginx" "$media_what" "≥ 0.8× nginx at both sizes" \
			"64 KiB: ${r2}× ($(fixed "$reel_small_rps" 0) vs $(fixed "$nginx_small_rps" 0) req/s; a bare Go file server $(ratio "$go_small_rps / $nginx_small_rps")×); 1 MiB: ${r1}× ($(fixed "$reel_big_mibs" 0) vs $(fixed "$nginx_big_mibs" 0) MiB/s)" "$ok"
	elif [[ ${SKIP_BIG:-0} == 1 ]] || ! part mix; then
		kept "/media vs nginx" "$media_what" "≥ 0.8× nginx at both sizes" "${media_note:-$not_mix}"
	else
		failed "/media vs nginx" "$media_what" "≥ 0.8× nginx at both sizes" "$media_note"
	fi
	if [[ -n $up_mibs ]]; then
		r=$(ratio "$up_mibs / $dd_mibs")
		ok=0
		ge "$r" 0.7 && ok=1
		row "Upload vs disk" "$upload_what" "≥ 0.7× the raw write" "${r}× ($(fixed "$up_mibs" 0) vs $(fixed "$dd_mibs" 0) MiB/s)" "$ok"
		mib=$(calc "$hwm_kib / 1024")
		ok=0
		lt "$mib" 150 && ok=1
		row "RSS during a 1 GiB upload" "$rss_what" "< 150 MiB" "$(fixed "$mib") MiB" "$ok"
	elif [[ ${SKIP_BIG:-0} == 1 ]] || ! part mix; then
		kept "Upload vs disk" "$upload_what" "≥ 0.7× the raw write" "${upload_note:-$not_mix}"
		kept "RSS during a 1 GiB upload" "$rss_what" "< 150 MiB" "${upload_note:-$not_mix}"
	else
		failed "Upload vs disk" "$upload_what" "≥ 0.7× the raw write" "$upload_note"
		failed "RSS during a 1 GiB upload" "$rss_what" "< 150 MiB" "$upload_note"
	fi
	if part mix; then
		r=$(ratio "$login_sqlite / $hash_rate")
		ok=0
		ge "$r" 0.9 && ok=1
		row "Login vs hash rate" "$login_what" "≥ 0.9× the hash rate" "${r}× ($(fixed "$login_sqlite") logins/s vs $(fixed "$hash_rate") hashes/s)" "$ok"
	else
		kept "Login vs hash rate" "$login_what" "≥ 0.9× the hash rate" "$not_mix"
	fi
	if part streaming; then
		streaming_rows failed
	else
		streaming_rows kept
	fi
	echo
} >"$results"

# scenario_md DIR NAME: the figures of one load-test run.
scenario_md() {
	local d=$1 name=$2 r
	r=$d/results.json
	jq -r '"- \(.users) users (\(.users_ready) through setup), think time \(.think_ms) ms mean, weights `\(.weights)`.",
		"- Setup (every user registers and logs in, all at once): \(.setup_s * 10 | round / 10) s; load phase: \(.load_s * 10 | round / 10) s, stopped by \(.stop_reason).",
		"- \(.totals.requests) requests, **\(.totals.errors) errors**, \(.totals.throughput_rps * 10 | round / 10) requests/s over the whole run."' "$r"
	echo
	echo "| route | requests | errors | req/s | p50 ms | p90 ms | p99 ms | max ms | answers |"
	echo "|---|--:|--:|--:|--:|--:|--:|--:|---|"
	jq -r 'def r2: if . >= 100 then round elif . >= 10 then (. * 10 | round / 10) else (. * 100 | round / 100) end;
		.routes[] | "| \(.name) | \(.requests) | \(.errors) | \(.throughput_rps * 10 | round / 10) | \(.latency_ms.p50 | r2) | \(.latency_ms.p90 | r2) | \(.latency_ms.p99 | r2) | \(.latency_ms.max | r2) | \(.status | to_entries | map("\(.key)×\(.value)") | join(" "))\(if .transport then " " + (.transport | to_entries | map("\(.key)×\(.value)") | join(" ")) else "" end)\(if .gone then " (\(.gone) gone)" else "" end) |"' "$r"
	echo
	local notes u
	notes=$(jq -r '.notes // [] | .[] | "- " + .' "$r")
	[[ -n $notes ]] && { echo "Notes from the run:"; echo; echo "$notes"; echo; }
	u=$(unserved "$d")
	[[ -n $u ]] && { echo "**Not served by this build** (every answer 404): $u. Those rows measure the 404 path, not the feature."; echo; }
	local rel=${d#docs/}
	echo "![$name throughput]($rel/throughput.svg)"
	echo
	echo "![$name latency p99]($rel/latency-p99.svg)"
	echo
	echo "Full report with a chart per route: [$rel/report.html]($rel/report.html); raw figures: [$rel/results.json]($rel/results.json)."
	echo
}

run=$work/run.md
part mix && {
	echo
	echo "### Run of $run_date at \`$commit\`"
	echo
	echo "Machine: $ncpu × $model (\`nproc\` = $ncpu), $mem, $kernel, $gover, $fstype disk."
	echo "Load average (1, 5, 15 min) before the run: $load_before; after it: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "(the bench itself keeps about 2 busy; more means other work shared the machine)."
	echo "Autogroup scheduling: $autogroup."
	[[ $commit == *-dirty ]] && echo "\"-dirty\": the tree had uncommitted changes."
	echo "Load tests: $USERS users, $DURATION, pauses of $THINK on average."
	skipped=()
	[[ ${SKIP_PG:-0} == 1 ]] && skipped+=("PostgreSQL (SKIP_PG=1)")
	[[ ${SKIP_BIG:-0} == 1 ]] && skipped+=("the 1 GiB upload and /media (SKIP_BIG=1)")
	((SAT_USERS > 0)) || skipped+=("the flat-out reads (SAT_USERS=0)")
	if ((${#skipped[@]} > 0)); then
		echo "Skipped: $(IFS=';'; echo "${skipped[*]}" | sed 's/;/; /g'). The results table keeps those rows' figures from the runs that measured them."
	fi
	echo
	echo "#### SQLite, full mix"
	echo
	scenario_md "$OUT/sqlite" "SQLite"
	echo "Media jobs (posters, transcodes, storyboards) running or waiting when the mix ended: $drain_sqlite;"
	echo "$drain_sqlite_left left after waiting $drain_sqlite_s s (at most DRAIN_S = $DRAIN_S s) before the next run."
	echo
	echo "#### SQLite, reads only"
	echo
	scenario_md "$OUT/sqlite-reads" "SQLite, reads only"
	if [[ -n $sat_rps && -f $sat_dir/results.json ]]; then
		echo "Flat out: $SAT_USERS users reading with no pause: $(fixed "$sat_rps") requests/s (load phase,"
		echo "setup excluded; worst read p99: $(worst_read "$sat_dir")); report in"
		echo "[${sat_dir#docs/}/report.html](${sat_dir#docs/}/report.html)."
		echo
	fi
	if [[ -n $pg_ok ]]; then
		echo "#### PostgreSQL $pg_version, full mix"
		echo
		echo "A throwaway cluster from \`scripts/pg.sh\` (fsync and synchronous_commit off) on the same machine."
		echo
		scenario_md "$OUT/postgres" "PostgreSQL"
		echo "Media jobs running or waiting when the mix ended: $drain_pg; $drain_pg_left left after waiting $drain_pg_s s."
		echo
		echo "#### PostgreSQL, reads only"
		echo
		scenario_md "$OUT/postgres-reads" "PostgreSQL, reads only"
		echo "Login-only run on PostgreSQL (after the two runs above, on the same reel): $(fixed "$login_pg") logins/s."
		echo
		echo "#### PostgreSQL, full mix with streaming off"
		echo
		echo "The same mix on a fresh reel and database with \`REEL_STREAMING=off\`: uploads enqueue posters, no transcodes or storyboards."
		echo
		scenario_md "$OUT/postgres-nostreaming" "PostgreSQL, streaming off"
	elif [[ -f $OUT/postgres/results.json && -f $OUT/postgres-reads/results.json ]]; then
		echo "PostgreSQL was not measured in this run; the reports of the last run that measured it:"
		echo "[${OUT#docs/}/postgres/report.html](${OUT#docs/}/postgres/report.html), [${OUT#docs/}/postgres-reads/report.html](${OUT#docs/}/postgres-reads/report.html)."
		echo
	fi
	echo "#### Against the physical limits"
	echo
	think_s=$(echo "$THINK" | sed 's/ms$/e-3/; s/s$//')
	echo "- Small uploads: $((4 * ncpu)) users uploading the ~300 KiB video with no pause: $(fixed "$upload_cap") uploads/s"
	echo "  (p50 $(fixed "$upload_cap_p50" 0) ms); they left $drain_upload media jobs, $drain_upload_left after $drain_upload_s s. The full mix offers"
	# The upload's share of the full mix, from the weights it ran with.
	read -r w_upload w_total < <(jq -r '.weights | split(",") | map(split("=") | {(.[0]): (.[1] | tonumber)}) | add |
		"\(.upload // 0) \([.[]] | add)"' "$OUT/sqlite/results.json")
	echo "  at most $(fixed "$USERS * $w_upload / $w_total / $think_s") uploads/s ($USERS users, weight $w_upload of $w_total, $THINK pauses)."
	echo "- Starting ffmpeg: $exec_ms ms of CPU (\`ffmpeg -version\`; the binary loads $ffmpeg_libs shared libraries)."
	echo "- Logins: the bare hash (\`go test $HASH_PKG -bench $HASH_BENCH\`) computes $(fixed "$hash_rate") hashes/s on $ncpu cores"
	echo "  (median of 10 runs, 5 right before the logins and 5 right after, from $(fixed "$hash_lo") to $(fixed "$hash_hi"));"
	echo "  \`reel loadtest -weights login=1 -think 0 -users $((4 * ncpu))\` on a fresh reel on SQLite: $(fixed "$login_sqlite") logins/s,"
	echo "  $(ratio "$login_sqlite / $hash_rate")× the hash rate."
	if [[ -n $up_mibs ]]; then
		echo "- Upload vs disk: a $(calc "$big_size / 1048576") MiB MP4 (MPEG-4 Part 2 of noise) written with \`dd bs=1M conv=fsync\`"
		echo "  from the page cache: $(fixed "$dd_mibs") MiB/s; uploaded with curl (multipart, one request) to a fresh reel:"
		echo "  $(fixed "$up_mibs") MiB/s end to end, $(ratio "$up_mibs / $dd_mibs")× the raw write; reel's peak RSS meanwhile"
		echo "  $(calc "$hwm_kib / 1024") MiB (VmHWM after resetting it with clear_refs)."
	elif [[ -n $upload_note ]]; then
		echo "- Upload vs disk: not measured: $upload_note."
	fi
	echo
	if [[ -n $media_done ]]; then
		echo "Range serving: nginx $(nginx -v 2>&1 | awk -F/ '{print $2}') (sendfile, $ncpu workers, no access log) serves the stored"
		echo "blob file; reel serves it at its signed /media URL; a bare Go file server (\`scripts/goserve.go\`)"
		echo "serves it too. wrk, $ncpu threads, 32 connections, 15 s, a random range per request:"
		echo
		echo "| range | nginx req/s | reel req/s | Go req/s | nginx MiB/s | reel MiB/s | Go MiB/s | reel/nginx | Go/nginx | p99 ms (nginx/reel/Go) | errors (nginx/reel/Go) |"
		echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
		echo "| 64 KiB | $nginx_small_rps | $reel_small_rps | $go_small_rps | $nginx_small_mibs | $reel_small_mibs | $go_small_mibs | $(ratio "$reel_small_rps / $nginx_small_rps")× | $(ratio "$go_small_rps / $nginx_small_rps")× | $nginx_small_p99/$reel_small_p99/$go_small_p99 | $nginx_small_err/$reel_small_err/$go_small_err |"
		echo "| 1 MiB | $nginx_big_rps | $reel_big_rps | $go_big_rps | $nginx_big_mibs | $reel_big_mibs | $go_big_mibs | $(ratio "$reel_big_mibs / $nginx_big_mibs")× | $(ratio "$go_big_mibs / $nginx_big_mibs")× | $nginx_big_p99/$reel_big_p99/$go_big_p99 | $nginx_big_err/$reel_big_err/$go_big_err |"
		echo
	elif [[ -n $media_note ]]; then
		echo "Range serving: not measured: $media_note."
		echo
	fi
} >"$run"

# Put each generated part between its markers, leaving the rest of the
# document as it is. A document without the markers (or no document)
# gets them appended, each under a heading of its own.
[[ -f $DOC ]] || printf '# Benchmarks\n' >"$DOC"
parts=(results)
part mix && parts+=(run)
if part streaming; then
	streaming_md >"$work/streaming.md"
	parts+=(streaming)
fi
for part in "${parts[@]}"; do
	if ! grep -qF "<!-- bench:$part:begin -->" "$DOC"; then
		heading="## Current results"
		[[ $part == run ]] && heading="## Latest run"
		[[ $part == streaming ]] && heading="## Latest streaming run"
		printf '\n%s\n\n<!-- bench:%s:begin -->\n<!-- bench:%s:end -->\n' "$heading" "$part" "$part" >>"$DOC"
	fi
	awk -v b="<!-- bench:$part:begin -->" -v e="<!-- bench:$part:end -->" -v src="$work/$part.md" '
		index($0, e) == 1 { skip = 0 }
		!skip { print }
		index($0, b) == 1 { while ((getline line < src) > 0) print line; skip = 1 }
	' "$DOC" >"$work/doc.md"
	mv "$work/doc.md" "$DOC"
done
cat "$work/summaries.txt" >&2
log "done: $DOC and $OUT/"
