#!/usr/bin/env bash
# Suite 50_sim: saas-sim, the simulated external services (issue 3).
# Runs test/sim/run.py against the ASan/UBSan build; each test case is one pass or
# failure, and the suite ends with "passed=N failed=M". Nothing is built here (make test builds).
set -uo pipefail

PROJECT_ROOT=${PROJECT_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
export PROJECT_ROOT
# The suites' Python library (test/suites/lib/saas_test.py); no bytecode written into the tree.
export PYTHONPATH="$PROJECT_ROOT/test/suites/lib${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

bin="$PROJECT_ROOT/sim/saas-sim-asan"
if [ ! -x "$bin" ]; then
	echo "not ok - $bin is missing: build it with make (sim/sim.mk)"
	echo "passed=0 failed=1"
	exit 1
fi

# A hung test must not hang make test: the whole suite gets 5 minutes.
timeout --kill-after=10 300 python3 "$PROJECT_ROOT/test/sim/run.py" "$bin" "$@"
rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	echo "not ok - the sim suite timed out"
	echo "passed=0 failed=1"
fi
exit "$rc"
