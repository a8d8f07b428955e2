# Part of test/suites/80_citus.sh (sourced): the end-to-end HTTP suite (test/e2e/test_e2e.py,
# the same cases as suite 70_e2e) against the Citus coordinator, through the relay (the
# AddressSanitizer build) over real sockets, in a database of its own (e2e_citus: Citus keeps
# its node metadata per database) made the way docs/scale-out.md says: Citus on every node, the
# workers added, CREATE EXTENSION pg_saas, saas.distribute(). Its cases count in this suite's
# totals, each as one test. A crashed backend in any node's log fails it.

E2E_CITUS_DB=e2e_citus

if ! make --no-print-directory -C "$PROJECT_ROOT" shim/saas-http-asan >"$CITUS_WORK/e2e-build.log" 2>&1; then
	not_ok "the end-to-end suite on the coordinator: cannot build shim/saas-http-asan" "$(tail -5 "$CITUS_WORK/e2e-build.log")"
elif ! citus_saas_db "$E2E_CITUS_DB" "ALTER DATABASE $E2E_CITUS_DB SET saas.max_body_bytes = '64kB';
ALTER DATABASE $E2E_CITUS_DB SET saas.sso_allowed_origins = 'http://127.0.0.1:*';
CREATE ROLE e2e_citus_relay LOGIN IN ROLE saas_api;
SELECT saas.create_super_admin('root@platform.test', 'platform root password');"; then
	not_ok "the end-to-end suite on the coordinator: cannot make $E2E_CITUS_DB (Citus, pg_saas, distribute)"
else
	mkdir -p "$CITUS_WORK/e2e"
	offset=$(stat -c %s "$CITUS_DIR/coord.log")
	out="$CITUS_WORK/e2e/test_e2e.out"
	PYTHONPATH="$PROJECT_ROOT/test/suites/lib" PYTHONDONTWRITEBYTECODE=1 \
		PGHOST="$CITUS_DIR" PGPORT="${CITUS_PORTS[0]}" E2E_RELAY_BIN="$PROJECT_ROOT/shim/saas-http-asan" \
		E2E_WORK="$CITUS_WORK/e2e" E2E_DB="$E2E_CITUS_DB" E2E_PGLOG="$CITUS_DIR/coord.log" E2E_PGLOG_OFFSET="$offset" \
		E2E_DSN="host=$CITUS_DIR port=${CITUS_PORTS[0]} dbname=$E2E_CITUS_DB user=e2e_citus_relay" \
		E2E_KNOWN_BUGS_FILE="$PROJECT_ROOT/test/suites/citus/e2e_known.txt" \
		timeout 900 python3 "$PROJECT_ROOT/test/e2e/test_e2e.py" >"$out" 2>&1
	# Its cases as this suite's tests, with their names; then the totals it printed.
	sed -nE 's/^(ok|not ok) - /\1 - e2e on Citus: /p; /^#/p; /^    /p' "$out"
	e2e_pass=$(sed -nE 's/^passed=([0-9]+) failed=([0-9]+)$/\1/p' "$out")
	e2e_fail=$(sed -nE 's/^passed=([0-9]+) failed=([0-9]+)$/\2/p' "$out")
	if [ -z "$e2e_pass" ]; then
		not_ok "the end-to-end suite on the coordinator ended without its totals" "$(tail -20 "$out")"
	else
		pass=$((pass + e2e_pass))
		fail=$((fail + e2e_fail))
	fi
	for node in worker1 worker2; do
		if grep -qE 'terminated by signal|PANIC|TRAP:' "$CITUS_DIR/$node.log"; then
			not_ok "$node's log shows no crashed backend after the end-to-end suite" \
				"$(grep -E 'terminated by signal|PANIC|TRAP:' "$CITUS_DIR/$node.log" | head -3)"
		else
			ok "$node's log shows no crashed backend after the end-to-end suite"
		fi
	done
fi
