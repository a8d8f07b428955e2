#!/usr/bin/env bash
# Suite 70_e2e: saas-http in front of the REAL pg_saas router, over real HTTP.
#
# Creates the database e2e_test with CREATE EXTENSION pg_saas, a login role for the relay granted
# saas_api, a super_admin, and runs test/e2e/test_e2e.py: every route of API.md's table that the
# router serves (success and every error status), tenant isolation through HTTP, request ids,
# ETag/If-Match, pagination, rate limiting (429), signed webhooks, and a barrage of malformed
# requests. The relay is the AddressSanitizer/UBSan build, shim/saas-http-asan; a sanitizer
# report fails the suite, and so does a crashed backend in the server log.
#
# Environment (from test/run_all.sh): PROJECT_ROOT, TEST_WORK, PGHOST, PGPORT, PGUSER.
# Ends with "passed=N failed=M".
set -uo pipefail

: "${PROJECT_ROOT:?}" "${TEST_WORK:?}" "${PGHOST:?}" "${PGPORT:?}"
export PGUSER=${PGUSER:-postgres}
E2E_WORK="$TEST_WORK/e2e"
E2E_DB=e2e_test
E2E_ROLE=e2e_relay_login
mkdir -p "$E2E_WORK"

source "$PROJECT_ROOT/test/suites/lib/common.sh"
# The suites' Python library (test/suites/lib/saas_test.py); no bytecode written into the tree.
export PYTHONPATH="$PROJECT_ROOT/test/suites/lib${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1

make --no-print-directory -C "$PROJECT_ROOT" shim/saas-http-asan >"$E2E_WORK/build.log" 2>&1 ||
	{ tail -20 "$E2E_WORK/build.log"; fail_setup "cannot build shim/saas-http-asan"; }

# Relays the test program started (pids it recorded), if it dies abruptly: checked to still be
# saas-http before the signal.
stop_leftovers() {
	local pid
	for pid in $(cat "$E2E_WORK/relay.pids" 2>/dev/null); do
		if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q saas-http; then
			kill -TERM "$pid" 2>/dev/null
		fi
	done
}

cleanup() {
	stop_leftovers
	psql_admin -d postgres -c "DROP DATABASE IF EXISTS $E2E_DB WITH (FORCE)" >/dev/null 2>&1
	psql_admin -d postgres -c "DROP ROLE IF EXISTS $E2E_ROLE" >/dev/null 2>&1
}
cleanup
rm -f "$E2E_WORK/relay.pids"
trap cleanup EXIT

# The database and its relay role. saas.max_body_bytes is lowered to 64 KiB for this database
# (below the relay's --max-body of 1 MiB) so that both 413s, the router's and the relay's, are
# reachable; SSO may call identity providers on loopback ports (saas.sso_allowed_origins).
psql_admin -d postgres >/dev/null <<SQL || fail_setup "cannot create $E2E_DB with pg_saas, $E2E_ROLE and a super_admin"
CREATE DATABASE $E2E_DB;
ALTER DATABASE $E2E_DB SET saas.max_body_bytes = '64kB';
-- SSO may call the simulated identity provider the cases start on a loopback port.
ALTER DATABASE $E2E_DB SET saas.sso_allowed_origins = 'http://127.0.0.1:*';
\c $E2E_DB
SET client_min_messages = warning;
$(saas_create_sql)
CREATE ROLE $E2E_ROLE LOGIN IN ROLE saas_api;
SELECT saas.create_super_admin('root@platform.test', 'platform root password');
SQL

export E2E_RELAY_BIN="$PROJECT_ROOT/shim/saas-http-asan"
export E2E_WORK E2E_DB
export E2E_DSN="host=$PGHOST port=$PGPORT dbname=$E2E_DB user=$E2E_ROLE"
export E2E_PGLOG="$TEST_WORK/postgres.log"
# Only what the server logs from now on is this suite's.
export E2E_PGLOG_OFFSET=$(stat -c %s "$E2E_PGLOG" 2>/dev/null || echo 0)

timeout 600 python3 "$PROJECT_ROOT/test/e2e/test_e2e.py"
