# shellcheck shell=bash disable=SC2034
# Helpers of the integration-engine benches (test/bench/engine_*.sh); sourced.
#
# Under test/bench/run_bench.sh the cluster, BENCH_DB (the database the pg_saas worker serves)
# and BENCH_WORK come from the environment (see run_bench.sh's header). Run alone
# (`bash test/bench/engine_2_drain.sh`), a bench makes its own throwaway cluster with pg_saas
# preloaded on a free port under /tmp, as the postgres OS user, and stops it on exit
# (for diagnosis there: ENGINE_PGSS=1 also preloads pg_stat_statements, whose top statements
# the benches then print; ENGINE_WORKER_PROCESSES=N sets saas.worker_processes;
# ENGINE_AUTO_EXPLAIN_MS=N logs the plans of statements slower than N ms
# to the server log; KEEP_BENCH_WORK=1 keeps the folder).
#
# Every bench starts its own saas-sim (the optimized build) on free ports, with webhook
# deliveries and the request log off, creates the bench organization "engine-bench"
# (communication_service reference org_engine_bench), points saas.integrations at its sim,
# and on exit puts back the integrations' settings, deletes the bench organization (and
# with it its jobs, events and notifications) and stops the sim.
#
#   engine_setup                   all of the above; sets ENGINE_ORG, SIM_CTL, SIM_COM, ...
#   engine_set_in_flight N         max_in_flight of communication-service
#   engine_sim_requests            requests the sim's communication-service has answered
#   engine_worker_pid              pid of the pg_saas worker (waits for it)
#   engine_pause_worker / engine_resume_worker
#                                  hold / release a SHARE lock on saas.jobs from a session of
#                                  our own: the worker's round takes its tables with
#                                  conditional locks, so it skips rounds while the lock is held
#   engine_wait_jobs TIMEOUT       waits until no job of the bench org is waiting or running
#   engine_wrk_capacity SECS       sim capacity on POST /v1/messages (wrk -t2 -c32), req/s
#   now_s                          Unix time with microseconds
#   engine_pgss_reset / engine_pgss_top N   when pg_stat_statements is loaded (ENGINE_PGSS=1 run
#                                  alone): reset it, print the top N statements by total time

ENGINE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT_ROOT=${PROJECT_ROOT:-$(cd "$ENGINE_DIR/../../.." && pwd)}
source "$ENGINE_DIR/../lib/bench_lib.bash"

SIM_BIN=${SIM_BIN:-$PROJECT_ROOT/sim/saas-sim}
ENGINE_ORG_REF=org_engine_bench
ENGINE_SLUG=engine-bench
ENGINE_OWN_CLUSTER=
ENGINE_SIM_PID=
ENGINE_PAUSE_PID=
ENGINE_SAVED_INTEGRATIONS=
ENGINE_CLEANUPS=()

now_s() {
	date +%s.%N | cut -c1-17
}

engine_on_exit() {
	local rc=$?
	local f
	for f in "${ENGINE_CLEANUPS[@]}"; do
		"$f" || true
	done
	engine_resume_worker 2>/dev/null || true
	if [ -n "$ENGINE_SAVED_INTEGRATIONS" ] && [ -z "$ENGINE_OWN_CLUSTER" ]; then
		bq -c "$ENGINE_SAVED_INTEGRATIONS" >/dev/null 2>&1 ||
			echo "  warning: could not restore saas.integrations" >&2
	fi
	if [ -z "$ENGINE_OWN_CLUSTER" ] && [ -n "${ENGINE_ORG:-}" ]; then
		bq -c "DELETE FROM saas.organizations WHERE id = '$ENGINE_ORG'" >/dev/null 2>&1 ||
			echo "  warning: could not delete the bench organization" >&2
	fi
	if [ -n "$ENGINE_SIM_PID" ] && kill -0 "$ENGINE_SIM_PID" 2>/dev/null; then
		kill -TERM "$ENGINE_SIM_PID" 2>/dev/null
		wait "$ENGINE_SIM_PID" 2>/dev/null
	fi
	if [ -n "$ENGINE_OWN_CLUSTER" ]; then
		cluster_stop "$PGDATA"
		# a server still recovering from a crash may not take a fast shutdown
		if cluster_alive "$PGDATA"; then
			as_pg pg_ctl -D "$PGDATA" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
		fi
		if grep -qE 'terminated by signal|PANIC' "$BENCH_WORK/postgres.log" 2>/dev/null; then
			echo "bench error: the server log shows a crashed backend:" >&2
			grep -E 'terminated by signal|PANIC' "$BENCH_WORK/postgres.log" | head -5 >&2
			rc=1
		fi
		if [ -n "${KEEP_BENCH_WORK:-}" ]; then
			echo "  work folder kept: $BENCH_WORK"
		else
			rm -rf "$ENGINE_OWN_CLUSTER"
		fi
	fi
	exit "$rc"
}

# engine_own_cluster: run alone, make a cluster like run_bench.sh's.
engine_own_cluster() {
	source "$PROJECT_ROOT/scripts/cluster.sh"
	ENGINE_OWN_CLUSTER=$(mktemp -d /tmp/pg_saas_engine_bench.XXXXXX)
	chmod 755 "$ENGINE_OWN_CLUSTER"
	cluster_chown "$ENGINE_OWN_CLUSTER"
	BENCH_WORK=$ENGINE_OWN_CLUSTER
	PGPORT=$(cluster_free_port 57432)
	PGDATA="$BENCH_WORK/data"
	BENCH_DB=saas_bench
	export BENCH_WORK PGPORT PGDATA BENCH_DB PG_BINDIR PROJECT_ROOT
	export PGHOST="$BENCH_WORK" PGUSER=postgres PGDATABASE=$BENCH_DB PGAPPNAME=pg_saas_bench
	echo "  standalone: cluster in $PGDATA on port $PGPORT"
	cluster_init "$PGDATA" "$PGPORT" "$BENCH_WORK" "$BENCH_DB" || bench_fail "initdb failed"
	cat >>"$PGDATA/postgresql.conf" <<-CONF
		max_wal_size = 4GB
		checkpoint_timeout = 30min
	CONF
	if [ -n "${ENGINE_WORKER_PROCESSES:-}" ]; then
		echo "saas.worker_processes = $ENGINE_WORKER_PROCESSES" >>"$PGDATA/postgresql.conf"
	fi
	local preload=pg_saas
	if [ -n "${ENGINE_PGSS:-}" ]; then
		preload="$preload,pg_stat_statements"
		cat >>"$PGDATA/postgresql.conf" <<-CONF
			pg_stat_statements.track = all
			pg_stat_statements.track_planning = on
		CONF
	fi
	if [ -n "${ENGINE_AUTO_EXPLAIN_MS:-}" ]; then
		preload="$preload,auto_explain"
		cat >>"$PGDATA/postgresql.conf" <<-CONF
			auto_explain.log_min_duration = $ENGINE_AUTO_EXPLAIN_MS
			auto_explain.log_nested_statements = on
		CONF
	fi
	echo "shared_preload_libraries = '$preload'" >>"$PGDATA/postgresql.conf"
	cluster_start "$PGDATA" "$BENCH_WORK/postgres.log" || {
		tail -30 "$BENCH_WORK/postgres.log"; bench_fail "the cluster did not start"; }
	bq -d postgres -c "CREATE DATABASE $BENCH_DB" >/dev/null || bench_fail "CREATE DATABASE failed"
	bq -c "CREATE EXTENSION pg_saas" -c "CREATE EXTENSION pgcrypto" >/dev/null ||
		bench_fail "CREATE EXTENSION failed"
	if [ -n "${ENGINE_PGSS:-}" ]; then
		bq -c "CREATE EXTENSION pg_stat_statements" >/dev/null || bench_fail "pg_stat_statements failed"
	fi
}

# engine_free_ports N: N distinct free TCP ports on 127.0.0.1.
engine_free_ports() {
	python3 - "$1" <<-'PY'
		import socket, sys
		socks = [socket.socket() for _ in range(int(sys.argv[1]))]
		for s in socks:
		    s.bind(("127.0.0.1", 0))
		print(*[s.getsockname()[1] for s in socks])
		for s in socks:
		    s.close()
	PY
}

engine_start_sim() {
	[ -x "$SIM_BIN" ] || bench_fail "$SIM_BIN is not built (make sim/saas-sim)"
	read -r SIM_CTL SIM_USR SIM_PAY SIM_COM < <(engine_free_ports 4)
	"$SIM_BIN" --control-port "$SIM_CTL" --user-port "$SIM_USR" --payment-port "$SIM_PAY" \
		--communication-port "$SIM_COM" --oidc-port 0 --seed 1 --seed-data /nonexistent --webhook-url none --quiet \
		2>"$BENCH_WORK/engine-sim.log" &
	ENGINE_SIM_PID=$!
	local i
	for i in $(seq 1 100); do
		curl -sf "http://127.0.0.1:$SIM_CTL/_sim/health" >/dev/null && break
		sleep 0.05
	done
	curl -sf "http://127.0.0.1:$SIM_CTL/_sim/health" >/dev/null || {
		cat "$BENCH_WORK/engine-sim.log"; bench_fail "the sim did not start"; }
	echo "  sim: pid $ENGINE_SIM_PID, control :$SIM_CTL, communication-service :$SIM_COM (webhooks off, --quiet)"
}

engine_setup() {
	trap engine_on_exit EXIT
	trap 'exit 130' INT TERM
	if [ -z "${BENCH_DB:-}" ]; then
		engine_own_cluster
	fi
	export PGDATABASE=$BENCH_DB
	engine_start_sim

	# The integrations as they are, to be put back on exit.
	ENGINE_SAVED_INTEGRATIONS=$(bq -c "
		SELECT 'UPDATE saas.integrations i SET base_url = v.base_url, max_in_flight = v.max_in_flight FROM (VALUES '
			   || string_agg(format('(%L, %L, %s)', service, base_url, max_in_flight), ', ')
			   || ') v(service, base_url, max_in_flight) WHERE i.service = v.service'
		  FROM saas.integrations") || bench_fail "cannot read saas.integrations"
	bq -c "
		UPDATE saas.integrations SET base_url = CASE service
			WHEN 'user-service' THEN 'http://127.0.0.1:$SIM_USR/v1'
			WHEN 'payment-service' THEN 'http://127.0.0.1:$SIM_PAY/v2'
			ELSE 'http://127.0.0.1:$SIM_COM/v1' END" >/dev/null || bench_fail "cannot point the integrations at the sim"

	# The bench organization, fresh.
	bq -c "DELETE FROM saas.organizations WHERE slug = '$ENGINE_SLUG'" >/dev/null || bench_fail "cannot delete an old bench org"
	ENGINE_ORG=$(bq -c "
		INSERT INTO saas.organizations (name, slug, subscription_tier, employee_limit, external_ids)
		VALUES ('Engine Bench', '$ENGINE_SLUG', 'enterprise', 1000000,
				jsonb_build_object('communication_service', '$ENGINE_ORG_REF'))
		RETURNING id") || bench_fail "cannot create the bench organization"
	bq -c "VACUUM (ANALYZE) saas.jobs, saas.webhook_events" >/dev/null 2>&1 || true
	local others
	others=$(bq -c "SELECT count(*) FROM saas.jobs WHERE state IN ('available', 'running', 'retryable')")
	[ "$others" = 0 ] || echo "  note: $others jobs of other organizations are waiting in the queue"
	engine_worker_pid >/dev/null || bench_fail "the pg_saas worker is not running in $BENCH_DB"
	local w
	w=$(engine_worker_pid)
	echo "  bench org $ENGINE_ORG ($ENGINE_SLUG, communication_service=$ENGINE_ORG_REF);" \
		"worker pid $w (Anonymous $(engine_smaps "$w" Anonymous) kB); load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
	ENGINE_CLEANUPS+=(engine_report_worker)
}

# engine_report_worker: on exit, the worker's memory (it serves every bench of the run).
engine_report_worker() {
	local w
	w=$(bq -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_saas worker' LIMIT 1" 2>/dev/null)
	[ -n "$w" ] && [ -r "/proc/$w/smaps_rollup" ] &&
		echo "  at the end: worker pid $w, Anonymous $(engine_smaps "$w" Anonymous) kB"
	return 0
}

engine_set_in_flight() {
	bq -c "UPDATE saas.integrations SET max_in_flight = $1 WHERE service = 'communication-service'" >/dev/null
}

# engine_sim_requests: the requests counter of the sim's communication-service.
engine_sim_requests() {
	curl -sf "http://127.0.0.1:$SIM_CTL/_sim/stats/communication-service" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["requests"])'
}

engine_worker_pid() {
	local pid i
	for i in $(seq 1 150); do
		pid=$(bq -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_saas worker' LIMIT 1")
		if [ -n "$pid" ]; then
			echo "$pid"
			return 0
		fi
		sleep 0.1
	done
	return 1
}

engine_pause_worker() {
	local fifo="$BENCH_WORK/engine-pause.fifo"
	rm -f "$fifo"
	mkfifo "$fifo"
	# psql reads the fifo; the lock is held until we write COMMIT.
	PGAPPNAME=engine_bench_pause psql -X -q -At -v ON_ERROR_STOP=1 <"$fifo" >"$BENCH_WORK/engine-pause.out" 2>&1 &
	ENGINE_PAUSE_PID=$!
	exec {ENGINE_PAUSE_FD}>"$fifo"
	echo "BEGIN; LOCK TABLE saas.jobs IN SHARE MODE; SELECT 'locked';" >&"$ENGINE_PAUSE_FD"
	local i
	for i in $(seq 1 100); do
		grep -q locked "$BENCH_WORK/engine-pause.out" 2>/dev/null && return 0
		sleep 0.05
	done
	bench_fail "could not lock saas.jobs to pause the worker: $(cat "$BENCH_WORK/engine-pause.out")"
}

engine_resume_worker() {
	[ -n "$ENGINE_PAUSE_PID" ] || return 0
	echo "COMMIT;" >&"$ENGINE_PAUSE_FD"
	exec {ENGINE_PAUSE_FD}>&-
	wait "$ENGINE_PAUSE_PID" 2>/dev/null
	ENGINE_PAUSE_PID=
	rm -f "$BENCH_WORK/engine-pause.fifo"
	# wake it now rather than at its next timeout
	bq -c "SELECT saas._wake_worker()" >/dev/null
}

# engine_wait_jobs TIMEOUT_S: until no job of the bench org is waiting or running; fails after
# TIMEOUT_S seconds.
engine_wait_jobs() {
	local deadline=$((SECONDS + $1)) left
	while :; do
		# cheap (index on service, state), so that polling costs the worker little
		left=$(bq -c "SELECT EXISTS (SELECT FROM saas.jobs WHERE service = 'communication-service'
						 AND state IN ('available', 'running', 'retryable') AND org_id = '$ENGINE_ORG')")
		[ "$left" = f ] && return 0
		if [ "$SECONDS" -ge "$deadline" ]; then
			bench_fail "$(bq -c "SELECT count(*) FROM saas.jobs WHERE org_id = '$ENGINE_ORG'
				AND state IN ('available', 'running', 'retryable')") jobs still queued after $1 s"
		fi
		sleep 0.1
	done
}

# engine_wrk_capacity SECONDS: what the sim answers on POST /v1/messages with wrk -t2 -c32, the
# same request the worker sends (same body shape, a fresh Idempotency-Key each). Echoes req/s.
engine_wrk_capacity() {
	local secs=$1 lua="$BENCH_WORK/engine-post-message.lua" out rps non2xx
	cat >"$lua" <<-LUA
		local counter = 0
		local tag = "$(date +%s%N)"
		local nthreads = 0
		function setup(thread)
		  nthreads = nthreads + 1
		  thread:set("tid", tostring(nthreads))
		end
		request = function()
		  counter = counter + 1
		  local key = "wrk-" .. tag .. "-" .. (tid or "0") .. "-" .. counter
		  return wrk.format("POST", "/v1/messages",
		    {["Content-Type"] = "application/json", ["Accept"] = "application/json",
		     ["Idempotency-Key"] = key},
		    '{"organization_id":"$ENGINE_ORG_REF","recipient":"bench@startup.io","template":"bench","subject":"' .. key .. '"}')
		end
	LUA
	out=$(wrk -t2 -c32 -d"${secs}s" -s "$lua" "http://127.0.0.1:$SIM_COM/v1/messages" 2>&1)
	rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
	non2xx=$(echo "$out" | awk '/Non-2xx or 3xx responses:/ {print $5}')
	if [ -z "$rps" ] || [ -n "$non2xx" ]; then
		echo "$out" >&2
		return 1
	fi
	echo "$rps"
}

# engine_smaps PID FIELD...: fields of /proc/PID/smaps_rollup in kB, space-separated.
engine_smaps() {
	local pid=$1
	shift
	local f out=""
	for f in "$@"; do
		out="$out $(awk -v k="$f:" '$1 == k {print $2}' "/proc/$pid/smaps_rollup")"
	done
	echo "${out# }"
}

engine_pgss_on() {
	[ "$(bq -c "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'
				 AND current_setting('shared_preload_libraries') ~ 'pg_stat_statements'" 2>/dev/null)" = 1 ]
}

engine_pgss_reset() {
	engine_pgss_on || return 0
	bq -c "SELECT pg_stat_statements_reset()" >/dev/null
}

engine_pgss_top() {
	engine_pgss_on || return 0
	local plan="0"
	[ "$(bq -c "SHOW pg_stat_statements.track_planning")" = on ] && plan="total_plan_time"
	echo "  pg_stat_statements (top $1 by execution + planning time; ms total, calls, ms per call, of which planning):"
	bq -F ' | ' -c "
		SELECT lpad(round(total_exec_time + $plan)::text, 6), lpad(calls::text, 6),
			   lpad(round(((total_exec_time + $plan) / greatest(calls, 1))::numeric, 3)::text, 8),
			   lpad(round(($plan / greatest(calls, 1))::numeric, 3)::text, 7),
			   left(regexp_replace(query, '\s+', ' ', 'g'), 120)
		  FROM pg_stat_statements ORDER BY total_exec_time + $plan DESC LIMIT $1" | sed 's/^/    /'
}
