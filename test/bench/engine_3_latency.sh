#!/usr/bin/env bash
# Bench: how long a job waits between its enqueue and its call, at a steady 200 jobs/s.
#
#   pgbench -R ENGINE_LATENCY_RATE (200) -T ENGINE_LATENCY_SECONDS (20), one client: each
#   transaction is one saas._enqueue (test/bench/engine/enqueue_one.sql) of a communication-
#   service POST /messages whose subject is the job's Idempotency-Key. The worker runs with the
#   service's own max_in_flight.
#   latency = the time the sim stored the message (its created_at, millisecond resolution)
#             - the job's created_at (the enqueuing transaction's start)
#   engine_latency_p50_ms (target <= 5), engine_latency_p99_ms (target <= 50)
#
# Also printed: the same from the job's finished_at (when the worker recorded the answer: an
# upper bound that includes the call and the round), and pgbench's own enqueue latency.
# Checked: every job succeeded and every job's message reached the sim exactly once.
set -euo pipefail
source "$(dirname "$0")/engine/lib.bash"

RATE=${ENGINE_LATENCY_RATE:-200}
SECS=${ENGINE_LATENCY_SECONDS:-20}

engine_setup
RUN=$(date +%s%N)

run_pgbench() {
	local tag=$1 secs=$2 log=$3
	pgbench -n -M prepared -c 1 -j 1 -R "$RATE" -T "$secs" -f "$ENGINE_DIR/enqueue_one.sql" \
		-D "org=$ENGINE_ORG" -D "ref=$ENGINE_ORG_REF" -D "tag=$tag" "$BENCH_DB" >"$log" 2>&1 || {
		cat "$log" >&2; return 1; }
	if grep -qE '^number of failed transactions: [1-9]|aborted' "$log"; then
		cat "$log" >&2
		return 1
	fi
}

echo "  warm-up: 2 s at $RATE jobs/s"
run_pgbench "lwarm-$RUN-" 2 "$BENCH_WORK/engine-latency-warmup.log" || bench_fail "pgbench failed"
engine_wait_jobs 60
bq -c "ANALYZE saas.jobs" >/dev/null	# statistics of a table that has seen traffic (see engine_4_memory.sh)

echo "  pgbench -R $RATE -T $SECS, one client, one saas._enqueue per transaction"
engine_pgss_reset
run_pgbench "lat-$RUN-" "$SECS" "$BENCH_WORK/engine-latency.log" || bench_fail "pgbench failed"
engine_wait_jobs 120
engine_pgss_top 14
enq_lat=$(sed -nE 's/^latency average = ([0-9.]+) ms$/\1/p' "$BENCH_WORK/engine-latency.log")
lag=$(sed -nE 's/^rate limit schedule lag: avg ([0-9.]+) .*$/\1/p' "$BENCH_WORK/engine-latency.log")
tps=$(sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\)$/\1/p' "$BENCH_WORK/engine-latency.log")

bq -F ' ' -c "
	SELECT idempotency_key, state, extract(epoch FROM created_at), extract(epoch FROM finished_at)
	  FROM saas.jobs WHERE org_id = '$ENGINE_ORG' AND idempotency_key LIKE 'lat-$RUN-%'" >"$BENCH_WORK/engine-latency-jobs.txt" ||
	bench_fail "cannot read the jobs"
curl -sf "http://127.0.0.1:$SIM_CTL/_sim/messages?organization_id=$ENGINE_ORG_REF" \
	>"$BENCH_WORK/engine-latency-sim.json" || bench_fail "cannot read the sim's messages"

read -r n p50 p99 max u50 u99 < <(python3 - "$BENCH_WORK/engine-latency-jobs.txt" "$BENCH_WORK/engine-latency-sim.json" "lat-$RUN-" <<-'PY'
	import json
	import sys
	from datetime import datetime, timezone
	jobs = {}
	for line in open(sys.argv[1]):
	    key, state, created, finished = line.split()
	    if state != "succeeded":
	        sys.exit(f"job {key} is {state}")
	    jobs[key] = (float(created), float(finished))
	seen = {}
	for m in json.load(open(sys.argv[2]))["messages"]:
	    key, at = m.get("subject") or "", m["created_at"]
	    if not key.startswith(sys.argv[3]):
	        continue
	    if key in seen:
	        sys.exit(f"message {key} reached the sim twice")
	    t = datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
	    seen[key] = t.timestamp()
	if set(seen) != set(jobs) or not jobs:
	    sys.exit(f"{len(jobs)} jobs but {len(seen)} messages at the sim, {len(set(jobs) ^ set(seen))} unmatched")
	def pct(v, p):
	    v = sorted(v)
	    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
	lat = [(seen[k] - c) * 1000 for k, (c, f) in jobs.items()]
	upper = [(f - c) * 1000 for k, (c, f) in jobs.items()]
	print(len(lat), "%.2f" % pct(lat, 50), "%.2f" % pct(lat, 99), "%.2f" % max(lat),
	      "%.2f" % pct(upper, 50), "%.2f" % pct(upper, 99))
PY
) || bench_fail "the latencies could not be computed (see above)"
[ -n "${p99:-}" ] || bench_fail "the latencies could not be computed"

echo "  $n jobs at $(fmt "${tps:-0}" 1) jobs/s (pgbench: enqueue latency avg ${enq_lat:-?} ms, schedule lag avg ${lag:-?} ms);" \
	"checked: all succeeded, one message each at the sim"
echo "  enqueue -> the sim stores the message: p50 $p50 ms, p99 $p99 ms, max $max ms (sim times have 1 ms resolution)"
echo "  enqueue -> the worker records the answer (finished_at, an upper bound): p50 $u50 ms, p99 $u99 ms"
bench_figure engine_latency_p50_ms "$p50" "target<=5" "enqueue to call at $RATE jobs/s"
bench_figure engine_latency_p99_ms "$p99" "target<=50" "enqueue to call at $RATE jobs/s"
bench_figure engine_latency_upper_p99_ms "$u99" "" "enqueue to recorded answer (finished_at)"
