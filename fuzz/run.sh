#!/usr/bin/env bash
# fuzz/run.sh SECONDS TARGET...: run each built libFuzzer target (fuzz/bin/fuzz_TARGET) for
# SECONDS on a scratch copy of its seed corpus (fuzz/corpus/TARGET/ is only read), and print
# one line per target: "fuzz TARGET: ok N executions in S s (R/s)" or "fuzz TARGET: FAILED ...".
# A crash leaves its input and the fuzzer's log in the scratch folder, which is then kept.
# Exit status: the number of targets that failed (0: all ran clean).
set -uo pipefail
secs=${1:?seconds}; shift
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/pg_saas_fuzz.XXXXXX)
# the simulator's target starts its services from the reference data when it is found
for d in "$root/../shared/reference-data" "$root/../../shared/reference-data" "${TEST_SRC:-/nonexistent}/reference-data"; do
	if [ -z "${SAAS_FUZZ_SEED_DATA:-}" ] && [ -r "$d/platform_data.json" ]; then
		export SAAS_FUZZ_SEED_DATA="$d/platform_data.json"
	fi
done
failed=0
for t in "$@"; do
	bin="$root/fuzz/bin/fuzz_$t"
	mkdir -p "$work/$t/corpus"
	if [ ! -x "$bin" ]; then
		echo "fuzz $t: FAILED (not built: $bin)"; failed=$((failed + 1)); continue
	fi
	seeds=()
	[ -d "$root/fuzz/corpus/$t" ] && seeds=("$root/fuzz/corpus/$t")
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
		"$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
		-max_len=65536 -artifact_prefix="$work/$t/" "$work/$t/corpus" "${seeds[@]}" \
		>"$work/$t/log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log" | tail -1)
	took=$(sed -n 's/^stat::.*//; s/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$work/$t/log" | tail -1)
	took=${took:-$secs}
	if [ "$rc" -eq 0 ] && [ -n "$execs" ]; then
		echo "fuzz $t: ok ${execs} executions in ${took}s ($(( execs / (took > 0 ? took : 1) ))/s)"
	else
		failed=$((failed + 1))
		echo "fuzz $t: FAILED (exit $rc); input and log kept in $work/$t/"
		grep -E "ERROR:|SUMMARY:|runtime error|abort|deadly signal" "$work/$t/log" | head -5 | sed 's/^/    /'
	fi
done
[ "$failed" -eq 0 ] && rm -rf "$work"
exit "$failed"
