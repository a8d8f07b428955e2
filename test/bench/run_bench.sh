#!/usr/bin/env bash
# make bench: a throwaway PostgreSQL 15 cluster with pg_saas preloaded, every benchmark script
# of test/bench/ in name order, then a summary table of every figure they printed.
#
# Speed is judged by RATIOS measured side by side in the same run (the machine is shared and
# noisy), never by timed assertions: a figure that misses its target is reported, not failed.
# A bench fails only when it cannot measure (an error, a wrong answer, a crashed server).
#
# Usage:  make bench                       (builds and installs first)
#         bash test/bench/run_bench.sh     (uses what is installed)
#   BENCHES=10_jwt,20_rls   run only these scripts (names without .sh)
#   BENCH_SECONDS=10        pgbench -T of each timed run          BENCH_ROUNDS=3    rounds per comparison
#   BENCH_CLIENTS=2         pgbench -c and -j                     KEEP_BENCH_WORK=1 keep the work folder
#   BENCH_COMPARE=concurrent  both sides of a comparison at once (default), or "alternate"
#   BENCH_ORGS=100 BENCH_USERS_PER_ORG=10000   size of the foundation data set (10_/20_/30_ benches)
#
# ---------------------------------------------------------------------------------------------
# The contract between this script and a bench script (test/bench/*.sh other than this one;
# files in subfolders, e.g. lib/, are helpers and are not run):
#
# - It is run as `bash test/bench/NAME.sh`, from the project root, in name order (so 10_..., 20_...
#   before relay_... and sim_...), with its standard output and error captured to
#   $BENCH_WORK/NAME.out and echoed.
# - The cluster is running and stays running; the script must not stop or reconfigure it
#   (no ALTER SYSTEM, no restart). It reaches it through the environment:
#     PGHOST      the cluster's unix socket folder (also listening on TCP 127.0.0.1:$PGPORT)
#     PGPORT      the port
#     PGUSER      postgres (a superuser)
#     PGDATABASE  = BENCH_DB
#     BENCH_DB    a database with pg_saas and pgcrypto installed; it is the database the pg_saas
#                 background worker serves (saas.database), so relay and integration benches
#                 use this one. A bench that needs big data of its own may create another
#                 database (the foundation benches use bench_foundation).
#     BENCH_APP_ROLE     "app": LOGIN, member of saas_api, no BYPASSRLS (what an application is)
#     BENCH_BYPASS_ROLE  "bench_bypass": LOGIN, BYPASSRLS, member of saas_api (the no-RLS baseline)
#     BENCH_DSN   "host=127.0.0.1 port=$PGPORT dbname=$BENCH_DB user=app" for programs over TCP
#     BENCH_WORK  a scratch folder the postgres OS user owns (mode 755); put temporary files there
#     PGDATA, PROJECT_ROOT, PG_BINDIR, and BENCH_SECONDS, BENCH_ROUNDS, BENCH_CLIENTS,
#     BENCH_COMPARE as above (honour them where they make sense).
# - Load goes to 127.0.0.1 or the unix socket only. Whatever the script starts (servers,
#   load generators) it stops itself, also on error or interrupt (trap EXIT), and it only ever
#   kills processes by the pids it started.
# - It prints each figure on a line of its own:
#       BENCH <name>=<number> [target<=<number>|target>=<number>] [free text]
#   e.g. "BENCH rls_ratio=1.03 target<=1.10" or "BENCH http_tps=2450.1". <name> is
#   [a-z0-9_]+, unique across all benches. Progress and details go on other lines.
# - Exit status 0 means it measured; anything else counts as a failed bench.
# ---------------------------------------------------------------------------------------------
set -uo pipefail

PROJECT_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_DIR="$PROJECT_ROOT/test/bench"
source "$PROJECT_ROOT/scripts/cluster.sh"

BENCH_WORK=$(mktemp -d /tmp/pg_saas_bench.XXXXXX)
chmod 755 "$BENCH_WORK"
cluster_chown "$BENCH_WORK"

PGPORT=$(cluster_free_port 56432)
PGDATA="$BENCH_WORK/data"
BENCH_DB=saas_bench
export PROJECT_ROOT BENCH_WORK PGPORT PGDATA BENCH_DB PG_BINDIR
export PGHOST="$BENCH_WORK" PGUSER=postgres PGDATABASE=$BENCH_DB
export BENCH_APP_ROLE=app BENCH_BYPASS_ROLE=bench_bypass
export BENCH_DSN="host=127.0.0.1 port=$PGPORT dbname=$BENCH_DB user=$BENCH_APP_ROLE"
export BENCH_SECONDS=${BENCH_SECONDS:-10} BENCH_ROUNDS=${BENCH_ROUNDS:-3} BENCH_CLIENTS=${BENCH_CLIENTS:-2}
export BENCH_COMPARE=${BENCH_COMPARE:-concurrent}
export PGAPPNAME=pg_saas_bench

run_start=$(date +%s)
echo "== make bench: cluster in $PGDATA on port $PGPORT ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores)"
echo "   comparisons: $BENCH_COMPARE, ${BENCH_ROUNDS} rounds of ${BENCH_SECONDS}s, ${BENCH_CLIENTS} pgbench clients a side"

cleanup() {
	cluster_stop "$PGDATA"
	if [ -n "${KEEP_BENCH_WORK:-}" ]; then
		echo "work folder kept: $BENCH_WORK"
	else
		rm -rf "$BENCH_WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_init "$PGDATA" "$PGPORT" "$BENCH_WORK" "$BENCH_DB" || { echo "bench: initdb failed"; exit 1; }
# Benchmark settings on top of cluster_init's: a data load of ~0.5 GB should not be slowed by
# checkpoints; everything else stays at the defaults an installation starts with.
cat >>"$PGDATA/postgresql.conf" <<CONF
max_wal_size = 4GB
checkpoint_timeout = 30min
CONF
cluster_start_on_free_port "$PGDATA" "$BENCH_WORK/postgres.log" || exit 1
PGPORT=$CLUSTER_PORT
BENCH_DSN="host=127.0.0.1 port=$PGPORT dbname=$BENCH_DB user=$BENCH_APP_ROLE"

psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<SQL || { echo "bench: cluster setup failed"; exit 1; }
CREATE DATABASE $BENCH_DB;
\c $BENCH_DB
CREATE EXTENSION pg_saas;
CREATE EXTENSION pgcrypto;
CREATE ROLE $BENCH_APP_ROLE LOGIN NOBYPASSRLS IN ROLE saas_api;
CREATE ROLE $BENCH_BYPASS_ROLE LOGIN BYPASSRLS IN ROLE saas_api;
SQL

declare -a summary_rows=()
declare -a script_rows=()
failed=0
ran=0
for script in "$BENCH_DIR"/*.sh; do
	name=$(basename "$script" .sh)
	[ "$name" = run_bench ] && continue
	if [ -n "${BENCHES:-}" ] && ! [[ ",$BENCHES," == *",$name,"* ]]; then continue; fi
	echo
	echo "== bench $name"
	out="$BENCH_WORK/$name.out"
	start=$(date +%s)
	(cd "$PROJECT_ROOT" && bash "$script") 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	secs=$(($(date +%s) - start))
	ran=$((ran + 1))
	if [ "$rc" -ne 0 ]; then
		failed=$((failed + 1))
		script_rows+=("$(printf '%-22s FAILED (exit %d)  %4ds' "$name" "$rc" "$secs")")
	else
		script_rows+=("$(printf '%-22s ok                %4ds' "$name" "$secs")")
	fi
	while IFS= read -r line; do
		summary_rows+=("$name $line")
	done < <(grep -E '^BENCH [a-z0-9_]+=' "$out" | sed -E 's/^BENCH //')
	if ! cluster_alive "$PGDATA"; then
		echo "bench: PostgreSQL is no longer running after $name"
		failed=$((failed + 1))
		break
	fi
done

if grep -qE 'server process .* was terminated by signal|PANIC' "$BENCH_WORK/postgres.log"; then
	echo "bench: the server log shows a crashed backend:"
	grep -E 'terminated by signal|PANIC' "$BENCH_WORK/postgres.log" | head -5
	failed=$((failed + 1))
fi

echo
echo "== summary ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uptime | sed 's/.*load average/load average/'); $BENCH_COMPARE, ${BENCH_ROUNDS} x ${BENCH_SECONDS}s, ${BENCH_CLIENTS} clients a side)"
printf '%-16s %-34s %12s  %-12s %s\n' bench figure value target verdict
printf '%-16s %-34s %12s  %-12s %s\n' ----- ------ ----- ------ -------
for row in "${summary_rows[@]}"; do
	# row: "<bench> <name>=<value> [target<=x|target>=x] [text]"
	echo "$row" | awk '{
		bench = $1; split($2, kv, "="); name = kv[1]; value = kv[2]; target = "-"; verdict = "-";
		if ($3 ~ /^target(<=|>=)[-0-9.]+$/) {
			target = substr($3, 7); op = substr(target, 1, 2); lim = substr(target, 3) + 0;
			if ((op == "<=" && value + 0 <= lim) || (op == ">=" && value + 0 >= lim)) verdict = "meets";
			else verdict = "MISSES";
		}
		printf "%-16s %-34s %12s  %-12s %s\n", bench, name, value, target, verdict
	}'
done
[ ${#summary_rows[@]} -eq 0 ] && echo "(no figures)"
echo
printf '%s\n' "${script_rows[@]}"
echo "$ran benches run, $failed failed, $(($(date +%s) - run_start))s in all"
[ "$failed" -eq 0 ]
