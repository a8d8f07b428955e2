#!/usr/bin/env bash
# Suite 65_run: make run (Makefile + scripts/run.sh) as a developer meets it, on ports chosen at
# run time in a folder of the suite's own: the build prints progress, not compiler commands; the
# integrations follow the simulator's ports; the walk through and the HTTP tour it prints work as
# printed; Ctrl-C with the output piped stops everything; a taken port, a program that fails to
# start and the leftovers of a killed run are each explained (test/run/test_run.py).
#
# Environment (from test/run_all.sh): PROJECT_ROOT, TEST_WORK. Ends with "passed=N failed=M".
set -uo pipefail

: "${PROJECT_ROOT:?}" "${TEST_WORK:?}"
RUN_WORK="$TEST_WORK/run"
mkdir -p "$RUN_WORK"

source "$PROJECT_ROOT/test/suites/lib/common.sh"
source "$PROJECT_ROOT/scripts/cluster.sh"
export PYTHONPATH="$PROJECT_ROOT/test/suites/lib${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1

# If the test program dies abruptly: what make run left (its own record, checked to still be
# its programs), then its cluster.
cleanup() {
	local pid name
	while read -r pid name; do
		if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
			tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "${name%.sh}"; then
			kill -TERM "$pid" 2>/dev/null
		fi
	done < <(cat "$RUN_WORK"/dir/run.pids 2>/dev/null)
	cluster_stop "$RUN_WORK/dir/data"
}
trap cleanup EXIT
cluster_chown "$RUN_WORK"

export RUN_WORK
python3 "$PROJECT_ROOT/test/run/test_run.py"
