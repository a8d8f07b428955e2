#!/usr/bin/env bash
# Suite 05_symbols: what pg_saas.so exports. PostgreSQL loads the library with
# RTLD_GLOBAL, so every exported symbol joins the server's namespace: only
# what the server looks up may be exported (src/pg_saas.h explains how):
# Pg_magic_func, _PG_init, the V1 functions and their pg_finfo_ records, and
# the worker's entry point, all of them prefixed saas_.
set -uo pipefail
: "${PROJECT_ROOT:?run through test/run_all.sh}"

lib="$(pg_config --pkglibdir)/pg_saas.so"
pass=0
fail=0
check() {	# check NAME OK(0/1) [DETAIL]
	if [ "$2" -eq 1 ]; then pass=$((pass + 1)); echo "ok - $1"
	else fail=$((fail + 1)); echo "not ok - $1"; [ -n "${3:-}" ] && echo "$3" | sed 's/^/#   /'; fi
}
if [ ! -f "$lib" ] || ! command -v nm >/dev/null; then
	echo "not ok - setup: $lib or nm is missing"; echo "passed=0 failed=1"; exit 1
fi

syms=$(nm -D --defined-only "$lib" | awk '{print $3}' | sort)
stray=$(echo "$syms" | grep -vE '^(saas_[A-Za-z0-9_]+|pg_finfo_saas_[A-Za-z0-9_]+|Pg_magic_func|_PG_init)$')
check "only saas_*, pg_finfo_saas_*, Pg_magic_func and _PG_init are exported" \
	"$([ -z "$stray" ] && echo 1 || echo 0)" "$stray"

# Every C function an install or upgrade script names is exported with its pg_finfo_ record
# (grep -q reads a here-string: fed by a pipe, its early exit could kill echo with SIGPIPE, which
# pipefail turns into a "missing" function now and then):
# this version's and every kept release's (one pg_saas.so serves them all, docs/operations.md).
scripts=$(ls "$(pg_config --sharedir)"/extension/pg_saas--*.sql)
missing=""
for f in $(cat $scripts | grep -oE "'MODULE_PATHNAME', *'[a-z_0-9]+'" | sed -E "s/.*'([a-z_0-9]+)'$/\1/" | sort -u); do
	grep -qx "$f" <<<"$syms" || missing="$missing $f"
	grep -qx "pg_finfo_$f" <<<"$syms" || missing="$missing pg_finfo_$f"
done
check "every C function of the install and upgrade scripts ($(echo $scripts | wc -w) of them) is exported with its pg_finfo_ record" \
	"$([ -z "$missing" ] && echo 1 || echo 0)" "$missing"
check "the worker's entry point saas_worker_main is exported" \
	"$(grep -qx saas_worker_main <<<"$syms" && echo 1 || echo 0)"
# Nothing else of the worker's or the subsystems' internals (wk_*, cb_*, audit_*).
internal=$(echo "$syms" | grep -E '^(wk_|wm_|cb_|audit_|rl_)')
check "no internal helper is exported" "$([ -z "$internal" ] && echo 1 || echo 0)" "$internal"

echo "passed=$pass failed=$fail"
