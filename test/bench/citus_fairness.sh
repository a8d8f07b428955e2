#!/usr/bin/env bash
# Bench: the queue's fair walk on Citus (docs/scale-out.md, "The queue on Citus") against the
# same walk on a plain node, side by side in one run, by the real pg_saas worker of each side.
#
#   Each side: one noisy organization with a backlog of B communication-service jobs (its id
#   is the smallest, so every walk that wraps around starts with it) and BENCH_FAIR_QUIET (64)
#   quiet organizations with one job each, all due, loaded while the service is parked; then
#   the service is pointed at a saas-sim with max_in_flight BENCH_FAIR_SLOTS (16), and the
#   worker claims: until every quiet organization's job has succeeded, then BENCH_FAIR_SECONDS
#   (5) more with the noisy backlog alone. Done for every B of BENCH_FAIR_BACKLOGS
#   ("5000 50000"), so that a cost that grows with one organization's backlog shows.
#
#   Claim cost, from pg_stat_statements (track = all) on the node the worker runs on (the plain
#   node, the coordinator; on Citus a statement's time includes its tasks on the workers):
#     *_walk_ms        mean time of the walk statement (the organizations with queued jobs)
#     *_claim_ms_round time of the walk and claim statements per worker round
#     *_stmts_round    walk and claim statements per worker round
#   (a round: one pass of the worker over the services, counted by its read of
#   saas.integrations; the service with the backlog walks in every round that has a free slot).
#   Fairness:
#     *_quiet_rounds   worker rounds until every quiet organization's job had succeeded
#     *_noisy_before   the noisy organization's jobs that succeeded before the last quiet job
#   Names: fair_<plain|citus>_<B>_<figure>. No targets: the figures are for the record
#   (docs/scale-out.md "Not yet", 7), and the Citus side shares this machine's cores.
#
# The plain side is a node of its own (this script starts it, with pg_stat_statements
# preloaded, which the bench cluster does not have); the Citus side a coordinator and two
# workers (test/suites/lib/citus.sh). Needs Citus (scripts/citus.sh builds it from
# ../shared/vendor, cached in .cache/); without the tarball it prints "SKIPPED" and measures
# nothing (exit 0).
set -euo pipefail
source "$(dirname "$0")/engine/lib.bash"
source "$PROJECT_ROOT/scripts/cluster.sh"
source "$PROJECT_ROOT/test/suites/lib/citus.sh"

BACKLOGS=${BENCH_FAIR_BACKLOGS:-5000 50000}
QUIET=${BENCH_FAIR_QUIET:-64}
SLOTS=${BENCH_FAIR_SLOTS:-16}
SECS=${BENCH_FAIR_SECONDS:-5}
NOISY=00000000-0000-4000-8000-000000000001
PLAIN_DB=fair_plain
RUN=$(date +%s)	# in the idempotency keys: the sim serves both sides and every run

bench_citus_ready || exit 0

PLAIN_DIR=$BENCH_WORK/fair-plain
on_exit() {
	local rc=$?
	if [ -n "$ENGINE_SIM_PID" ] && kill -0 "$ENGINE_SIM_PID" 2>/dev/null; then
		kill -TERM "$ENGINE_SIM_PID" 2>/dev/null
		wait "$ENGINE_SIM_PID" 2>/dev/null
	fi
	cluster_stop "$PLAIN_DIR/data"
	citus_cluster_stop
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

PGSS_CONF="shared_preload_libraries = 'citus,pg_saas,pg_stat_statements'
pg_stat_statements.track = all"

echo "  starting a plain node, and a Citus coordinator with two workers (pg_stat_statements preloaded)"
mkdir -p "$PLAIN_DIR"
chmod 755 "$PLAIN_DIR"
cluster_chown "$PLAIN_DIR"
cluster_init "$PLAIN_DIR/data" "$(cluster_free_port 59432)" "$PLAIN_DIR" "$PLAIN_DB" || bench_fail "initdb failed"
echo "${PGSS_CONF/citus,/}" >>"$PLAIN_DIR/data/postgresql.conf"
cluster_start_on_free_port "$PLAIN_DIR/data" "$PLAIN_DIR/postgres.log" || bench_fail "the plain node did not start"
PLAIN_PORT=$CLUSTER_PORT
CITUS_EXTRA_CONF=$PGSS_CONF citus_cluster_start "$BENCH_WORK/citus" fair_citus >/dev/null ||
	bench_fail "cannot start the Citus cluster"

# The organizations (triggers off: their outbound calls are not this bench's), the services
# parked (a base URL the worker does not call), and no rows of other tests.
SETUP_SQL="
SET client_min_messages = warning;
UPDATE saas.integrations SET base_url = 'parked:' || base_url;
SET session_replication_role = replica;
INSERT INTO saas.organizations (id, name, slug, subscription_tier, employee_limit, external_ids)
	VALUES ('$NOISY', 'Noisy', 'fair-noisy', 'enterprise', 1000000, '{\"communication_service\": \"org_fair_noisy\"}');
INSERT INTO saas.organizations (id, name, slug, external_ids)
	SELECT md5('fair-quiet-' || k)::uuid, 'Quiet ' || k, 'fair-quiet-' || k,
		   jsonb_build_object('communication_service', 'org_fair_quiet_' || k)
	  FROM generate_series(1, $QUIET) k;
RESET session_replication_role;
"
bq -h "$PLAIN_DIR" -p "$PLAIN_PORT" -d postgres -c "CREATE DATABASE $PLAIN_DB" >/dev/null || bench_fail "CREATE DATABASE failed"
bq -h "$PLAIN_DIR" -p "$PLAIN_PORT" -d "$PLAIN_DB" -c "CREATE EXTENSION pg_saas" -c "$SETUP_SQL" >/dev/null ||
	bench_fail "cannot set up the plain node"
citus_saas_db "$CITUS_DB" "$SETUP_SQL" || bench_fail "cannot make $CITUS_DB on the Citus cluster"
engine_start_sim

# sq SIDE ARGS...: bq on a side's database (the plain node, or the coordinator).
sq() {
	local side=$1
	shift
	if [ "$side" = plain ]; then
		bq -h "$PLAIN_DIR" -p "$PLAIN_PORT" -d "$PLAIN_DB" "$@"
	else
		bq -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -d "$CITUS_DB" "$@"
	fi
}
for side in plain citus; do
	sq "$side" -c "CREATE EXTENSION pg_stat_statements" >/dev/null || bench_fail "pg_stat_statements on $side"
done

# The worker's statements, told apart by their text (bgworker/worker_jobs.c).
PGSS_SQL="
SELECT coalesce(sum(calls) FILTER (WHERE k = 'walk'), 0), coalesce(sum(total_exec_time) FILTER (WHERE k = 'walk'), 0),
	   coalesce(sum(calls) FILTER (WHERE k = 'claim'), 0), coalesce(sum(total_exec_time) FILTER (WHERE k = 'claim'), 0),
	   coalesce(sum(calls) FILTER (WHERE k = 'round'), 0)
  FROM (SELECT CASE
				 WHEN query LIKE '%FOR UPDATE SKIP LOCKED%' AND query LIKE '%lease_owner =%' THEN 'claim'
				 WHEN query LIKE '%saas.jobs%org_id >%' AND query NOT LIKE '%FOR UPDATE%'
					  AND query NOT LIKE '%pg_stat_statements%' THEN 'walk'
				 WHEN query LIKE 'SELECT service, base_url, timeout_ms%FROM saas.integrations' THEN 'round'
			   END AS k, calls, total_exec_time
		  FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())) s"

# walk_statements B: on Citus, before the worker runs, the walk's statement as it is now (a
# window: ORDER BY org_id LIMIT, bgworker/worker_walk.c) and as it was (a DISTINCT), from the
# start of the queue (the noisy organization first) with the bench's slots (window 4 x slots,
# at least 32; the DISTINCT's limit the slots): the rows the scan of the noisy organization's
# shard returned (EXPLAIN ANALYZE), and the mean time of each, alternated in one session
# (BENCH_FAIR_REPS, 40, of each; sequential mode, as the worker runs).
walk_statements() {
	local b=$1 shard w=$((SLOTS * 4)) rows_w rows_d ms_w ms_d
	[ "$w" -ge 32 ] || w=32
	local where="FROM saas.jobs j WHERE j.service = 'communication-service' AND j.state IN ('available', 'retryable')
		AND j.org_id > '00000000-0000-0000-0000-000000000000' ORDER BY j.org_id"
	local win="SELECT j.org_id $where LIMIT $w" dis="SELECT DISTINCT j.org_id $where LIMIT $SLOTS"
	shard=$(sq citus -c "SELECT get_shard_id_for_distribution_column('saas.jobs', '$NOISY')")
	shard_rows() {
		sq citus -c "SET citus.explain_all_tasks = on" -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $1" |
			sed -nE "s/.*Scan.* on jobs_${shard} .*\(actual rows=([0-9]+) loops=1\).*/\1/p" | head -1
	}
	rows_w=$(shard_rows "$win")
	rows_d=$(shard_rows "$dis")
	read -r ms_w ms_d < <({
		echo "SET citus.multi_shard_modify_mode = sequential;"
		echo "BEGIN;"
		printf "%s\n" "\\timing on"
		for _ in $(seq 1 "${BENCH_FAIR_REPS:-40}"); do echo "$win;"; echo "$dis;"; done
		printf "%s\n" "\\timing off"
		echo "COMMIT;"
	} | sq citus -o /dev/null | awk '/^Time: / { t[n++ % 2] += $2; c[(n - 1) % 2]++ }
		END { printf "%.3f %.3f\n", t[0] / c[0], t[1] / c[1] }')
	echo "  citus, backlog $b, the walk's statement alone: window $ms_w ms ($rows_w rows of the noisy shard)," \
		"DISTINCT $ms_d ms ($rows_d rows)"
	bench_figure "fair_citus_${b}_window_ms" "$ms_w" "(the walk's window statement, mean of ${BENCH_FAIR_REPS:-40})"
	bench_figure "fair_citus_${b}_distinct_ms" "$ms_d" "(the DISTINCT walk it replaced, alternated with it)"
	bench_figure "fair_citus_${b}_window_rows" "${rows_w:-0}" "(rows the noisy organization's shard read)"
	bench_figure "fair_citus_${b}_distinct_rows" "${rows_d:-0}"
}

# measure SIDE B: one run; prints the figures.
measure() {
	local side=$1 b=$2 left deadline q_rounds noisy_before walk_n walk_ms claim_n claim_ms rounds claimed
	sq "$side" -c "
		INSERT INTO saas.jobs (org_id, service, kind, payload, max_attempts, idempotency_key, run_at)
		SELECT '$NOISY', 'communication-service', 'message.bench',
			   jsonb_build_object('method', 'POST', 'path', '/messages', 'body', jsonb_build_object(
				   'organization_id', 'org_fair_noisy', 'recipient', 'noisy@fair.example.com',
				   'template', 'bench', 'subject', 'n-' || g)),
			   4, 'fair-$side-$b-$RUN-n-' || g, now() - interval '1 minute'
		  FROM generate_series(1, $b) g" \
		-c "
		INSERT INTO saas.jobs (org_id, service, kind, payload, max_attempts, idempotency_key)
		SELECT o.id, 'communication-service', 'message.bench',
			   jsonb_build_object('method', 'POST', 'path', '/messages', 'body', jsonb_build_object(
				   'organization_id', o.external_ids ->> 'communication_service', 'recipient', 'quiet@fair.example.com',
				   'template', 'bench', 'subject', 'q')),
			   4, 'fair-$side-$b-$RUN-' || o.slug
		  FROM saas.organizations o WHERE o.slug LIKE 'fair-quiet-%'" \
		-c "VACUUM ANALYZE saas.jobs" >/dev/null || bench_fail "$side: cannot queue the jobs"
	[ "$side" = citus ] && walk_statements "$b"
	sq "$side" -c "SELECT pg_stat_statements_reset()" >/dev/null
	sq "$side" -c "UPDATE saas.integrations SET base_url = 'http://127.0.0.1:$SIM_COM/v1', max_in_flight = $SLOTS
					WHERE service = 'communication-service'" -c "SELECT saas._wake_worker()" >/dev/null
	deadline=$((SECONDS + 120))
	while :; do
		left=$(sq "$side" -c "SELECT count(*) FROM saas.jobs WHERE org_id <> '$NOISY'
								AND state IN ('available', 'running', 'retryable')")
		[ "$left" = 0 ] && break
		[ "$SECONDS" -lt "$deadline" ] || bench_fail "$side: $left quiet jobs still queued after 120 s"
		sleep 0.1
	done
	q_rounds=$(sq "$side" -F ' ' -c "$PGSS_SQL" | awk '{ print $5 }')
	sleep "$SECS"
	read -r walk_n walk_ms claim_n claim_ms rounds < <(sq "$side" -F ' ' -c "$PGSS_SQL")
	sq "$side" -c "UPDATE saas.integrations SET base_url = 'parked:' || base_url WHERE service = 'communication-service'" >/dev/null
	deadline=$((SECONDS + 60))
	while [ "$(sq "$side" -c "SELECT count(*) FROM saas.jobs WHERE state = 'running'")" != 0 ]; do
		[ "$SECONDS" -lt "$deadline" ] || bench_fail "$side: jobs still running 60 s after parking the service"
		sleep 0.2
	done
	[ "$(sq "$side" -c "SELECT count(*) FROM saas.jobs WHERE org_id <> '$NOISY' AND state <> 'succeeded'")" = 0 ] ||
		bench_fail "$side: a quiet job did not succeed: $(sq "$side" -c "SELECT state, last_status, last_error
			FROM saas.jobs WHERE org_id <> '$NOISY' AND state <> 'succeeded' LIMIT 3")"
	noisy_before=$(sq "$side" -c "
		SELECT count(*) FROM saas.jobs WHERE org_id = '$NOISY' AND state = 'succeeded'
		   AND finished_at < (SELECT max(finished_at) FROM saas.jobs WHERE org_id <> '$NOISY')")
	claimed=$(sq "$side" -c "SELECT count(*) FROM saas.jobs WHERE state IN ('succeeded', 'dead') OR attempt > 0")
	sq "$side" -c "DELETE FROM saas.jobs" >/dev/null
	[ "$rounds" -gt 0 ] && [ "$walk_n" -gt 0 ] || bench_fail "$side: the worker's statements were not seen (rounds $rounds, walks $walk_n)"
	echo "  $side, backlog $b: $rounds rounds, $walk_n walks ($(fmt "$walk_ms" 1) ms), $claim_n claims" \
		"($(fmt "$claim_ms" 1) ms), $claimed jobs claimed; quiet served after $q_rounds rounds, $noisy_before noisy jobs before"
	local p="fair_${side}_${b}"
	bench_figure "${p}_walk_ms" "$(awk -v t="$walk_ms" -v n="$walk_n" 'BEGIN { printf "%.3f", t / n }')" \
		"(mean of $walk_n walk statements)"
	bench_figure "${p}_claim_ms_round" "$(awk -v a="$walk_ms" -v b="$claim_ms" -v n="$rounds" 'BEGIN { printf "%.3f", (a + b) / n }')" \
		"(walk and claim statements, per round; $rounds rounds)"
	bench_figure "${p}_stmts_round" "$(awk -v a="$walk_n" -v b="$claim_n" -v n="$rounds" 'BEGIN { printf "%.2f", (a + b) / n }')"
	bench_figure "${p}_quiet_rounds" "$q_rounds" "(rounds until all $QUIET quiet organizations were served)"
	bench_figure "${p}_noisy_before" "$noisy_before" "(noisy jobs that succeeded before the last quiet one)"
}

for b in $BACKLOGS; do
	for side in plain citus; do
		measure "$side" "$b"
	done
done
