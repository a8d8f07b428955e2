#!/usr/bin/env bash
# pgTAP suites: every test/pgtap/*.sql, each in a fresh database of its own
# (saas_pgtap_<file>) with pgtap, pgcrypto, dblink and pg_saas, plus the
# application login role "app" (a member of saas_api). Each assertion is one
# test: "ok" passes, "not ok" fails (a "not ok ... # TODO" is an expected
# failure and passes); a file whose plan does not match the assertions it ran,
# or whose psql exits non-zero, counts one failure more.
#
# Run one file: PGTAP_FILES=policies SUITES=20_pgtap bash test/run_all.sh
# (PGTAP_FILES is a comma-separated list of file names without .sql).
set -uo pipefail
: "${TEST_WORK:?run through test/run_all.sh}"

src="$TEST_SRC/test/pgtap"
out="$TEST_WORK/pgtap"
mkdir -p "$out"
chown postgres "$out" 2>/dev/null || true

files=$(cd "$src" 2>/dev/null && ls *.sql 2>/dev/null | sed 's/\.sql$//' | sort)
if [ -n "${PGTAP_FILES:-}" ]; then
	files=$(for f in $files; do [[ ",$PGTAP_FILES," == *",$f,"* ]] && echo "$f"; done)
fi
if [ -z "$files" ]; then echo "no pgTAP files in $src"; echo "passed=0 failed=1"; exit 1; fi

source "$PROJECT_ROOT/test/suites/lib/common.sh"

# make_db DB: a fresh database with the extensions, and the role app.
make_db() {
	fresh_saas_db "$1" pgtap pgcrypto dblink
}

pass=0
fail=0
failures=()
for name in $files; do
	db="saas_pgtap_$(echo "$name" | tr -c 'a-z0-9_\n' '_')"
	tap="$out/$name.tap"
	err="$out/$name.err"
	echo "-- $name.sql (database $db)"
	if ! make_db "$db" >"$err" 2>&1; then
		cat "$err"
		fail=$((fail + 1))
		failures+=("$name: could not create database $db with its extensions")
		continue
	fi
	start=$(date +%s)
	# The same psql settings pg_prove uses: bare TAP on stdout.
	psql -X -q -At --pset pager=off -v ON_ERROR_STOP=1 -d "$db" -f "$src/$name.sql" >"$tap" 2>"$err"
	rc=$?
	grep -vE '^$' "$tap"
	if [ -s "$err" ]; then sed 's/^/stderr: /' "$err"; fi

	planned=$(grep -m1 -oE '^1\.\.[0-9]+' "$tap" | sed 's/^1\.\.//')
	ok=$(grep -cE '^ok [0-9]+' "$tap")
	todo=$(grep -cE '^not ok [0-9]+.*# *TODO' "$tap")
	notok=$(( $(grep -cE '^not ok [0-9]+' "$tap") - todo ))
	ran=$((ok + todo + notok))
	pass=$((pass + ok + todo))
	fail=$((fail + notok))
	while IFS= read -r line; do
		failures+=("$name: $line")
	done < <(grep -E '^not ok [0-9]+' "$tap" | grep -vE '# *TODO')
	if [ -z "$planned" ]; then
		fail=$((fail + 1))
		failures+=("$name: no plan (1..N) printed; ran $ran assertions")
	elif [ "$ran" -ne "$planned" ]; then
		fail=$((fail + 1))
		failures+=("$name: planned $planned assertions but ran $ran")
	elif [ "$rc" -ne 0 ]; then
		fail=$((fail + 1))
		failures+=("$name: psql exited $rc")
	fi
	echo "-- $name.sql: $ok ok, $notok not ok, planned ${planned:-none}, psql exit $rc, $(( $(date +%s) - start ))s"
done

if [ "${#failures[@]}" -gt 0 ]; then
	echo
	echo "---- pgTAP failures (details with the '# Failed test' lines above)"
	printf '  %s\n' "${failures[@]}"
fi
echo "passed=$pass failed=$fail"
