#!/usr/bin/env bash
# Bench: retention (issue 9, part 6): does the status cost depend on history, and does pruning
# keep up with the rate at which jobs can finish?
#
#   status:  GET /integrations/status's function, saas.integration_status_json(), called
#            ENGINE_STATUS_CALLS (200) times in one transaction under a verified context, as the
#            admin of an organization and as a super_admin (all organizations), with no history
#            and then with ENGINE_HISTORY_JOBS (1,000,000) succeeded jobs of that organization in
#            saas.jobs (kept: they finished now, within saas.retention_succeeded_jobs), each the
#            median of 3 rounds. (Called directly, not through saas.http, so the per-user rate
#            limit does not answer 429 to a loop.)
#              engine_status_history_ratio       = admin ms with history / ms without (target<=1.5)
#              engine_status_history_ratio_super = the same for the super_admin
#   arrival: ENGINE_ARRIVAL_JOBS (20,000) jobs drained through the sim as in engine_2_drain:
#            jobs/s = the fastest rate at which succeeded jobs arrive in saas.jobs.
#   prune:   the 1,000,000 history jobs are made 2 hours old (past the default 1 h); the worker
#            prunes them in its own loop (a step every second, batches of saas.retention_batch,
#            at most 0.5 s a step): rows/s = rows / (time from that commit until the worker's
#            saas_worker_pruned_rows_total has counted them).
#              engine_prune_vs_arrival = prune rows/s / arrival jobs/s (target>=1)
#            Also printed: the worker's prune capacity (rows per second spent deleting, from
#            saas_worker_prune_seconds_total).
set -euo pipefail
source "$(dirname "$0")/engine/lib.bash"

HISTORY=${ENGINE_HISTORY_JOBS:-1000000}
CALLS=${ENGINE_STATUS_CALLS:-200}
ARRIVAL=${ENGINE_ARRIVAL_JOBS:-20000}
RUN=$(date +%s%N)
RT_SLUG="retention-bench-$RUN"
RT_SUPER="rt-super-$RUN@bench.test"
RT_PW='correct horse battery staple'

engine_setup
engine_set_in_flight 256

rt_cleanup() {
	bq -c "DELETE FROM saas.jobs WHERE org_id = (SELECT id FROM saas.organizations WHERE slug = '$RT_SLUG');
		   DELETE FROM saas.organizations WHERE slug = '$RT_SLUG';
		   DELETE FROM saas.users WHERE email = '$RT_SUPER'" >/dev/null 2>&1 || true
}
ENGINE_CLEANUPS+=(rt_cleanup)

# An organization with an admin (its own queue), and a super_admin (every queue).
ADMIN_TOK=$(bq -c "SELECT saas.register(jsonb_build_object('organization', jsonb_build_object('name', 'Retention Bench',
	'slug', '$RT_SLUG'), 'email', 'admin@$RT_SLUG.test', 'password', '$RT_PW', 'first_name', 'Rt', 'last_name', 'Admin')) ->> 'token'") ||
	bench_fail "cannot register the bench organization"
RT_ORG=$(bq -c "SELECT id FROM saas.organizations WHERE slug = '$RT_SLUG'")
bq -c "SELECT saas.create_super_admin('$RT_SUPER', '$RT_PW')" >/dev/null || bench_fail "cannot create a super_admin"
SUPER_TOK=$(bq -c "SELECT saas.login(jsonb_build_object('email', '$RT_SUPER', 'password', '$RT_PW')) ->> 'token'") ||
	bench_fail "cannot log in the super_admin"
bq -c "SELECT pg_sleep(2)" >/dev/null	# the registration's own jobs go out first

# status_ms TOKEN: mean ms of one saas.integration_status_json() over CALLS calls.
status_ms() {
	bq -c "BEGIN" -c "SELECT saas.authenticate('$1')" -c "
		CREATE TEMP TABLE IF NOT EXISTS rt_t (ms float8);
		TRUNCATE rt_t;
		DO \$\$
		DECLARE t0 timestamptz := clock_timestamp(); d jsonb;
		BEGIN
			FOR i IN 1..$CALLS LOOP
				d := saas.integration_status_json();
			END LOOP;
			IF d IS NULL OR NOT d ? 'communicationService' THEN
				RAISE EXCEPTION 'unexpected status document %', d;
			END IF;
			INSERT INTO rt_t VALUES (1000 * extract(epoch FROM clock_timestamp() - t0) / $CALLS);
		END \$\$;" -c "SELECT ms FROM rt_t" -c "COMMIT" | grep -E '^[0-9.e-]+$' | tail -1
}
# median3 TOKEN: the median of 3 rounds of status_ms.
median3() {
	local a b c
	a=$(status_ms "$1") && b=$(status_ms "$1") && c=$(status_ms "$1") || return 1
	printf '%s\n%s\n%s\n' "$a" "$b" "$c" | sort -g | sed -n 2p
}

bq -c "VACUUM (ANALYZE) saas.jobs" >/dev/null
adm0=$(median3 "$ADMIN_TOK") || bench_fail "status as admin failed"
sup0=$(median3 "$SUPER_TOK") || bench_fail "status as super_admin failed"
echo "  status without history: admin $(fmt "$adm0" 3) ms, super_admin $(fmt "$sup0" 3) ms per call ($CALLS calls, median of 3 rounds)"

start=$(now_s)
bq -c "INSERT INTO saas.jobs (org_id, service, kind, state, attempt, idempotency_key, last_status, finished_at, created_at, updated_at)
	SELECT '$RT_ORG', (ARRAY['user-service', 'payment-service', 'communication-service'])[1 + g % 3], 'rt.history',
		   'succeeded', 1, 'rt-history-' || g, 201, now(), now(), now()
	  FROM generate_series(1, $HISTORY) g" >/dev/null || bench_fail "cannot insert the history"
bq -c "VACUUM (ANALYZE) saas.jobs" >/dev/null
echo "  inserted $HISTORY succeeded jobs of the admin's organization in $(fmt "$(awk -v a="$start" -v b="$(now_s)" 'BEGIN { print b - a }')" 1) s"
adm1=$(median3 "$ADMIN_TOK") || bench_fail "status as admin failed"
sup1=$(median3 "$SUPER_TOK") || bench_fail "status as super_admin failed"
echo "  status with $HISTORY succeeded jobs: admin $(fmt "$adm1" 3) ms, super_admin $(fmt "$sup1" 3) ms per call"

# Arrival: the rate at which the worker can finish jobs.
bq -c "SELECT count(saas._enqueue('$ENGINE_ORG', 'communication-service', 'message.bench', 'POST', '/messages',
		   jsonb_build_object('organization_id', '$ENGINE_ORG_REF', 'recipient', 'bench@startup.io',
							  'template', 'bench', 'subject', 'rt-$RUN-' || g), 'rt-$RUN-' || g))
	  FROM generate_series(1, $ARRIVAL) g" >/dev/null || bench_fail "enqueue failed"
t0=$(bq -c "SELECT extract(epoch FROM min(created_at)) FROM saas.jobs WHERE org_id = '$ENGINE_ORG' AND idempotency_key LIKE 'rt-$RUN-%'")
engine_wait_jobs 600
read -r ok t1 < <(bq -F ' ' -c "SELECT count(*), extract(epoch FROM max(finished_at)) FROM saas.jobs
	WHERE org_id = '$ENGINE_ORG' AND idempotency_key LIKE 'rt-$RUN-%' AND state = 'succeeded'")
[ "$ok" = "$ARRIVAL" ] || bench_fail "$ok of $ARRIVAL jobs succeeded"
arrival=$(awk -v n="$ARRIVAL" -v a="$t0" -v b="$t1" 'BEGIN { print n / (b - a) }')
echo "  arrival: $ARRIVAL jobs finished in $(fmt "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" 2) s: $(fmt "$arrival" 0) succeeded jobs/s"

# Prune: the history becomes old enough; the worker deletes it in its loop.
metric() {
	bq -c "SELECT saas._worker_metrics_text()" | awk -v s="$1" '$1 == s { print $2 }'
}
p0=$(metric 'saas_worker_pruned_rows_total{table="jobs_succeeded"}')
s0=$(metric 'saas_worker_prune_seconds_total{table="jobs_succeeded"}')
bq -c "UPDATE saas.jobs SET finished_at = finished_at - interval '2 hours' WHERE org_id = '$RT_ORG' AND kind = 'rt.history'" >/dev/null
tp0=$(now_s)
deadline=$((SECONDS + 600))
while :; do
	p=$(metric 'saas_worker_pruned_rows_total{table="jobs_succeeded"}')
	[ $((p - p0)) -ge "$HISTORY" ] && break
	[ "$SECONDS" -lt "$deadline" ] || bench_fail "only $((p - p0)) of $HISTORY rows pruned after 600 s"
	sleep 0.2
done
tp1=$(now_s)
s1=$(metric 'saas_worker_prune_seconds_total{table="jobs_succeeded"}')
left=$(bq -c "SELECT count(*) FROM saas.jobs WHERE org_id = '$RT_ORG' AND kind = 'rt.history'")
[ "$left" = 0 ] || bench_fail "$left history jobs are left"
prune=$(awk -v n="$HISTORY" -v a="$tp0" -v b="$tp1" 'BEGIN { print n / (b - a) }')
capacity=$(awk -v n="$((p - p0))" -v a="$s0" -v b="$s1" 'BEGIN { print n / (b - a) }')
echo "  prune: $HISTORY rows in $(fmt "$(awk -v a="$tp0" -v b="$tp1" 'BEGIN { print b - a }')" 2) s of wall time:" \
	"$(fmt "$prune" 0) rows/s; $(fmt "$capacity" 0) rows per second spent deleting ($(fmt "$(awk -v a="$s0" -v b="$s1" 'BEGIN { print b - a }')" 2) s)"

bench_figure engine_status_ms_no_history "$(fmt "$adm0" 3)" "" "admin, saas.integration_status_json()"
bench_figure engine_status_ms_1m_history "$(fmt "$adm1" 3)" "" "admin, $HISTORY succeeded jobs in history"
bench_figure engine_status_history_ratio "$(awk -v a="$adm0" -v b="$adm1" 'BEGIN { printf "%.3f", b / a }')" "target<=1.5" "admin: with / without history"
bench_figure engine_status_history_ratio_super "$(awk -v a="$sup0" -v b="$sup1" 'BEGIN { printf "%.3f", b / a }')" "target<=1.5" "super_admin: with / without history"
bench_figure engine_arrival_jobs_per_s "$(fmt "$arrival" 1)" "" "worker drain, $ARRIVAL jobs"
bench_figure engine_prune_rows_per_s "$(fmt "$prune" 1)" "" "worker retention step, wall time"
bench_figure engine_prune_vs_arrival "$(awk -v a="$arrival" -v p="$prune" 'BEGIN { printf "%.2f", p / a }')" "target>=1" "prune rows/s over arrival jobs/s"
