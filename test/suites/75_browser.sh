#!/usr/bin/env bash
# Suite 75_browser: the admin dashboard (/admin/) and the API page (/docs) in a real headless
# browser: Debian's Chromium driven through chromedriver's WebDriver protocol (plain HTTP from
# Python's standard library, test/browser/test_browser.py).
#
# The pages run against the real thing: pg_saas in the database the cluster's background worker
# serves (saas.database, here saas_test: the extension is created for the suite and dropped after
# it), the relay's AddressSanitizer build, and saas-sim for the services, so the jobs, the dead
# job retried from the page and the chart's calls are the worker's own. Screenshots of failed cases
# go to $TEST_WORK/browser/.
#
# Environment (from test/run_all.sh): PROJECT_ROOT, TEST_WORK, PGHOST, PGPORT, PGUSER.
# Ends with "passed=N failed=M".
set -uo pipefail

: "${PROJECT_ROOT:?}" "${TEST_WORK:?}" "${PGHOST:?}" "${PGPORT:?}"
export PGUSER=${PGUSER:-postgres}
BROWSER_WORK="$TEST_WORK/browser"
BROWSER_DB=saas_test			# the worker's database (scripts/cluster.sh)
BROWSER_ROLE=browser_relay_login
mkdir -p "$BROWSER_WORK"
chmod 777 "$BROWSER_WORK"

source "$PROJECT_ROOT/test/suites/lib/common.sh"
export PYTHONPATH="$PROJECT_ROOT/test/suites/lib${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1

for bin in chromium chromedriver; do
	command -v "$bin" >/dev/null || fail_setup "$bin is missing: bash scripts/deps.sh installs chromium and chromium-driver"
done
make --no-print-directory -C "$PROJECT_ROOT" shim/saas-http-asan sim/saas-sim >"$BROWSER_WORK/build.log" 2>&1 ||
	{ tail -20 "$BROWSER_WORK/build.log"; fail_setup "cannot build shim/saas-http-asan and sim/saas-sim"; }

# What the test program started (pids it recorded), if it dies abruptly: checked by name first.
stop_leftovers() {
	local pid
	for pid in $(cat "$BROWSER_WORK/children.pids" 2>/dev/null); do
		if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qE 'saas-http|saas-sim|chromedriver'; then
			kill -TERM "$pid" 2>/dev/null
		fi
	done
}

cleanup() {
	stop_leftovers
	psql_admin -d "$BROWSER_DB" -c "DROP EXTENSION IF EXISTS pg_saas CASCADE" >/dev/null 2>&1
	psql_admin -d postgres -c "DROP ROLE IF EXISTS $BROWSER_ROLE" >/dev/null 2>&1
}
cleanup
rm -f "$BROWSER_WORK/children.pids"
trap cleanup EXIT

psql_admin -d "$BROWSER_DB" >/dev/null <<SQL || fail_setup "cannot create pg_saas in $BROWSER_DB, $BROWSER_ROLE and a super_admin"
SET client_min_messages = warning;
CREATE EXTENSION pg_saas;
CREATE ROLE $BROWSER_ROLE LOGIN IN ROLE saas_api;
-- The relay's sessions may call the simulated identity provider (loopback, any port) for SSO.
ALTER ROLE $BROWSER_ROLE SET saas.sso_allowed_origins = 'http://127.0.0.1:*';
SELECT saas.create_super_admin('root@platform.test', 'platform root password');
-- One browser at one address signs in and out far more often than a person: the per-address
-- sign-in budget (which refused answers spend too) is raised for the suite, as 70_e2e does.
UPDATE saas.rate_limits SET requests_per_minute = 100000, burst = 10000
 WHERE scope IN ('auth_ip', 'auth_email', 'auth_refresh', 'token_ip');
SQL

export BROWSER_RELAY_BIN="$PROJECT_ROOT/shim/saas-http-asan"
export BROWSER_SIM_BIN="$PROJECT_ROOT/sim/saas-sim"
export BROWSER_WORK BROWSER_DB
export BROWSER_DSN="host=$PGHOST port=$PGPORT dbname=$BROWSER_DB user=$BROWSER_ROLE"

timeout 400 python3 "$PROJECT_ROOT/test/browser/test_browser.py"
rc=$?
if [ "$rc" -eq 124 ]; then
	echo "not ok - the browser suite timed out"
	echo "passed=0 failed=1"
fi
exit "$rc"
