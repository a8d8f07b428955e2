#!/usr/bin/env bash
# Suite 68_upgrade: ALTER EXTENSION pg_saas UPDATE from the previous release (docs/operations.md).
#
#   1. A database made with the previous release's install script (kept, frozen, in
#      extension/) and upgraded equals a fresh install of this version: every member object
#      (test/upgrade/snapshot.sh: tables, columns in order, defaults, constraints, indexes,
#      functions with bodies, settings and security, policies, triggers, RLS, comments,
#      grants, initial privileges, membership), the pg_extension_config_dump entries and the
#      seeded configuration rows. On a difference the diff is printed: what the upgrade
#      script (extension/upgrade/) misses.
#   2. The comparison finds what an upgrade could miss: each of a list of single changes,
#      made to a copy of the upgraded database, is reported.
#   3. A database filled through the API (test/upgrade/fill.sql) under the previous release
#      keeps its data, audit chains and tokens across the upgrade, has the same schema as a
#      fresh install, and then passes the pg_regress suite (sql/, expected/) run against it;
#      its dump (taken under the previous release) restores into this version.
#
# Environment (from test/run_all.sh): PROJECT_ROOT, TEST_WORK, TEST_SRC, PGHOST, PGPORT.
# Ends with "passed=N failed=M".
set -uo pipefail
: "${PROJECT_ROOT:?}" "${TEST_WORK:?}" "${PGHOST:?}" "${PGPORT:?}"
TEST_SRC=${TEST_SRC:-$PROJECT_ROOT}
source "$PROJECT_ROOT/test/suites/lib/common.sh"

PREV=$(sed -nE 's/^PREV_VERSION = (.*)$/\1/p' "$PROJECT_ROOT/Makefile")
THIS=$(sed -nE "s/^default_version = '(.*)'$/\1/p" "$PROJECT_ROOT/extension/pg_saas.control")
out="$TEST_WORK/upgrade"
mkdir -p "$out"
chown postgres "$out" 2>/dev/null || true
snap="$PROJECT_ROOT/test/upgrade/snapshot.sh"
pass=0
fail=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
not_ok() { echo "not ok - $1"; fail=$((fail + 1)); }
# check NAME CMD...: one test, passed when CMD succeeds.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}
q() { psql_admin -At -d "$@"; }

# make_db DB VERSION: DB dropped and made again with pg_saas VERSION.
make_db() {
	psql_admin -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" &&
		psql_admin -d "$1" -c "SET client_min_messages = error" \
			-c "CREATE EXTENSION pg_saas VERSION '$2'"
}
update_db() {
	psql_admin -d "$1" -c "SET client_min_messages = error" -c "ALTER EXTENSION pg_saas UPDATE"
}
cleanup() {
	for db in upg_fresh upg_empty upg_data upg_mutant upg_restored; do
		psql_admin -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
	done
}
trap cleanup EXIT

echo "# from $PREV to $THIS"
make_db upg_fresh "$THIS" >"$out/setup.log" 2>&1 || { cat "$out/setup.log"; fail_setup "CREATE EXTENSION pg_saas $THIS"; }
make_db upg_empty "$PREV" >>"$out/setup.log" 2>&1 || { cat "$out/setup.log"; fail_setup "CREATE EXTENSION pg_saas VERSION '$PREV'"; }
check "$PREV installs from its frozen script, with this pg_saas.so" \
	test "$(q upg_empty -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_saas'")" = "$PREV"
update_db upg_empty >>"$out/setup.log" 2>&1
check "ALTER EXTENSION pg_saas UPDATE takes $PREV to $THIS" \
	test "$(q upg_empty -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_saas'")" = "$THIS"

# 1. Upgraded == fresh.
"$snap" upg_fresh content >"$out/fresh.snap" 2>"$out/snap.err"
"$snap" upg_empty content >"$out/upgraded.snap" 2>>"$out/snap.err"
if [ -s "$out/snap.err" ] || [ ! -s "$out/fresh.snap" ]; then
	cat "$out/snap.err"
	not_ok "snapshots of both databases"
elif diff -u "$out/fresh.snap" "$out/upgraded.snap" >"$out/upgraded.diff"; then
	ok "$PREV upgraded equals a fresh $THIS: schema, privileges, membership, config dump entries, seeded rows"
else
	not_ok "$PREV upgraded equals a fresh $THIS (what the upgrade misses: - fresh, + upgraded)"
	head -80 "$out/upgraded.diff" | sed 's/^/#   /'
fi

# 2. Each change an upgrade could miss is found (the comparison can fail).
mutations=(
	"function body|CREATE OR REPLACE FUNCTION saas.platform_org_id() RETURNS uuid LANGUAGE sql IMMUTABLE AS \$\$ SELECT '00000000-0000-0000-0000-000000000001'::uuid \$\$"
	"function setting|ALTER FUNCTION saas.retire_signing_key(text) SET search_path = public"
	"function security|ALTER FUNCTION saas.rotate_signing_key() SECURITY INVOKER"
	"column added|ALTER TABLE saas.organizations ADD COLUMN note text"
	"column default|ALTER TABLE saas.users ALTER COLUMN role SET DEFAULT 'admin'"
	"constraint|ALTER TABLE saas.users DROP CONSTRAINT users_role_check"
	"index|DROP INDEX saas.users_email_idx"
	"policy|ALTER POLICY audit_log_read ON saas.audit_log USING (true)"
	"forced RLS|ALTER TABLE saas.jobs NO FORCE ROW LEVEL SECURITY"
	"trigger|DROP TRIGGER users_audit ON saas.users"
	"trigger state|ALTER TABLE saas.integrations ENABLE TRIGGER integrations_restore_merge"
	"grant|REVOKE SELECT ON saas.audit_log FROM saas_api"
	"function grant|GRANT EXECUTE ON FUNCTION saas.rotate_signing_key() TO saas_api"
	"membership|ALTER EXTENSION pg_saas DROP FUNCTION saas._rate_limit_bench(integer)"
	"config dump entry|UPDATE pg_extension SET extcondition[1] = 'WHERE false' WHERE extname = 'pg_saas'"
	"seeded row|UPDATE saas.rate_limits SET burst = burst + 1 WHERE tier = 'free' AND scope = 'user'"
	"seeded row deleted|DELETE FROM saas.integrations WHERE service = 'payment-service'"
)
missed=()
for m in "${mutations[@]}"; do
	what=${m%%|*}
	stmt=${m#*|}
	if ! psql_admin -d postgres -c "DROP DATABASE IF EXISTS upg_mutant" -c "CREATE DATABASE upg_mutant TEMPLATE upg_empty" >/dev/null 2>&1 ||
		! psql_admin -d upg_mutant -c "$stmt" >"$out/mutant.log" 2>&1; then
		missed+=("$what (could not apply: $(tail -1 "$out/mutant.log"))")
		continue
	fi
	if "$snap" upg_mutant content 2>/dev/null | diff -q "$out/upgraded.snap" - >/dev/null; then
		missed+=("$what")
	fi
done
if [ ${#missed[@]} -eq 0 ]; then
	ok "the comparison reports each of ${#mutations[@]} kinds of difference (body, setting, security, column, default, constraint, index, policy, RLS, trigger, grant, membership, config dump, seeded row)"
else
	not_ok "the comparison reports each kind of difference; not found: ${missed[*]}"
fi

# 3. Data made under the previous release survives the upgrade, and the suites pass on it.
make_db upg_data "$PREV" >>"$out/setup.log" 2>&1 &&
	psql_admin -d upg_data -f "$PROJECT_ROOT/test/upgrade/fill.sql" >>"$out/setup.log" 2>&1 ||
	{ tail -20 "$out/setup.log"; fail_setup "filling upg_data under $PREV"; }
# Before the upgrade, this library serves the previous release's objects: a login answers
# without what the new release adds, the new routes are a 404 that says how to get them, and
# an API key is a token that fails.
check "before ALTER EXTENSION UPDATE, a login on $PREV answers without a refresh token" \
	test "$(q upg_data -c "SET ROLE upgrade_app" -c "SELECT status || ' ' || (body::jsonb ? 'refresh_token')
		FROM saas.http('POST', '/auth/login', '{\"content-type\":\"application/json\"}',
		'{\"email\":\"cy@alpha.test\",\"password\":\"cy password two\"}')")" = "200 false"
new_route_is_404_naming_the_upgrade() {
	q upg_data -c "SET ROLE upgrade_app" -c "SELECT 1 FROM saas.http('GET', '/auth/me',
		jsonb_build_object('authorization', 'Bearer ' || (SELECT token FROM upgrade_fill.tokens WHERE name = 'ada')))
		WHERE status = 404 AND body LIKE '%ALTER EXTENSION pg_saas UPDATE%'" | grep -qx 1
}
check "before ALTER EXTENSION UPDATE, a route of $THIS is a 404 naming the upgrade" new_route_is_404_naming_the_upgrade
check "before ALTER EXTENSION UPDATE, an API key is refused as a token (401)" \
	test "$(q upg_data -c "SET ROLE upgrade_app" -c "SELECT status FROM saas.http('GET', '/users',
		jsonb_build_object('authorization', 'Bearer sk_' || repeat('0', 32) || '_' || repeat('1', 32) || '_' || repeat('A', 43)))")" = 401
state_sql="SELECT (SELECT count(*) FROM saas.organizations) || ' orgs, ' || (SELECT count(*) FROM saas.users) || ' users, '
	|| (SELECT count(*) FROM saas._credentials) || ' passwords, ' || (SELECT count(*) FROM saas.audit_log) || ' audit entries, '
	|| (SELECT count(*) FROM saas.jobs) || ' jobs, ' || (SELECT count(*) FROM saas._signing_keys) || ' keys, '
	|| (SELECT md5(string_agg(hash::text, ',' ORDER BY org_id, seq)) FROM saas.audit_log)"
before=$(q upg_data -c "$state_sql")
pg_dump -h "$PGHOST" -p "$PGPORT" -U postgres -d upg_data -f "$out/upg_data_$PREV.sql" ||
	not_ok "pg_dump of the filled $PREV database"
update_db upg_data >>"$out/setup.log" 2>&1 || not_ok "ALTER EXTENSION pg_saas UPDATE of the filled database"
after=$(q upg_data -c "$state_sql")
echo "# before: $before"
check "the upgrade keeps every row (after: $after)" test "$before" = "$after"
check "every audit chain verifies after the upgrade" \
	test "$(q upg_data -c "SELECT count(*) FILTER (WHERE v.ok) || '/' || count(*)
		FROM saas._audit_heads h, LATERAL saas.audit_verify(h.org_id) v")" = \
	"$(q upg_data -c "SELECT count(*) || '/' || count(*) FROM saas._audit_heads")"
check "a token issued under $PREV still authenticates after the upgrade" \
	test "$(q upg_data -c "SET ROLE upgrade_app" -c "SELECT status FROM saas.http('GET', '/users',
		jsonb_build_object('authorization', 'Bearer ' || (SELECT token FROM upgrade_fill.tokens WHERE name = 'ada')))")" = 200
check "a token logged out under $PREV stays refused after the upgrade" \
	test "$(q upg_data -c "SET ROLE upgrade_app" -c "SELECT status FROM saas.http('GET', '/users',
		jsonb_build_object('authorization', 'Bearer ' || (SELECT token FROM upgrade_fill.tokens WHERE name = 'bo_logged_out')))")" = 401
check "a password set under $PREV logs in after the upgrade" \
	test "$(q upg_data -c "SET ROLE upgrade_app" -c "SELECT status FROM saas.http('POST', '/auth/login',
		'{\"content-type\":\"application/json\"}', '{\"email\":\"cy@alpha.test\",\"password\":\"cy password two\"}')")" = 200
"$snap" upg_data >"$out/data.snap" 2>>"$out/snap.err"
"$snap" upg_fresh >"$out/fresh_schema.snap" 2>>"$out/snap.err"
if diff -u "$out/fresh_schema.snap" "$out/data.snap" >"$out/data.diff"; then
	ok "the filled database, upgraded, has the schema of a fresh install"
else
	not_ok "the filled database, upgraded, has the schema of a fresh install"
	head -40 "$out/data.diff" | sed 's/^/#   /'
fi

# A dump made under the previous release restores into this version (docs/operations.md).
psql_admin -d postgres -c "DROP DATABASE IF EXISTS upg_restored" -c "CREATE DATABASE upg_restored" >/dev/null
if PGOPTIONS='-c session_replication_role=replica' psql_admin -d upg_restored -f "$out/upg_data_$PREV.sql" \
	>"$out/restore.log" 2>&1; then
	restored=$(q upg_restored -c "$state_sql")
	check "a dump of $PREV restores into $THIS with every row (keys: one more, made by CREATE EXTENSION)" \
		test "$(echo "$restored" | sed -E 's/ [0-9]+ keys,//')" = "$(echo "$before" | sed -E 's/ [0-9]+ keys,//')"
	check "...as version $THIS, every audit chain verifying" \
		test "$(q upg_restored -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_saas'") $(q upg_restored -c "SELECT bool_and(v.ok)
			FROM saas._audit_heads h, LATERAL saas.audit_verify(h.org_id) v")" = "$THIS t"
else
	not_ok "a dump of $PREV restores into $THIS"
	tail -5 "$out/restore.log" | sed 's/^/#   /'
fi

# The regress suite against the upgraded, filled database (each of its tests one result).
# The rate limiter's counters live in shared memory, for the whole server, and the regress
# files spend the same keys each run (emails, client addresses, test keys at 1 request a
# minute): right after suite 10_regress they are spent. They are all full again 120 s after
# their last use (the slowest: burst 2 at 1/min); this suite runs late in a full run for that,
# and waits out the rest when 10_regress ran in this cluster less than that ago.
if [ -f "$TEST_WORK/regress/pg_regress.out" ]; then
	wait_s=$(($(stat -c %Y "$TEST_WORK/regress/pg_regress.out") + 121 - $(date +%s)))
	if [ "$wait_s" -gt 0 ]; then
		echo "# waiting ${wait_s}s for the rate limits suite 10_regress spent (shared memory)"
		sleep "$wait_s"
	fi
fi
PGXS_DIR=$(dirname "$(pg_config --pgxs)")/..
tests=$(cd "$TEST_SRC/sql" && ls *.sql | sed 's/\.sql$//' | sort | tr '\n' ' ')
mkdir -p "$out/regress"
chown postgres "$out/regress" 2>/dev/null || true
(cd "$out/regress" && "$PGXS_DIR/test/regress/pg_regress" --use-existing --host="$PGHOST" --port="$PGPORT" \
	--user=postgres --inputdir="$TEST_SRC" --outputdir="$out/regress" --dbname=upg_data $tests) \
	>"$out/regress/pg_regress.out" 2>&1
while read -r line; do
	name=$(echo "$line" | sed -E 's/^.*[[:space:]]([A-Za-z0-9_]+)[[:space:]]+[.][.][.] .*/\1/')
	if echo "$line" | grep -qE '\.\.\. ok'; then ok "regress $name on the upgraded database"
	else not_ok "regress $name on the upgraded database"; fi
done < <(grep -E '\.\.\. (ok|FAILED|failed)' "$out/regress/pg_regress.out")
if [ -f "$out/regress/regression.diffs" ]; then head -60 "$out/regress/regression.diffs" | sed 's/^/#   /'; fi

echo "passed=$pass failed=$fail"
