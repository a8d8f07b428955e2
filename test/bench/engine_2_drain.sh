#!/usr/bin/env bash
# Bench: how fast the pg_saas worker drains its queue, against what the sim can answer at all.
#
#   drain side: ENGINE_DRAIN_JOBS (20,000) jobs, enqueued in one transaction with saas._enqueue
#               (communication-service, POST /messages, a distinct Idempotency-Key each), drained
#               by the worker with max_in_flight = ENGINE_MAX_IN_FLIGHT (256) for the service:
#               jobs/s = jobs / (last finished_at - commit of the enqueue).
#   capacity:   wrk -t2 -c32 -d5s on the same sim, the same endpoint and the same request shape
#               (body, Content-Type, a fresh Idempotency-Key each), once before and once after the
#               drain; sim req/s is the mean of the two.
#
#   engine_drain_ratio = jobs/s / sim req/s   (target >= 0.5)
#
# Checked: every job succeeded with 202 and the sim counted exactly one request per job.
# Also printed, for diagnosis: the rounds the worker took (distinct finished_at), jobs per
# round, and the CPU seconds of the worker, of the other PostgreSQL processes and of the sim
# during the drain.
set -euo pipefail
source "$(dirname "$0")/engine/lib.bash"

JOBS=${ENGINE_DRAIN_JOBS:-20000}
IN_FLIGHT=${ENGINE_MAX_IN_FLIGHT:-256}
WRK_SECONDS=${ENGINE_WRK_SECONDS:-5}

engine_setup
engine_set_in_flight "$IN_FLIGHT"
WORKER=$(engine_worker_pid)
# every process that drains the queue: the worker and its drainers (saas.worker_processes)
WORKERS=$(bq -c "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity
				  WHERE backend_type IN ('pg_saas worker', 'pg_saas drainer')")
RUN=$(date +%s%N)

# enqueue PREFIX N: N jobs in one transaction; echoes the commit time (Unix seconds).
enqueue() {
	bq -c "
		SELECT count(saas._enqueue('$ENGINE_ORG', 'communication-service', 'message.bench', 'POST', '/messages',
			   jsonb_build_object('organization_id', '$ENGINE_ORG_REF', 'recipient', 'bench@startup.io',
								  'template', 'bench', 'subject', '$1-' || g),
			   '$1-' || g))
		  FROM generate_series(1, $2) g" \
		-c "SELECT extract(epoch FROM clock_timestamp())" | tail -1
}

# cpu_ticks PID...: utime + stime of processes, in clock ticks.
cpu_ticks() {
	local p
	for p in "$@"; do cat "/proc/$p/stat"; done | awk '{ t += $14 + $15 } END { print t }'
}
# machine_ticks: "busy total" clock ticks of the whole machine (/proc/stat).
machine_ticks() {
	awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat
}
HZ=$(getconf CLK_TCK)

echo "  warm-up: 1000 jobs"
enqueue "warm-$RUN" 1000 >/dev/null || bench_fail "enqueue failed"
engine_wait_jobs 120

cap_a=$(engine_wrk_capacity "$WRK_SECONDS") || bench_fail "wrk failed"
echo "  sim capacity before: $(fmt "$cap_a" 0) req/s (wrk -t2 -c32 -d${WRK_SECONDS}s, POST /v1/messages)"

bq -c "VACUUM (ANALYZE) saas.jobs" >/dev/null
engine_pgss_reset
req0=$(engine_sim_requests)
w0=$(cpu_ticks $WORKERS); s0=$(cpu_ticks "$ENGINE_SIM_PID"); read -r m0 mt0 < <(machine_ticks)
start=$(now_s)
t0=$(enqueue "drain-$RUN" "$JOBS") || bench_fail "enqueue failed"
enq_s=$(awk -v a="$start" -v b="$t0" 'BEGIN { print b - a }')
echo "  enqueued $JOBS jobs in $(fmt "$enq_s" 2) s (one transaction); draining with max_in_flight=$IN_FLIGHT"
engine_wait_jobs 600
w1=$(cpu_ticks $WORKERS); s1=$(cpu_ticks "$ENGINE_SIM_PID"); read -r m1 mt1 < <(machine_ticks)
req1=$(engine_sim_requests)

read -r ok status_ok rounds t1 < <(bq -F ' ' -c "
	SELECT count(*) FILTER (WHERE state = 'succeeded'), count(*) FILTER (WHERE last_status = 202),
		   count(DISTINCT finished_at), extract(epoch FROM max(finished_at))
	  FROM saas.jobs WHERE org_id = '$ENGINE_ORG' AND idempotency_key LIKE 'drain-$RUN-%'")
[ "$ok" = "$JOBS" ] && [ "$status_ok" = "$JOBS" ] ||
	bench_fail "$ok of $JOBS jobs succeeded, $status_ok answered 202"
[ $((req1 - req0)) = "$JOBS" ] || bench_fail "the sim counted $((req1 - req0)) requests for $JOBS jobs"
drain_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
jobs_s=$(awk -v n="$JOBS" -v s="$drain_s" 'BEGIN { print n / s }')
echo "  drained $JOBS jobs in $(fmt "$drain_s" 2) s: $(fmt "$jobs_s" 0) jobs/s, $rounds rounds," \
	"$(awk -v n="$JOBS" -v r="$rounds" 'BEGIN { printf "%.0f", n / r }') jobs per round;" \
	"checked: all succeeded (202), the sim counted one request per job"
awk -v np="$(echo $WORKERS | wc -w)" -v w=$((w1 - w0)) -v s=$((s1 - s0)) -v m=$((m1 - m0)) -v mt=$((mt1 - mt0)) -v hz="$HZ" \
	-v d="$drain_s" -v e="$enq_s" 'BEGIN {
	printf "  CPU from the enqueue to the end (%.2f s, of which the enqueue %.2f s): worker processes (%d) %.2f s, sim %.2f s; the machine was %.0f%% busy (all processes)\n",
		e + d, e, np, w / hz, s / hz, 100 * m / mt }'

engine_pgss_top 12

cap_b=$(engine_wrk_capacity "$WRK_SECONDS") || bench_fail "wrk failed"
echo "  sim capacity after: $(fmt "$cap_b" 0) req/s"
cap=$(awk -v a="$cap_a" -v b="$cap_b" 'BEGIN { print (a + b) / 2 }')
ratio=$(awk -v j="$jobs_s" -v c="$cap" 'BEGIN { printf "%.3f", j / c }')

bench_figure engine_drain_jobs_per_s "$(fmt "$jobs_s" 1)" "" "worker, $JOBS jobs, max_in_flight $IN_FLIGHT"
bench_figure engine_sim_req_per_s "$(fmt "$cap" 1)" "" "wrk -t2 -c32 POST /v1/messages, mean of before/after"
bench_figure engine_drain_ratio "$ratio" "target>=0.5" "jobs/s over sim req/s"
