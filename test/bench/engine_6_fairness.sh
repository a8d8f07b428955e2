#!/usr/bin/env bash
# Bench: fairness across tenants. How long another organization's job waits while one
# organization has a backlog of ENGINE_FAIR_BACKLOG (100,000) jobs at the same service.
#
#   quiet:   org B enqueues one job per transaction at ENGINE_FAIR_RATE (20) jobs/s for
#            ENGINE_FAIR_SECONDS (5) s (pgbench -R), nothing else queued.
#   backlog: the bench org enqueues ENGINE_FAIR_BACKLOG jobs in one transaction, then org B
#            enqueues exactly as above while the worker drains the backlog.
#   latency = the job's finished_at - its created_at (enqueue to recorded answer).
#
#   engine_fair_added_p99_ms = p99 with the backlog - p99 quiet   (target <= 10 ms)
#   engine_fair_p99_ratio    = p99 with the backlog / p99 quiet   (for the record)
#
# Checked: every job of org B succeeded; the backlog was still being drained when org B's last
# job was done (else the comparison would mean nothing).
set -euo pipefail
source "$(dirname "$0")/engine/lib.bash"

BACKLOG=${ENGINE_FAIR_BACKLOG:-100000}
RATE=${ENGINE_FAIR_RATE:-20}
SECS=${ENGINE_FAIR_SECONDS:-5}

engine_setup
RUN=$(date +%s%N)
ORG_B_SLUG=engine-bench-fair-b
ORG_B_REF=org_engine_fair_b
bq -c "DELETE FROM saas.organizations WHERE slug = '$ORG_B_SLUG'" >/dev/null || bench_fail "cannot delete an old org B"
ORG_B=$(bq -c "
	INSERT INTO saas.organizations (name, slug, subscription_tier, employee_limit, external_ids)
	VALUES ('Engine Bench B', '$ORG_B_SLUG', 'enterprise', 1000000,
			jsonb_build_object('communication_service', '$ORG_B_REF'))
	RETURNING id") || bench_fail "cannot create org B"
cleanup_fair() {
	bq -c "DELETE FROM saas.jobs WHERE org_id IN ('$ENGINE_ORG', '$ORG_B')" >/dev/null 2>&1 || true
	bq -c "DELETE FROM saas.organizations WHERE id = '$ORG_B'" >/dev/null 2>&1 || true
}
ENGINE_CLEANUPS+=(cleanup_fair)

# org_b_stream TAG: org B's jobs at RATE for SECS; echoes "p50 p99 n" of their latency (ms).
org_b_stream() {
	local tag=$1 log="$BENCH_WORK/engine-fair-$1.log" deadline
	pgbench -n -M prepared -c 1 -j 1 -R "$RATE" -T "$SECS" -f "$ENGINE_DIR/enqueue_one.sql" \
		-D "org=$ORG_B" -D "ref=$ORG_B_REF" -D "tag=$tag" "$BENCH_DB" >"$log" 2>&1 || {
		cat "$log" >&2; return 1; }
	deadline=$((SECONDS + 60))
	while [ "$(bq -c "SELECT count(*) FROM saas.jobs WHERE org_id = '$ORG_B' AND idempotency_key LIKE '$tag%'
				AND state <> 'succeeded'")" != 0 ]; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "org B's jobs not done after 60 s" >&2; return 1; }
		sleep 0.1
	done
	bq -F ' ' -c "
		SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY l))::numeric, 2),
			   round((percentile_cont(0.99) WITHIN GROUP (ORDER BY l))::numeric, 2), count(*)
		  FROM (SELECT extract(epoch FROM finished_at - created_at) * 1000 AS l FROM saas.jobs
				 WHERE org_id = '$ORG_B' AND idempotency_key LIKE '$tag%') s"
}

echo "  quiet: org B at $RATE jobs/s for $SECS s, nothing else queued"
read -r q50 q99 qn < <(org_b_stream "fq-$RUN-") || bench_fail "the quiet run failed"
echo "    $qn jobs: p50 $q50 ms, p99 $q99 ms"

echo "  backlog: $BACKLOG jobs of the bench org in one transaction, then org B as above"
bq -c "
	SELECT count(saas._enqueue('$ENGINE_ORG', 'communication-service', 'message.bench', 'POST', '/messages',
		   jsonb_build_object('organization_id', '$ENGINE_ORG_REF', 'recipient', 'bench@startup.io',
							  'template', 'bench', 'subject', 'fb-$RUN-' || g), 'fb-$RUN-' || g))
	  FROM generate_series(1, $BACKLOG) g" >/dev/null || bench_fail "cannot enqueue the backlog"
read -r b50 b99 bn < <(org_b_stream "fbb-$RUN-") || bench_fail "the backlog run failed"
left=$(bq -c "SELECT count(*) FROM saas.jobs WHERE org_id = '$ENGINE_ORG' AND state IN ('available', 'running', 'retryable')")
echo "    $bn jobs: p50 $b50 ms, p99 $b99 ms; the backlog still held $left jobs when org B was done"
[ "$left" -gt 0 ] || echo "  note: the backlog was drained before org B finished; raise ENGINE_FAIR_BACKLOG"

added=$(python3 -c "print('%.2f' % ($b99 - $q99))")
ratio=$(python3 -c "print('%.2f' % ($b99 / max($q99, 0.01)))")
bench_figure engine_fair_added_p99_ms "$added" "target<=10" "org B's p99 with a $BACKLOG-job backlog of another org minus without"
bench_figure engine_fair_p99_ratio "$ratio" "" "org B's p99 with the backlog / without"
