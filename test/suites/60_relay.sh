#!/usr/bin/env bash
# Suite 60_relay: saas-http, the HTTP relay, over real HTTP.
#
# The relay is tested against a stand-in for the extension's router (test/relay/stub.sql) in a
# database of its own, relay_test, without pg_saas: this suite checks the relay (forwarding,
# limits, timeouts, reconnection, metrics, shutdown), not the API behind it.  It runs the
# AddressSanitizer/UBSan build, shim/saas-http-asan, and fails on any sanitizer report.
#
# Environment (from test/run_all.sh): PROJECT_ROOT, TEST_WORK, PGHOST, PGPORT, PGUSER.
# Ends with "passed=N failed=M".
set -uo pipefail

: "${PROJECT_ROOT:?}" "${TEST_WORK:?}" "${PGHOST:?}" "${PGPORT:?}"
export PGUSER=${PGUSER:-postgres}
RELAY_WORK="$TEST_WORK/relay"
mkdir -p "$RELAY_WORK"

source "$PROJECT_ROOT/test/suites/lib/common.sh"
# The suites' Python library (test/suites/lib/saas_test.py); no bytecode written into the tree.
export PYTHONPATH="$PROJECT_ROOT/test/suites/lib${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1

# The sanitizer build is not part of "make all"; build it here (a no-op when up to date).
make --no-print-directory -C "$PROJECT_ROOT" shim/saas-http-asan >"$RELAY_WORK/build.log" 2>&1 ||
	{ tail -20 "$RELAY_WORK/build.log"; fail_setup "cannot build shim/saas-http-asan"; }

# Leftovers if the test program dies abruptly: its relays (pids it recorded, checked to still be
# saas-http before the signal) and the second cluster it may have started.
stop_leftovers() {
	local pid
	for pid in $(cat "$RELAY_WORK/relay.pids" 2>/dev/null); do
		if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q saas-http; then
			kill -TERM "$pid" 2>/dev/null
		fi
	done
	if [ -f "$RELAY_WORK/pg2/data/postmaster.pid" ]; then
		if [ "$(id -u)" -eq 0 ]; then
			runuser -u postgres -- "$(pg_config --bindir)/pg_ctl" -D "$RELAY_WORK/pg2/data" -m immediate stop >/dev/null 2>&1
		else
			"$(pg_config --bindir)/pg_ctl" -D "$RELAY_WORK/pg2/data" -m immediate stop >/dev/null 2>&1
		fi
	fi
}

cleanup() {
	stop_leftovers
	psql_admin -d postgres -c "DROP DATABASE IF EXISTS relay_test WITH (FORCE)" >/dev/null 2>&1
	psql_admin -d postgres -c "DROP ROLE IF EXISTS relay_test_login" >/dev/null 2>&1
	psql_admin -d postgres -c "DROP ROLE IF EXISTS relay_test_api" >/dev/null 2>&1
}
cleanup
rm -f "$RELAY_WORK/relay.pids"
trap cleanup EXIT

# The relay's login role is granted an API role, as saas_api is granted in production; these
# names are the suite's own so that it never touches the extension's roles.
psql_admin -d postgres -c "CREATE ROLE relay_test_api NOLOGIN" \
	-c "CREATE ROLE relay_test_login LOGIN IN ROLE relay_test_api" \
	-c "CREATE DATABASE relay_test" >/dev/null || fail_setup "cannot create the relay_test database and roles"
psql_admin -d relay_test -f "$PROJECT_ROOT/test/relay/stub.sql" >/dev/null ||
	fail_setup "cannot load test/relay/stub.sql"

export RELAY_BIN="$PROJECT_ROOT/shim/saas-http-asan"
export RELAY_WORK
export RELAY_DSN="host=$PGHOST port=$PGPORT dbname=relay_test user=relay_test_login"
export RELAY_STUB_SQL="$PROJECT_ROOT/test/relay/stub.sql"
export RELAY_API_MD="$PROJECT_ROOT/../shared/spec/API.md"
export RELAY_PG_BINDIR="$(pg_config --bindir)"

python3 "$PROJECT_ROOT/test/relay/test_relay.py"
