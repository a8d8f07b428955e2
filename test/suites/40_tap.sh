#!/usr/bin/env bash
# Process-level tests: test/tap/NNN_*.pl with PostgreSQL's TAP framework
# (PostgreSQL::Test::Cluster), run by prove. Each test makes its own cluster
# with pg_saas preloaded and the worker serving "postgres", starts saas-sim
# (and saas-http when it needs inbound webhooks) on free ports, and kills,
# stops or breaks things: the worker, the server, a service.
#
# initdb refuses root: as root, prove runs as the postgres OS user, in a work
# folder that user owns, on a copy of the tests and of the programs.
# Every "ok" line counts as passed and every "not ok" as failed; a test that
# dies, or ends with a bad plan, adds one failure.
#
# Run one test: TAP_TESTS=020_worker_kill SUITES=40_tap bash test/run_all.sh
# (TAP_TESTS is a comma-separated list of file names without .pl).
set -uo pipefail
: "${TEST_WORK:?run through test/run_all.sh}"
: "${PROJECT_ROOT:?run through test/run_all.sh}"
TEST_SRC=${TEST_SRC:-$PROJECT_ROOT}

PG_BINDIR=$(pg_config --bindir)
PGXS_DIR=$(dirname "$(pg_config --pgxs)")/..
PERL_LIB="$PGXS_DIR/test/perl"
PG_REGRESS="$PGXS_DIR/test/regress/pg_regress"
work="$TEST_WORK/tap"
per_test_timeout=${TAP_TIMEOUT:-300}

if [ ! -f "$PERL_LIB/PostgreSQL/Test/Cluster.pm" ]; then
	echo "PostgreSQL's TAP modules are not in $PERL_LIB (postgresql-server-dev-15)"
	echo "passed=0 failed=1"; exit 1
fi
if ! command -v prove >/dev/null || ! perl -MIPC::Run -e1 2>/dev/null; then
	echo "prove and IPC::Run are needed (perl, libipc-run-perl)"
	echo "passed=0 failed=1"; exit 1
fi

rm -rf "$work"
mkdir -p "$work/t" "$work/bin"
cp "$TEST_SRC"/test/tap/*.pl "$work/t/" 2>/dev/null
missing=""
for prog in sim/saas-sim shim/saas-http; do
	if [ -x "$PROJECT_ROOT/$prog" ]; then
		cp "$PROJECT_ROOT/$prog" "$work/bin/"
	else
		missing="$missing $prog"
	fi
done
if [ -n "$missing" ]; then
	echo "programs not built:$missing (make all)"
	echo "passed=0 failed=1"; exit 1
fi
seed=""
for f in "$TEST_SRC/reference-data/platform_data.json" "$PROJECT_ROOT/../shared/reference-data/platform_data.json"; do
	if [ -r "$f" ]; then cp "$f" "$work/platform_data.json"; seed="$work/platform_data.json"; break; fi
done
chmod -R a+rX "$work"
if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$work"; fi

tests=$(cd "$work/t" && ls [0-9][0-9][0-9]_*.pl 2>/dev/null | sed 's/\.pl$//' | sort)
if [ -n "${TAP_TESTS:-}" ]; then
	tests=$(for t in $tests; do [[ ",$TAP_TESTS," == *",$t,"* ]] && echo "$t"; done)
fi
if [ -z "$tests" ]; then echo "no TAP tests in $TEST_SRC/test/tap"; echo "passed=0 failed=1"; exit 1; fi

run_as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pass=0
fail=0
for t in $tests; do
	out="$work/$t.out"
	echo "-- $t"
	start=$(date +%s)
	mkdir -p "$work/run_$t"
	if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$work/run_$t"; fi
	(cd "$work" && run_as_pg env -u PGHOST -u PGPORT -u PGDATA -u PGDATABASE -u PGUSER \
		PATH="$PG_BINDIR:$PATH" PG_REGRESS="$PG_REGRESS" TESTDIR="$work/run_$t" \
		SAAS_SIM="$work/bin/saas-sim" SAAS_HTTP="$work/bin/saas-http" SAAS_SEED_DATA="$seed" \
		timeout -k 10 "$per_test_timeout" prove -v -I "$PERL_LIB" -I "$work/t" "t/$t.pl") >"$out" 2>&1
	rc=$?
	p=$(grep -cE '^ok [0-9]+' "$out")
	f=$(grep -cE '^not ok [0-9]+' "$out")
	grep -E '^(not )?ok [0-9]+|^# ' "$out" | sed 's/^/   /'
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "   $t exited $rc without a failed test (died, timed out or bad plan): counted as one failure"
		tail -15 "$out" | sed 's/^/   | /'
	fi
	if [ "$f" -gt 0 ]; then
		# The server and program logs of the failed test, for the reader.
		for l in "$work/run_$t"/tmp_check/log/*.log "$work/run_$t"/tmp_check/*.log; do
			[ -f "$l" ] || continue
			echo "   ---- tail of $(basename "$l")"
			grep -vE 'LOG:  statement:' "$l" | tail -25 | sed 's/^/   | /'
		done
	fi
	echo "   $t: $p passed, $f failed, $(( $(date +%s) - start ))s"
	pass=$((pass + p))
	fail=$((fail + f))
done
echo "passed=$pass failed=$fail"
