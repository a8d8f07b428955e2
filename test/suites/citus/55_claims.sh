# Part of test/suites/80_citus.sh (sourced): the worker's claims on Citus (docs/scale-out.md,
# "The queue on Citus").
#
# - The claim race: the isolation specs of test/suites/citus/isolation/specs/ (claim_jobs_citus:
#   two claimers with the worker's Citus statements, in concurrent sessions on the coordinator;
#   saas.worker_processes runs several worker processes there) by PostgreSQL's isolation tester
#   against the coordinator, in a database of their own (claims_citus, made as docs/scale-out.md
#   says) that no pg_saas worker serves. A claimer that waited for the other's rows would hang
#   the spec (its lock is on a worker node, where the isolation tester does not look): the run
#   is bounded by a timeout, which fails it.
# - The fair walk of the coordinator's worker (test database): one organization's backlog crowds
#   every window of the walk (bgworker/worker_walk.c), and every quiet organization's job is
#   still claimed within a few rounds; every shard's part of the walk reads at most its window.

cl_db=claims_citus
cl_out=$CITUS_WORK/isolation
cl_iso=$(dirname "$(pg_config --pgxs)")/../test/isolation/pg_isolation_regress
cl_src=$PROJECT_ROOT/test/suites/citus/isolation
cl_specs=$(cd "$cl_src/specs" && ls ./*.spec | sed 's|^\./||; s/\.spec$//' | sort)
mkdir -p "$cl_out"
chmod 755 "$cl_out"
cluster_chown "$cl_out"
if [ ! -x "$cl_iso" ]; then
	not_ok "claims on Citus: pg_isolation_regress not found at $cl_iso"
elif ! citus_saas_db "$cl_db"; then
	not_ok "claims on Citus: cannot make $cl_db (Citus, pg_saas, distribute)"
else
	# shellcheck disable=SC2086 # one argument per spec
	(cd "$cl_out" && timeout 120 "$cl_iso" --use-existing --host="$CITUS_DIR" --port="${CITUS_PORTS[0]}" --user=postgres \
		--inputdir="$cl_src" --outputdir="$cl_out" --dbname="$cl_db" $cl_specs) >"$cl_out/isolation.out" 2>&1
	cl_rc=$?
	for spec in $cl_specs; do
		name="isolation spec $spec on the coordinator: no job is claimed twice, no claimer waits"
		if grep -qE "^test $spec +\.\.\. ok" "$cl_out/isolation.out"; then
			ok "$name"
		else
			not_ok "$name" "exit $cl_rc (124: timed out)"$'\n'"$(tail -5 "$cl_out/isolation.out")"$'\n'"$(head -60 "$cl_out/regression.diffs" 2>/dev/null)"
		fi
	done
	psql -X -q -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U postgres -d postgres -c "DROP DATABASE $cl_db" >/dev/null 2>&1
fi

# ---- The fair walk of the coordinator's worker, with one organization's backlog.
# The communication service points at a closed port: a call fails at once and its job becomes
# retryable, due a minute later, with attempt 1 (claimed once: "served"). Breakers that do not
# open, four calls in flight: a walk takes at most 4 organizations, in windows of 32 jobs.
cl_noisy=00000000-0000-4000-8000-00000000f001
cl_saved=$(cpsql 0 -c "SELECT format('UPDATE saas.integrations SET base_url = %L, max_in_flight = %s, base_backoff_ms = %s,
	breaker_consecutive_failures = %s, breaker_min_volume = %s WHERE service = ''communication-service''',
	base_url, max_in_flight, base_backoff_ms, breaker_consecutive_failures, breaker_min_volume)
	FROM saas.integrations WHERE service = 'communication-service'")
cpsql 0 >/dev/null <<SQL || not_ok "the fair walk on Citus: cannot queue the jobs"
UPDATE saas.integrations SET base_url = 'parked:http://127.0.0.1:1/v1', max_in_flight = 4, base_backoff_ms = 60000,
	breaker_consecutive_failures = 1000000, breaker_min_volume = 1000000 WHERE service = 'communication-service';
INSERT INTO saas.jobs (org_id, service, kind, payload, idempotency_key, run_at)
SELECT '$cl_noisy', 'communication-service', 'fair.walk', '{"method": "POST", "path": "/messages", "body": {}}',
	   'fair-walk-' || g, now() - interval '1 minute'
  FROM generate_series(1, 3000) g;
INSERT INTO saas.jobs (org_id, service, kind, payload, idempotency_key)
SELECT md5('fair-walk-quiet-' || k)::uuid, 'communication-service', 'fair.walk', '{"method": "POST", "path": "/messages", "body": {}}',
	   'fair-walk-quiet'
  FROM generate_series(1, 20) k;
VACUUM ANALYZE saas.jobs;
SQL
# The worker's window (plan_org_window_citus) from before the noisy organization: the shard
# holding its 3,000 jobs reads 32 of them. (The DISTINCT the walk was before read them all:
# printed for comparison.)
cl_shard=$(cpsql 0 -c "SELECT get_shard_id_for_distribution_column('saas.jobs', '$cl_noisy')")
# cl_shard_rows SQL: the rows the scan of the noisy organization's shard returned, in EXPLAIN ANALYZE of SQL.
cl_shard_rows() {
	cpsql 0 -c "SET citus.explain_all_tasks = on" -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $1" |
		sed -nE "s/.*Scan.* on jobs_${cl_shard} .*\(actual rows=([0-9]+) loops=1\).*/\1/p" | head -1
}
cl_where="FROM saas.jobs j WHERE j.service = 'communication-service' AND j.state IN ('available', 'retryable')
	   AND j.org_id > '00000000-0000-0000-0000-000000000000' ORDER BY j.org_id LIMIT 32"
cl_rows=$(cl_shard_rows "SELECT j.org_id $cl_where")
echo "# a DISTINCT over the same jobs reads $(cl_shard_rows "SELECT DISTINCT j.org_id $cl_where") rows of that shard"
if [ -n "$cl_rows" ] && [ "$cl_rows" -le 32 ]; then
	ok "the walk's window reads at most 32 rows of the shard with a 3,000-job backlog ($cl_rows)"
else
	not_ok "the walk's window reads at most 32 rows of the shard with a 3,000-job backlog" "rows: ${cl_rows:-none}"
fi
cpsql 0 -c "UPDATE saas.integrations SET base_url = 'http://127.0.0.1:1/v1' WHERE service = 'communication-service'" \
	-c "SELECT saas._wake_worker()" >/dev/null
for _ in $(seq 1 150); do
	cl_left=$(cpsql 0 -c "SELECT count(*) FROM saas.jobs WHERE kind = 'fair.walk' AND org_id <> '$cl_noisy' AND attempt = 0")
	[ "$cl_left" = 0 ] && break
	sleep 0.2
done
cl_noisy_done=$(cpsql 0 -c "SELECT count(*) FROM saas.jobs WHERE org_id = '$cl_noisy' AND attempt > 0")
cpsql 0 -c "UPDATE saas.integrations SET base_url = 'parked:' || base_url WHERE service = 'communication-service'" >/dev/null
if [ "$cl_left" = 0 ] && [ "$cl_noisy_done" -lt 1000 ]; then
	ok "the coordinator's worker claims every quiet organization's job past a 3,000-job backlog ($cl_noisy_done of the backlog claimed meanwhile)"
else
	not_ok "the coordinator's worker claims every quiet organization's job past a 3,000-job backlog" \
		"quiet jobs never claimed: $cl_left; backlog jobs claimed: $cl_noisy_done"
fi
for _ in $(seq 1 100); do
	[ "$(cpsql 0 -c "SELECT count(*) FROM saas.jobs WHERE kind = 'fair.walk' AND state = 'running'")" = 0 ] && break
	sleep 0.1
done
cpsql 0 -c "DELETE FROM saas.jobs WHERE kind = 'fair.walk'" -c "$cl_saved" >/dev/null ||
	not_ok "the fair walk on Citus: cannot put the communication service back"
