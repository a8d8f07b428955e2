#!/usr/bin/env bash
# Bench: the pg_saas worker's memory before and after it has made ENGINE_MEMORY_JOBS (100,000) calls.
#
#   The worker first drains a warm-up of 2,000 jobs (connections, caches and saved plans are
#   made then); its memory is read from /proc/<pid>/smaps_rollup: Anonymous (its private heap:
#   what a leak grows) and Rss (which also counts the pages of shared buffers it has touched).
#   Then ENGINE_MEMORY_JOBS jobs (communication-service POST /messages, enqueued with
#   saas._enqueue in ENGINE_MEMORY_CHUNKS (5) chunks, each drained before the next is enqueued,
#   max_in_flight = ENGINE_MAX_IN_FLIGHT (256)), and the memory again after each chunk.
#
#   engine_worker_anon_before_kb, engine_worker_anon_after_kb, engine_worker_rss_before_kb,
#   engine_worker_rss_after_kb, and engine_worker_anon_growth_kb (target <= 4096: flat memory).
#   Before the jobs, the worker is left idle for ENGINE_IDLE_SECONDS (10) s (it still wakes for
#   a round at least once a second): engine_worker_idle_growth_kb (target <= 64).
#
# Also printed, per chunk: the drain rate (jobs/s) as saas.jobs grows (finished jobs stay in
# the table), and with ENGINE_PGSS=1 (run alone) the top statements. When the worker grew, its memory
# contexts are logged (pg_log_backend_memory_contexts) and the top of the report is printed.
# Checked: every job succeeded and the sim counted one request per job.
set -euo pipefail
source "$(dirname "$0")/engine/lib.bash"

JOBS=${ENGINE_MEMORY_JOBS:-100000}
CHUNKS=${ENGINE_MEMORY_CHUNKS:-5}
IN_FLIGHT=${ENGINE_MAX_IN_FLIGHT:-256}
PER=$((JOBS / CHUNKS))
IDLE_SECONDS=${ENGINE_IDLE_SECONDS:-10}

engine_setup
engine_set_in_flight "$IN_FLIGHT"
WORKER=$(engine_worker_pid)
RUN=$(date +%s%N)

# enqueue PREFIX N: N jobs in one transaction; echoes the commit time.
enqueue() {
	bq -c "
		SELECT count(saas._enqueue('$ENGINE_ORG', 'communication-service', 'message.bench', 'POST', '/messages',
			   jsonb_build_object('organization_id', '$ENGINE_ORG_REF', 'recipient', 'bench@startup.io',
								  'template', 'bench', 'subject', '$1-' || g),
			   '$1-' || g))
		  FROM generate_series(1, $2) g" \
		-c "SELECT extract(epoch FROM clock_timestamp())" | tail -1
}

enqueue "mwarm-$RUN" 2000 >/dev/null || bench_fail "enqueue failed"
engine_wait_jobs 120
# Statistics of a table that has seen traffic (what autovacuum gives a running system): the
# worker's saved plans are made again from them. (Planned from the statistics of an empty
# saas.jobs, the claim joins the batch to a sequential scan of the whole table: see
# docs/benchmarks.md.)
bq -c "ANALYZE saas.jobs" >/dev/null
sleep 1
[ "$(engine_worker_pid)" = "$WORKER" ] || bench_fail "the worker restarted during the warm-up"
read -r idle0 < <(engine_smaps "$WORKER" Anonymous)
sleep "$IDLE_SECONDS"
read -r anon0 rss0 < <(engine_smaps "$WORKER" Anonymous Rss)
idle_growth=$((anon0 - idle0))
echo "  after a warm-up of 2000 jobs: worker pid $WORKER, Anonymous $idle0 kB; idle for $IDLE_SECONDS s:" \
	"Anonymous $anon0 kB (+$idle_growth kB), Rss $rss0 kB"

req0=$(engine_sim_requests)
for ((c = 1; c <= CHUNKS; c++)); do
	size=$(bq -c "SELECT count(*) FROM saas.jobs")
	engine_pgss_reset
	t0=$(enqueue "mem-$RUN-$c" "$PER") || bench_fail "enqueue failed"
	engine_wait_jobs 600
	t1=$(bq -c "SELECT extract(epoch FROM max(finished_at)) FROM saas.jobs
				 WHERE org_id = '$ENGINE_ORG' AND idempotency_key LIKE 'mem-$RUN-$c-%'")
	[ "$(engine_worker_pid)" = "$WORKER" ] || bench_fail "the worker restarted (pid $(engine_worker_pid), was $WORKER)"
	read -r anon rss < <(engine_smaps "$WORKER" Anonymous Rss)
	echo "  chunk $c/$CHUNKS: $PER jobs (saas.jobs held $size rows before) drained at" \
		"$(awk -v n="$PER" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }') jobs/s;" \
		"worker Anonymous $anon kB, Rss $rss kB"
	engine_pgss_top 6
done
req1=$(engine_sim_requests)
read -r ok < <(bq -c "SELECT count(*) FROM saas.jobs WHERE org_id = '$ENGINE_ORG'
						AND idempotency_key LIKE 'mem-$RUN-%' AND state = 'succeeded'")
[ "$ok" = $((PER * CHUNKS)) ] || bench_fail "$ok of $((PER * CHUNKS)) jobs succeeded"
[ $((req1 - req0)) = $((PER * CHUNKS)) ] || bench_fail "the sim counted $((req1 - req0)) requests for $((PER * CHUNKS)) jobs"
echo "  checked: all $ok jobs succeeded, the sim counted one request per job"

growth=$((anon - anon0))
if [ "$growth" -gt 4096 ]; then
	echo "  the worker grew by $growth kB ($(awk -v g="$growth" -v n="$ok" 'BEGIN { printf "%.0f", g * 1024 / n }') bytes per job);" \
		"its memory contexts (pg_log_backend_memory_contexts), top of the report:"
	logfile="$BENCH_WORK/postgres.log"
	bq -c "SELECT pg_log_backend_memory_contexts($WORKER)" >/dev/null
	sleep 1
	if [ -r "$logfile" ]; then
		grep -A4 "logging memory contexts of PID $WORKER" "$logfile" | tail -5 | sed -E 's/^.*LOG: +/    /'
		grep "\[$WORKER\].*Grand total" "$logfile" | tail -1 | sed -E 's/^.*LOG: +/    /'
	fi
fi

bench_figure engine_worker_anon_before_kb "$anon0" "" "smaps_rollup Anonymous after a 2000-job warm-up"
bench_figure engine_worker_anon_after_kb "$anon" "" "after $ok more jobs"
bench_figure engine_worker_rss_before_kb "$rss0" ""
bench_figure engine_worker_rss_after_kb "$rss" ""
bench_figure engine_worker_anon_growth_kb "$growth" "target<=4096" "over $ok jobs"
bench_figure engine_worker_idle_growth_kb "$idle_growth" "target<=64" "Anonymous growth of the idle worker in $IDLE_SECONDS s"
