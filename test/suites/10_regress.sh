#!/usr/bin/env bash
# pg_regress suites: sql/*.sql against expected/*.out, one test per capability,
# in a database made for the run with pg_saas loaded.
set -uo pipefail
: "${TEST_WORK:?run through test/run_all.sh}"

PGXS_DIR=$(dirname "$(pg_config --pgxs)")/..
REGRESS="$PGXS_DIR/test/regress/pg_regress"
tests=$(cd "$TEST_SRC/sql" && ls *.sql 2>/dev/null | sed 's/\.sql$//' | sort | tr '\n' ' ')
if [ -z "$tests" ]; then echo "no regress tests"; echo "passed=0 failed=1"; exit 1; fi

out="$TEST_WORK/regress"
mkdir -p "$out"
chown postgres "$out" 2>/dev/null || true
cd "$out" || exit 1
# --use-existing does not create the database: make it, with the extension.
source "$PROJECT_ROOT/test/suites/lib/common.sh"
fresh_saas_db saas_regress >/dev/null || fail_setup "cannot create saas_regress with pg_saas"
"$REGRESS" --use-existing --host="$PGHOST" --port="$PGPORT" --user=postgres \
	--inputdir="$TEST_SRC" --outputdir="$out" --dbname=saas_regress \
	$tests 2>&1 | tee "$out/pg_regress.out"
rc=${PIPESTATUS[0]}

pass=$(grep -cE '\.\.\. ok' "$out/pg_regress.out")
fail=$(grep -cE '\.\.\. FAILED|\.\.\. failed' "$out/pg_regress.out")
if [ "$fail" -gt 0 ] && [ -f "$out/regression.diffs" ]; then
	echo "---- regression.diffs (first 200 lines)"
	head -200 "$out/regression.diffs"
fi
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; echo "pg_regress exited $rc"; fi
echo "passed=$pass failed=$fail"
