#!/usr/bin/env bash
# make test: a throwaway PostgreSQL cluster with pg_saas preloaded, then every suite in
# test/suites/ in name order. Each suite prints its own output and ends with a line
# "passed=N failed=M"; this script adds them up and ends with "N passed, N failed". A suite
# that cannot run here (80_citus without the Citus source) prints "SKIPPED: why" and
# "passed=0 failed=0"; the summary repeats its SKIPPED line.
#
# initdb and postgres refuse to run as root, so when run as root the cluster belongs to the
# postgres OS user, in a temporary folder that user owns.
set -uo pipefail

PROJECT_ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$PROJECT_ROOT/scripts/cluster.sh"

TEST_WORK=$(mktemp -d /tmp/pg_saas_test.XXXXXX)
chmod 755 "$TEST_WORK"
# A copy of the tests that the postgres OS user can read, whatever the clone's permissions.
mkdir -p "$TEST_WORK/src"
cp -r "$PROJECT_ROOT/sql" "$PROJECT_ROOT/expected" "$PROJECT_ROOT/test" "$TEST_WORK/src/" 2>/dev/null
cp -r "$PROJECT_ROOT/../shared/reference-data" "$TEST_WORK/src/reference-data" 2>/dev/null || true
cluster_chown "$TEST_WORK"

PGPORT=$(cluster_free_port 55432)
PGDATA="$TEST_WORK/data"
export PROJECT_ROOT TEST_WORK PGPORT PGDATA
export PGHOST="$TEST_WORK" PGUSER=postgres PGDATABASE=postgres
export TEST_SRC="$TEST_WORK/src"

echo "== make test: cluster in $PGDATA on port $PGPORT"
cluster_init "$PGDATA" "$PGPORT" "$TEST_WORK" "saas_test" || { echo "0 passed, 1 failed"; exit 1; }
trap 'cluster_stop "$PGDATA"; [ -n "${KEEP_TEST_WORK:-}" ] || rm -rf "$TEST_WORK"' EXIT
cluster_start_on_free_port "$PGDATA" "$TEST_WORK/postgres.log" || { echo "0 passed, 1 failed"; exit 1; }
PGPORT=$CLUSTER_PORT
# The worker's database (saas.database) exists, without the extension: the worker waits quietly.
psql -X -q -d postgres -c "CREATE DATABASE saas_test" >/dev/null

total_pass=0
total_fail=0
summary=()
for suite in "$PROJECT_ROOT"/test/suites/*.sh; do
	name=$(basename "$suite" .sh)
	if [ -n "${SUITES:-}" ] && ! [[ ",$SUITES," == *",$name,"* ]]; then continue; fi
	echo
	echo "== suite $name"
	out="$TEST_WORK/suite-$name.out"
	start=$(date +%s)
	bash "$suite" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^passed=[0-9]+ failed=[0-9]+$' "$out" | tail -1)
	if [ -z "$line" ]; then
		p=0; f=1
		echo "suite $name ended without a result line (exit $rc): counted as one failure"
	else
		p=$(echo "$line" | sed -E 's/passed=([0-9]+) failed=([0-9]+)/\1/')
		f=$(echo "$line" | sed -E 's/passed=([0-9]+) failed=([0-9]+)/\2/')
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "suite $name exited $rc: counted as one failure"; fi
	fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	summary+=("$(printf '%-22s %4d passed %4d failed  %4ds' "$name" "$p" "$f" $(( $(date +%s) - start )))")
	# A suite that could not run says so on a line "SKIPPED: why" (it counts nothing): repeated here.
	skipped=$(grep -E '^SKIPPED: ' "$out" | head -1)
	[ -z "$skipped" ] || summary+=("  $skipped")
done

if ! cluster_alive "$PGDATA"; then
	echo "PostgreSQL is no longer running at the end of the suites"
	total_fail=$((total_fail + 1))
fi
if grep -qE 'server process .* was terminated by signal|PANIC' "$TEST_WORK/postgres.log"; then
	echo "the server log shows a crashed backend:"
	grep -E 'terminated by signal|PANIC' "$TEST_WORK/postgres.log" | head -5
	total_fail=$((total_fail + 1))
fi

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
