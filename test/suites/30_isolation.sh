#!/usr/bin/env bash
# Isolation specs: test/isolation/specs/*.spec against test/isolation/expected/*.out,
# run by PostgreSQL's isolation tester (pg_isolation_regress --use-existing) in
# the database saas_isolation, made here with pg_saas and the application
# login role "app" (a member of saas_api). One test per spec.
#
# Run one spec: ISOLATION_SPECS=register_same_email SUITES=30_isolation bash test/run_all.sh
# (ISOLATION_SPECS is a comma-separated list of spec names without .spec).
set -uo pipefail
: "${TEST_WORK:?run through test/run_all.sh}"

PGXS_DIR=$(dirname "$(pg_config --pgxs)")/..
ISOLATION="$PGXS_DIR/test/isolation/pg_isolation_regress"
src="$TEST_SRC/test/isolation"
out="$TEST_WORK/isolation"
db=saas_isolation

specs=$(cd "$src/specs" 2>/dev/null && ls *.spec 2>/dev/null | sed 's/\.spec$//' | sort)
if [ -n "${ISOLATION_SPECS:-}" ]; then
	specs=$(for s in $specs; do [[ ",$ISOLATION_SPECS," == *",$s,"* ]] && echo "$s"; done)
fi
if [ -z "$specs" ]; then echo "no isolation specs in $src/specs"; echo "passed=0 failed=1"; exit 1; fi
total=$(echo "$specs" | wc -l)
if [ ! -x "$ISOLATION" ]; then echo "pg_isolation_regress not found at $ISOLATION"; echo "passed=0 failed=$total"; exit 1; fi

mkdir -p "$out"
chown postgres "$out" 2>/dev/null || true
cd "$out" || exit 1

# --use-existing neither drops nor creates the database: make it here.
source "$PROJECT_ROOT/test/suites/lib/common.sh"
fresh_saas_db "$db" >/dev/null || { echo "could not prepare database $db"; echo "passed=0 failed=$total"; exit 1; }

"$ISOLATION" --use-existing --host="$PGHOST" --port="$PGPORT" --user=postgres \
	--inputdir="$src" --outputdir="$out" --dbname="$db" \
	$specs 2>&1 | tee "$out/isolation.out"
rc=${PIPESTATUS[0]}

pass=$(grep -cE '^test .* \.\.\. ok' "$out/isolation.out")
fail=$(grep -cE '^test .* \.\.\. (FAILED|failed)' "$out/isolation.out")
if [ $((pass + fail)) -lt "$total" ]; then
	echo "only $((pass + fail)) of $total specs reported a result: the rest count as failures"
	fail=$((total - pass))
fi
if [ "$fail" -gt 0 ] && [ -f "$out/regression.diffs" ]; then
	echo "---- regression.diffs (first 300 lines; '-' expected, '+' actual)"
	head -300 "$out/regression.diffs"
fi
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; echo "pg_isolation_regress exited $rc"; fi
echo "passed=$pass failed=$fail"
