#!/usr/bin/env bash
# Suite 15_fuzz: every libFuzzer target of fuzz/ (fuzz/fuzz.mk) for a smoke run of
# FUZZ_SMOKE_SECONDS (default 3) each, starting from its seed corpus fuzz/corpus/<target>/, which
# also holds the inputs of crashes found and fixed: they are replayed first, as regression tests.
# One pass per target that built and ran without a crash; ends with "passed=N failed=M".
# Without clang (Debian: clang, libclang-rt-dev; scripts/deps.sh) the suite fails: it does not
# pass by running nothing.  `make fuzz` runs the same targets longer (FUZZ_SECONDS).
set -uo pipefail

PROJECT_ROOT=${PROJECT_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
secs=${FUZZ_SMOKE_SECONDS:-3}
log=$(mktemp /tmp/pg_saas_fuzz_build.XXXXXX)
trap 'rm -f "$log"' EXIT

if ! command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1; then
	echo "not ok - clang is missing: the fuzz targets cannot be built (scripts/deps.sh installs it)"
	echo "passed=0 failed=1"
	exit 1
fi
targets=$(make --no-print-directory -s -C "$PROJECT_ROOT" fuzz-targets)
if [ -z "$targets" ]; then
	echo "not ok - no fuzz targets listed by fuzz/fuzz.mk"
	echo "passed=0 failed=1"
	exit 1
fi

passed=0
failed=0
make --no-print-directory -s -C "$PROJECT_ROOT" -k fuzz-build >"$log" 2>&1
for t in $targets; do
	if [ ! -x "$PROJECT_ROOT/fuzz/bin/fuzz_$t" ]; then
		failed=$((failed + 1))
		echo "not ok - fuzz target $t does not build:"
		grep -E "error|Error" "$log" | head -5 | sed 's/^/    /'
		continue
	fi
	out=$(bash "$PROJECT_ROOT/fuzz/run.sh" "$secs" "$t")
	if [ $? -eq 0 ]; then
		passed=$((passed + 1))
		echo "ok - fuzz target $t runs ${secs}s from its corpus without a crash (${out#fuzz $t: ok })"
	else
		failed=$((failed + 1))
		echo "not ok - fuzz target $t: ${out#fuzz $t: }"
	fi
done
echo "passed=$passed failed=$failed"
[ "$failed" -eq 0 ]
