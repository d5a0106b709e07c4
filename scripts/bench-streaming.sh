# scripts/bench-streaming.sh: the adaptive-streaming benchmarks of
# scripts/bench.sh (issue 18), sourced by it; it uses bench.sh's helpers
# (start_reel, media_jobs, nginx_start, row, kept, failed…) and gives
# bench.sh's report its rows (streaming_rows) and its section
# (streaming_md).
#
# On one all-in-one reel on SQLite with adaptive streaming on:
#   a. the first playable HLS rendition of a 60 s 1080p30 H.264/AAC clip,
#      FR_UPLOADS uploads one at a time on an idle queue;
#   b. that clip's full ladder, end to end: from the upload's answer to its
#      streaming state "done";
#   c. viewers playing its 360p rung at real-time pace (reel loadtest
#      viewers), VIEWERS_START more by VIEWERS_STEP every VIEWERS_STEP_S
#      seconds up to VIEWERS_MAX, until a step has an error or a p99
#      segment TTFB of 100 ms or more; then the same generator against
#      nginx serving the same files (hard links of the stored blobs);
#   d. the first rendition again behind FR_QUEUED uploads of the clip as
#      MPEG-2 (so every rung is an encode) from another account.
# The clips are made once with ffmpeg and kept in BENCH_CACHE. Variables
# (defaults): FR_UPLOADS (5), FR_QUEUED (10), VIEWERS_START (500),
# VIEWERS_STEP (500), VIEWERS_MAX (6000), VIEWERS_STEP_S (20),
# LADDER_WAIT_S (900), BENCH_CACHE (~/.cache/reel-bench), and for trials of
# the script CLIP_S (60) and CLIP_SIZE (1920x1080).

STREAM_CACHE=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reel-bench}
FR_UPLOADS=${FR_UPLOADS:-5}
FR_QUEUED=${FR_QUEUED:-10}
VIEWERS_START=${VIEWERS_START:-500}
VIEWERS_STEP=${VIEWERS_STEP:-500}
VIEWERS_MAX=${VIEWERS_MAX:-6000}
VIEWERS_STEP_S=${VIEWERS_STEP_S:-20}
# Longest wait for the viewers' video's full ladder.
LADDER_WAIT_S=${LADDER_WAIT_S:-900}
# The clip: 60 s of 1080p30 (the issue's); smaller ones for trials of
# the script.
CLIP_S=${CLIP_S:-60}
CLIP_SIZE=${CLIP_SIZE:-1920x1080}

streaming_done="" streaming_note=""

# make_clips: the measured clip (H.264 8-bit 4:2:0 with a keyframe every
# 2 s and AAC: its first rendition is a remux) and the queued one (the same
# picture as MPEG-2: every rung an encode), made once.
make_clips() {
	mkdir -p "$STREAM_CACHE"
	clip=$STREAM_CACHE/clip-${CLIP_SIZE}p30-${CLIP_S}s-h264-v1.mp4
	qclip=$STREAM_CACHE/clip-${CLIP_SIZE}p30-${CLIP_S}s-mpeg2-v1.mp4
	if [[ ! -s $clip ]]; then
		log "making the ${CLIP_S} s $CLIP_SIZE 30 fps H.264/AAC clip (kept in $STREAM_CACHE)"
		ffmpeg -nostdin -v error -y -f lavfi -i "testsrc2=size=$CLIP_SIZE:rate=30:duration=$CLIP_S,noise=alls=4:allf=t" \
			-f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$CLIP_S" \
			-c:v libx264 -preset veryfast -crf 20 -g 60 -pix_fmt yuv420p -c:a aac -b:a 128k \
			-movflags +faststart -f mp4 "$clip.part"
		mv "$clip.part" "$clip"
	fi
	if [[ ! -s $qclip ]]; then
		log "making the MPEG-2 clip for the queue"
		ffmpeg -nostdin -v error -y -i "$clip" -c:v mpeg2video -q:v 5 -c:a aac -b:a 128k -f mp4 "$qclip.part"
		mv "$qclip.part" "$qclip"
	fi
}

# streaming_loadtest SCENARIO DIR ARGS…: a streaming scenario of reel
# loadtest against the running reel; fails without stopping the bench.
streaming_loadtest() {
	local scenario=$1 dir=$2
	shift 2
	rm -rf "$dir"
	"$work/reel" loadtest "$scenario" -out "$dir" "$@" 2>>"$work/loadtest.log" | tee -a "$work/summaries.txt" >&2
}

# first_rendition DIR ARGS…
first_rendition() {
	streaming_loadtest firstrendition "$1" -url "$reel_url" -video "$clip" -uploads "$FR_UPLOADS" \
		-admin-email "$ADMIN_EMAIL" -admin-password "$ADMIN_PASSWORD" "${@:2}"
}

# viewers DIR URL ARGS…
viewers() {
	streaming_loadtest viewers "$1" -url "$2" -start "$VIEWERS_START" -step "$VIEWERS_STEP" -max "$VIEWERS_MAX" \
		-step-duration "${VIEWERS_STEP_S}s" "${@:3}"
}

# hls_layout ID DIR: the video's master playlist (from a grant) and the
# stored files it leads to, hard links of the blobs reel serves, laid out
# under DIR as reel serves them under its media URL.
hls_layout() {
	local id=$1 dir=$2 token master pl f
	mkdir -p "$dir"
	token=$(admin_token)
	master=$(curl -fsS -X POST -H "Authorization: Bearer $token" "$reel_url/api/v1/videos/$id/playback" | jq -r '.hls_url // empty')
	[[ -n $master ]] || return 1
	curl -fsS "$master" >"$dir/master.m3u8"
	for pl in $(grep -v '^#' "$dir/master.m3u8"); do
		ln -f "$reel_data/blobs/videos/$id/$pl" "$dir/$pl" 2>/dev/null || cp "$reel_data/blobs/videos/$id/$pl" "$dir/$pl"
		for f in $( (grep -v '^#' "$dir/$pl"; sed -n 's/^#EXT-X-MAP:URI="\([^"]*\)".*/\1/p' "$dir/$pl") | sort -u); do
			ln -f "$reel_data/blobs/videos/$id/$f" "$dir/$f" 2>/dev/null || cp "$reel_data/blobs/videos/$id/$f" "$dir/$f"
		done
	done
}

# nginx_pids: nginx's master and workers, comma-separated, once every
# worker has started.
nginx_pids() {
	local workers i
	for ((i = 0; i < 50; i++)); do
		workers=$(ps -o pid= --ppid "$nginx_pid" | xargs)
		(($(wc -w <<<"$workers") >= ncpu)) && break
		sleep 0.1
	done
	echo "$nginx_pid $workers" | tr -s ' ' ','
}

# streaming_bench: the runs a. to d.
streaming_bench() {
	local sdir=$OUT/streaming token id t0 t_answer state i
	make_clips
	clip_mib=$(awk "BEGIN { printf \"%.1f\", $(stat -c %s "$clip") / 1048576 }")
	mkdir -p "$sdir"
	streaming_load_before=$(cut -d' ' -f1-3 /proc/loadavg)
	log "streaming: first HLS rendition of the ${CLIP_S} s $CLIP_SIZE clip, $FR_UPLOADS uploads on an idle queue"
	start_reel streaming REEL_STREAMING=on
	if ! first_rendition "$sdir/first-idle"; then
		streaming_note="the first-rendition run failed (see $work/loadtest.log)"
		stop_reel
		return
	fi

	log "streaming: the full ladder of one upload, then its 360p rung to viewers"
	token=$(admin_token)
	t0=$(date +%s.%N)
	id=$(curl -fsS -H "Authorization: Bearer $token" -F title="viewers" -F "video=@$clip;type=video/mp4" \
		"$reel_url/api/v1/videos" | jq -r '.video.id // empty')
	t_answer=$(date +%s.%N)
	state=""
	for ((i = 0; i < LADDER_WAIT_S * 2; i++)); do
		state=$(curl -fsS -H "Authorization: Bearer $token" "$reel_url/api/v1/videos/$id" | jq -r '.video.streaming.state')
		[[ $state == done || $state == failed ]] && break
		sleep 0.5
		# Tokens last 15 min: a slow ladder outlives one.
		((i % 600 == 599)) && token=$(admin_token)
	done
	ladder_s=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t_answer }")
	ladder_heights=$(curl -fsS -H "Authorization: Bearer $token" "$reel_url/api/v1/videos/$id" | jq -r '.video.streaming.renditions_done | map(tostring + "p") | join(", ")')
	upload_s=$(awk "BEGIN { printf \"%.1f\", $t_answer - $t0 }")
	if [[ $state != done ]]; then
		ladder_s=""
		streaming_note="the viewers' video's ladder ended $state after ${LADDER_WAIT_S} s at most: no viewers run"
		stop_reel
		return
	fi
	# What else the video's jobs do (its storyboard) ends before viewers.
	for ((i = 0; i < 600; i++)); do
		[[ $(media_jobs) == 0 ]] && break
		sleep 0.5
	done
	log "streaming: viewers of reel"
	viewers "$sdir/viewers-reel" "$reel_url" -video-id "$id" -server-pid "$reel_pid" || streaming_note="the viewers run against reel failed"

	log "streaming: viewers of nginx serving the same files"
	if hls_layout "$id" "$work/hls/v"; then
		nginx_start "$work/hls" $((VIEWERS_MAX + 1024))
		viewers "$sdir/viewers-nginx" "http://127.0.0.1:$nginx_port" -master /v/master.m3u8 -server-pid "$(nginx_pids)" ||
			streaming_note="the viewers run against nginx failed"
		nginx_stop
	else
		streaming_note="no master playlist to lay out for nginx"
	fi

	log "streaming: first HLS rendition behind $FR_QUEUED queued uploads"
	first_rendition "$sdir/first-queued" -queued "$FR_QUEUED" -queue "$qclip" ||
		streaming_note="the first-rendition run behind a queue failed"
	stop_reel
	streaming_load_after=$(cut -d' ' -f1-3 /proc/loadavg)
	streaming_done=1
}

# ---------------------------------------------------------------- report

fr_what="from an upload's answer to the first master playlist that lists a rendition (polled every 100 ms), a ${CLIP_S} s $CLIP_SIZE 30 fps H.264/AAC clip, uploads one at a time"
frq_what="the same behind ${FR_QUEUED} uploads of the clip as MPEG-2 (every rung an encode) from another account"
fr_goal="p50 ≤ 5 s, p95 ≤ 15 s"
viewers_what="viewers each fetching a 360p segment (a byte range) every 4 s over its own connection: the most with 0 errors and p99 time to first byte < 100 ms, against nginx serving the same files to the same generator"
viewers_goal="≥ 5000 viewers and ≥ 0.9× nginx"
vrss_what="reel's largest RSS during the step of the most viewers that passed"
ladder_what="one upload of the clip, from its answer to its streaming state \"done\" (every rung), through the API"

# fr_figure FILE: "p50 … s, p95 … s" and OK (1 or 0), tab-separated.
fr_figure() {
	jq -r '"p50 \(.p50_s * 10 | round / 10) s, p95 \(.p95_s * 10 | round / 10) s, max \(.max_s * 10 | round / 10) s (\(.samples | length) uploads, \(.errors) errors)\t\(if .errors == 0 and (.samples | length) > 0 and .p50_s <= 5 and .p95_s <= 15 then 1 else 0 end)"' "$1"
}

# streaming_rows: the results table's streaming rows (HOW for the rows of a
# run that did not measure them: kept or failed).
streaming_rows() {
	local sdir=$OUT/streaming how=${1:-}
	local f ok rb nb r
	if [[ -z $streaming_done ]]; then
		how=${how:-failed}
		"$how" "First HLS rendition, idle" "$fr_what" "$fr_goal" "${streaming_note:-skipped}"
		"$how" "First HLS rendition, ${FR_QUEUED} queued" "$frq_what" "$fr_goal" "${streaming_note:-skipped}"
		"$how" "Full ladder ÷ duration (end to end)" "$ladder_what" "≤ 1.0" "${streaming_note:-skipped}"
		"$how" "HLS viewers vs nginx" "$viewers_what" "$viewers_goal" "${streaming_note:-skipped}"
		"$how" "RSS with the most viewers" "$vrss_what" "< 512 MiB" "${streaming_note:-skipped}"
		return
	fi
	IFS=$'\t' read -r f ok < <(fr_figure "$sdir/first-idle/first-rendition.json")
	row "First HLS rendition, idle" "$fr_what" "$fr_goal" "$f" "$ok"
	if [[ -f $sdir/first-queued/first-rendition.json ]]; then
		IFS=$'\t' read -r f ok < <(fr_figure "$sdir/first-queued/first-rendition.json")
		row "First HLS rendition, ${FR_QUEUED} queued" "$frq_what" "$fr_goal" "$f" "$ok"
	else
		failed "First HLS rendition, ${FR_QUEUED} queued" "$frq_what" "$fr_goal" "${streaming_note:-the run failed}"
	fi
	r=$(ratio "$ladder_s / $CLIP_S")
	ok=0
	lt "$r" 1.0001 && ok=1
	row "Full ladder ÷ duration (end to end)" "$ladder_what" "≤ 1.0" "${r} (${ladder_s} s for ${CLIP_S} s: $ladder_heights)" "$ok"
	if [[ -f $sdir/viewers-reel/viewers.json && -f $sdir/viewers-nginx/viewers.json ]]; then
		rb=$(jq -r .best "$sdir/viewers-reel/viewers.json")
		nb=$(jq -r .best "$sdir/viewers-nginx/viewers.json")
		r=$(ratio "$rb / ($nb > 0 ? $nb : 1)")
		ok=0
		((rb >= 5000)) && ge "$r" 0.9 && ok=1
		row "HLS viewers vs nginx" "$viewers_what" "$viewers_goal" \
			"reel $rb, nginx $nb (${r}×; steps of $VIEWERS_STEP up to $VIEWERS_MAX; $(best_cpu "$sdir/viewers-reel/viewers.json") for reel)" "$ok"
		r=$(jq -r '.best as $n | (if $n > 0 then [.steps[] | select(.viewers == $n)] else .steps end | first | .server_rss_mib) // -1' "$sdir/viewers-reel/viewers.json")
		ok=0
		ge "$r" 0 && lt "$r" 512 && ok=1
		row "RSS with the most viewers" "$vrss_what" "< 512 MiB" "$(fixed "$r") MiB at $rb viewers" "$ok"
	else
		failed "HLS viewers vs nginx" "$viewers_what" "$viewers_goal" "${streaming_note:-the viewers runs failed}"
		failed "RSS with the most viewers" "$vrss_what" "< 512 MiB" "${streaming_note:-the viewers runs failed}"
	fi
}

# best_cpu FILE: the generator's and the server's CPU in the best step.
best_cpu() {
	jq -r '.best as $n | [.steps[] | select(.viewers == $n)] | first |
		if . == null then "no step passed" else "generator \(.generator_cpu) cores, server \(.server_cpu) cores, machine \(.machine_cpu) at \(.viewers) viewers" end' "$1"
}

# viewers_md FILE NAME: a viewers run's steps as a table.
viewers_md() {
	local f=$1
	jq -r '"\(.mode) at \(.target): \(.rung.width)×\(.rung.height), \(.rung.segments) segments of \(.rung.segment_s * 10 | round / 10) s averaging \(.rung.segment_bytes / 1024 | round) KiB; most viewers that passed: **\(.best)** (stopped: \(.stop_reason))."' "$f"
	echo
	echo "| viewers | playing | segments | errors | TTFB p50 ms | TTFB p99 ms | max ms | download p99 ms | MiB/s | late | generator CPU | server CPU | machine CPU | server RSS MiB | pass |"
	echo "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
	jq -r 'def r2: if . >= 100 then round elif . >= 10 then (. * 10 | round / 10) else (. * 100 | round / 100) end;
		.steps[] | "| \(.viewers) | \(.playing) | \(.segments) | \(.errors) | \(.ttfb_ms.p50 | r2) | \(.ttfb_ms.p99 | r2) | \(.ttfb_ms.max | r2) | \(.download_ms.p99 | r2) | \(.mib_per_s * 10 | round / 10) | \(.late) | \(.generator_cpu) | \(.server_cpu) | \(.machine_cpu) | \(.server_rss_mib) | \(.pass) |"' "$f"
	echo
	local notes
	notes=$(jq -r '.notes // [] | .[] | "- " + .' "$f")
	[[ -n $notes ]] && { echo "Notes from the run:"; echo; echo "$notes"; echo; }
	local rel=${f#docs/}
	echo "![$2: segment TTFB by viewers](${rel%/*}/viewers.svg)"
	echo
}

# fr_md FILE: a first-rendition run's samples.
fr_md() {
	jq -r '"| upload | upload s | first rendition s | rendition | media jobs ahead | error |", "|--:|--:|--:|---|--:|---|",
		(.samples | to_entries[] | "| \(.key + 1) | \(.value.upload_s * 100 | round / 100) | \(.value.first_s * 100 | round / 100) | \(.value.rendition // "") | \(.value.jobs_ahead) | \(.value.error // "") |")' "$1"
	echo
}

# streaming_md: the streaming run's section.
streaming_md() {
	local sdir=$OUT/streaming
	echo
	echo "### Adaptive streaming, $run_date at \`$commit\`"
	echo
	if [[ -z $streaming_done ]]; then
		echo "Not measured: ${streaming_note:-skipped}."
		echo
		return
	fi
	echo "Machine: $ncpu × $model, $mem, $kernel, $gover. Load average before: $streaming_load_before; after: $streaming_load_after."
	echo "One all-in-one reel on SQLite with \`REEL_STREAMING=on\`; the clip: ${CLIP_S} s of $CLIP_SIZE at 30 fps, H.264"
	echo "(libx264 veryfast CRF 20, a keyframe every 2 s) and AAC, $clip_mib MiB, made with ffmpeg's lavfi."
	echo
	echo "#### First playable rendition, idle"
	echo
	fr_md "$sdir/first-idle/first-rendition.json"
	if [[ -f $sdir/first-queued/first-rendition.json ]]; then
		echo "#### First playable rendition behind ${FR_QUEUED} queued uploads"
		echo
		fr_md "$sdir/first-queued/first-rendition.json"
	fi
	echo "#### Full ladder"
	echo
	echo "The upload for the viewers (${upload_s} s with curl) had every rung ($ladder_heights) ${ladder_s} s after its answer."
	echo
	if [[ -f $sdir/viewers-reel/viewers.json ]]; then
		echo "#### Viewers: reel"
		echo
		viewers_md "$sdir/viewers-reel/viewers.json" "reel"
	fi
	if [[ -f $sdir/viewers-nginx/viewers.json ]]; then
		echo "#### Viewers: nginx $(nginx -v 2>&1 | awk -F/ '{print $2}') serving the same files"
		echo
		viewers_md "$sdir/viewers-nginx/viewers.json" "nginx"
	fi
	if [[ -n $streaming_note ]]; then
		echo "Note: $streaming_note."
		echo
	fi
}
