# Helpers shared by the suites in test/suites/ (sourced; the runner only runs
# test/suites/*.sh, not this folder).

# psql_admin ARGS...: psql as the cluster's owner, quiet, stopping at the first error.
psql_admin() {
	psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"
}

# saas_create_sql: the SQL that creates pg_saas, at SAAS_UPGRADE_FROM then upgraded if set.
saas_create_sql() {
	if [ -n "${SAAS_UPGRADE_FROM:-}" ]; then
		echo "CREATE EXTENSION pg_saas VERSION '$SAAS_UPGRADE_FROM'; ALTER EXTENSION pg_saas UPDATE;"
	else
		echo "CREATE EXTENSION pg_saas;"
	fi
}

# fail_setup MSG: the suite could not even start; one failure.
fail_setup() {
	echo "not ok - setup: $1"
	echo "passed=0 failed=1"
	exit 1
}

# fresh_saas_db DB [EXTENSION...]: DB dropped and made again, with the given
# extensions and pg_saas, and the application login role "app" (a member of
# saas_api). With SAAS_UPGRADE_FROM=VERSION, pg_saas is created at that
# version and upgraded (ALTER EXTENSION pg_saas UPDATE): the suites then run
# against upgraded databases (docs/operations.md).
fresh_saas_db() {
	local db=$1
	shift
	local ext sql="SET client_min_messages = warning;"
	for ext in "$@"; do
		sql="$sql CREATE EXTENSION $ext;"
	done
	sql="$sql $(saas_create_sql)"
	psql_admin -d postgres -c "SET client_min_messages = warning" \
		-c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" &&
		psql_admin -d "$db" -c "$sql" -c "
DO \$\$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app') THEN
		CREATE ROLE app LOGIN;
	END IF;
END
\$\$;" -c "GRANT saas_api TO app"
}
