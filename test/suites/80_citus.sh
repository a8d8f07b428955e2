#!/usr/bin/env bash
# Suite 80_citus: pg_saas scaled out on Citus (docs/scale-out.md).
#
# Builds Citus 12.1.12 from the vendored source (scripts/citus.sh: cached in .cache/, about 90 s
# the first time), starts a coordinator and two workers on free loopback ports
# (shared_preload_libraries = 'citus,pg_saas'), creates the extensions, fills pg_saas with rows,
# runs saas.distribute() and checks: where every table went (pg_dist_partition), that isolation
# holds on the workers (a direct connection without a context sees no row of any shard; every
# shard keeps RLS, FORCE and its policies), that a single-tenant query is routed to one shard,
# and which API routes answer on the coordinator as on a single node. Also, on the suite
# runner's plain cluster, that saas.distribute() refuses without Citus.
#
# Without the Citus tarball (../shared/vendor/citus-v12.1.12.tar.gz, or CITUS_TARBALL) the suite
# says so on a line starting with "SKIPPED:" and counts nothing: neither a pass nor a failure
# (test/run_all.sh repeats that line in its summary).
#
# Environment (from test/run_all.sh): PROJECT_ROOT, TEST_WORK, PGHOST, PGPORT.
# Ends with "passed=N failed=M".
set -uo pipefail

: "${PROJECT_ROOT:?}" "${TEST_WORK:?}" "${PGHOST:?}" "${PGPORT:?}"
source "$PROJECT_ROOT/scripts/cluster.sh"
source "$PROJECT_ROOT/test/suites/lib/common.sh"
source "$PROJECT_ROOT/test/suites/lib/citus.sh"

bash "$PROJECT_ROOT/scripts/citus.sh"
case $? in
	0) ;;
	2)
		echo "SKIPPED: 80_citus: the Citus source tarball is missing (see scripts/citus.sh); the Citus suite did not run"
		echo "passed=0 failed=0"
		exit 0
		;;
	*) fail_setup "cannot build or install Citus (scripts/citus.sh)" ;;
esac

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
not_ok() {
	fail=$((fail + 1))
	echo "not ok - $1"
	[ -z "${2:-}" ] || echo "$2" | sed 's/^/#   /'
}

# t_eq NAME NODE WANT SQL...: the output of SQL (psql -At, superuser) on node NODE is WANT.
t_eq() {
	local name=$1 node=$2 want=$3 got
	shift 3
	got=$(cpsql "$node" "$@" 2>&1)
	if [ "$got" == "$want" ]; then ok "$name"; else not_ok "$name" "want: $want"$'\n'"got:  $got"; fi
}

# t_error NAME SQLSTATE PSQL-ARGS...: the statement fails with SQLSTATE.
t_error() {
	local name=$1 state=$2 got
	shift 2
	got=$(psql -X -q -At -v VERBOSITY=verbose "$@" 2>&1)
	if echo "$got" | grep -q "ERROR:  $state:"; then ok "$name"; else not_ok "$name" "want SQLSTATE $state, got: $got"; fi
}

CITUS_WORK="$TEST_WORK/citus"
cleanup() { citus_cluster_stop; }
trap cleanup EXIT

# ---- saas.distribute() without Citus: on the runner's plain cluster.
fresh_saas_db saas_nocitus >/dev/null || fail_setup "cannot create saas_nocitus with pg_saas"
t_error "distribute() without Citus is refused (55000, object not in prerequisite state)" 55000 \
	-h "$PGHOST" -p "$PGPORT" -U postgres -d saas_nocitus -c "SELECT saas.distribute()"
psql_admin -d postgres -c "DROP DATABASE saas_nocitus" >/dev/null 2>&1

# ---- The cluster: a coordinator and two workers.
citus_cluster_start "$CITUS_WORK" saas_citus || fail_setup "cannot start the Citus cluster"
echo "# Citus cluster: coordinator :${CITUS_PORTS[0]}, workers :${CITUS_PORTS[1]} :${CITUS_PORTS[2]} ($CITUS_WORK)"
for n in 0 1 2; do
	psql -X -q -h "$CITUS_DIR" -p "${CITUS_PORTS[$n]}" -U postgres -d postgres -c "CREATE DATABASE $CITUS_DB" >/dev/null &&
		cpsql "$n" -c "SET client_min_messages = warning" -c "CREATE EXTENSION citus" >/dev/null ||
		fail_setup "cannot create citus on node $n"
done
cpsql 0 >/dev/null <<SQL || fail_setup "cannot add the workers to the coordinator"
SELECT citus_set_coordinator_host('127.0.0.1', ${CITUS_PORTS[0]});
SELECT citus_add_node('127.0.0.1', ${CITUS_PORTS[1]});
SELECT citus_add_node('127.0.0.1', ${CITUS_PORTS[2]});
SQL
t_eq "the coordinator knows two active workers" 0 "2" \
	-c "SELECT count(*) FROM pg_dist_node WHERE groupid <> 0 AND isactive AND noderole = 'primary'"

# CREATE EXTENSION pg_saas on the coordinator: Citus runs it on every worker too. Then rows,
# before distribution: the platform operator, and an application login role.
cpsql 0 >/dev/null <<'SQL' || fail_setup "cannot create pg_saas on the coordinator"
SET client_min_messages = warning;
CREATE EXTENSION pg_saas;
SELECT saas.create_super_admin('root@platform.test', 'platform root password');
CREATE ROLE app LOGIN;
GRANT saas_api TO app;
SQL
for n in 1 2; do
	t_eq "CREATE EXTENSION pg_saas reached worker $n" "$n" "0.1.0" \
		-c "SELECT extversion FROM pg_extension WHERE extname = 'pg_saas'"
done
t_error "distribute() on a worker node is refused" 55000 \
	-h "$CITUS_DIR" -p "${CITUS_PORTS[1]}" -U postgres -d "$CITUS_DB" -c "SELECT saas.distribute()"
t_error "distribute() is not for saas_api" 42501 \
	-h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U app -d "$CITUS_DB" -c "SELECT saas.distribute()"

# Tenants with rows, written before distribution (as the superuser, who needs no context):
# distribute() moves them into the shards.
cpsql 0 >/dev/null <<'SQL' || fail_setup "cannot write tenant rows through the coordinator"
SET client_min_messages = warning;
INSERT INTO saas.organizations (id, name, slug) SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid,
	'Tenant ' || i, 'tenant-' || i FROM generate_series(1, 8) i;
INSERT INTO saas.users (org_id, email, first_name, last_name, role)
	SELECT o.id, 'admin@' || o.slug || '.test', 'A', 'B', 'admin' FROM saas.organizations o WHERE o.slug LIKE 'tenant-%';
INSERT INTO saas.users (org_id, email, first_name, last_name, role)
	SELECT o.id, 'user@' || o.slug || '.test', 'U', 'B', 'user' FROM saas.organizations o WHERE o.slug IN ('tenant-1', 'tenant-2');
INSERT INTO saas._credentials (org_id, user_id, password_hash)
	SELECT u.org_id, u.id, saas.hash_password('tenant admin password') FROM saas.users u
	 WHERE u.email IN ('admin@tenant-1.test', 'admin@tenant-2.test');
SQL

# pg_saas's background worker never runs the queue on a worker node: it says so and waits.
for n in 1 2; do
	for _ in $(seq 1 60); do
		grep -q "is a Citus worker node's database, where the queue never runs; waiting" "$CITUS_DIR/${CITUS_NODES[$n]}.log" && break
		sleep 0.5
	done
	if grep -q "is a Citus worker node's database, where the queue never runs; waiting" "$CITUS_DIR/${CITUS_NODES[$n]}.log"; then
		ok "worker $n: pg_saas's background worker sees a Citus worker node and waits"
	else
		not_ok "worker $n: pg_saas's background worker sees a Citus worker node and waits" "$(grep 'pg_saas worker' "$CITUS_DIR/${CITUS_NODES[$n]}.log" | tail -3)"
	fi
done

# ---- saas.distribute()
t_eq "distribute() places the 18 tables of pg_saas" 0 \
	"distributed=12 local=1 reference=5" \
	-c "SELECT string_agg(placement || '=' || n, ' ' ORDER BY placement) FROM
		(SELECT placement, count(*) AS n FROM saas.distribute() GROUP BY placement) s"
t_error "a second distribute() is refused (42710: already distributed)" 42710 \
	-h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U postgres -d "$CITUS_DB" -c "SELECT saas.distribute()"
t_eq "distribute() leaves its Citus settings behind" 0 "off|on" \
	-c "SELECT current_setting('citus.enable_unsafe_triggers'), current_setting('citus.enable_local_reference_table_foreign_keys')"

# Every table of the saas schema with an org_id column (but _user_refs, the platform-wide owner
# of external user ids) is hash-distributed by it, colocated with saas.users; the platform-wide
# tables are reference tables.
t_eq "every tenant table (12, the job queue too) is distributed by org_id, colocated with saas.users" 0 "12|0" \
	-c "SELECT count(*), count(*) FILTER (WHERE d.partmethod IS DISTINCT FROM 'h'
			OR column_to_column_name(d.logicalrelid, d.partkey) <> 'org_id'
			OR d.colocationid <> (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'saas.users'::regclass))
		  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id'
		  LEFT JOIN pg_dist_partition d ON d.logicalrelid = c.oid
		 WHERE c.relnamespace = 'saas'::regnamespace AND c.relkind = 'r' AND c.oid <> 'saas._user_refs'::regclass"
t_eq "organizations, _user_refs, _signing_keys, integrations and rate_limits are reference tables" 0 \
	"_signing_keys,_user_refs,integrations,organizations,rate_limits" \
	-c "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_dist_partition d JOIN pg_class c ON c.oid = d.logicalrelid
		 WHERE d.partmethod = 'n' AND d.repmodel = 't' AND c.relnamespace = 'saas'::regnamespace"
t_eq "the rows written before distribute() are all still there" 0 "9|11|3|1|1|3" \
	-c "SELECT (SELECT count(*) FROM saas.organizations), (SELECT count(*) FROM saas.users),
			   (SELECT count(*) FROM saas._credentials), (SELECT count(*) FROM saas._signing_keys),
			   (SELECT count(*) FROM saas.users WHERE role = 'super_admin'), (SELECT count(*) FROM saas.integrations)"
t_eq "the users' shards are spread over both workers" 0 "2" \
	-c "SELECT count(DISTINCT nodeport) FROM pg_dist_shard_placement p JOIN pg_dist_shard s USING (shardid)
		 WHERE s.logicalrelid = 'saas.users'::regclass"

# ---- Isolation on the workers.
for n in 1 2; do
	t_eq "worker $n: the superuser sees tenant rows in its shards (the probe below is not empty)" "$n" "t" \
		-c "SET citus.override_table_visibility = off" \
		-c "SELECT sum((xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM saas.%I', c.relname), false, true, '')))[1]::text::int) > 0
			  FROM pg_dist_shard s JOIN pg_class c ON c.relname = 'users_' || s.shardid AND c.relnamespace = 'saas'::regnamespace
			 WHERE s.logicalrelid = 'saas.users'::regclass"
	t_eq "worker $n: every shard keeps RLS, FORCE and its policies" "$n" "t|0" \
		-c "SET citus.override_table_visibility = off" \
		-c "SELECT count(*) > 0, count(*) FILTER (WHERE NOT (c.relrowsecurity AND c.relforcerowsecurity)
					OR NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))
			  FROM pg_dist_shard s JOIN pg_class l ON l.oid = s.logicalrelid
			  JOIN pg_class c ON c.relname = l.relname || '_' || s.shardid AND c.relnamespace = l.relnamespace
			 WHERE l.relnamespace = 'saas'::regnamespace"
	got=$(psql -X -q -At -h "$CITUS_DIR" -p "${CITUS_PORTS[$n]}" -U app -d "$CITUS_DB" \
		-c "SET citus.override_table_visibility = off" \
		-c "SELECT count(*) FROM saas.users" -c "SELECT count(*) FROM saas.organizations" 2>&1)
	if [ "$got" == $'0\n0' ]; then ok "worker $n: app without a context sees no user and no organization"
	else not_ok "worker $n: app without a context sees no user and no organization" "$got"; fi
	# Every users shard on this worker, read directly by app: no row.
	shards=$(cpsql "$n" -c "SET citus.override_table_visibility = off" \
		-c "SELECT string_agg(format('(SELECT count(*) FROM saas.%I)', c.relname), ' + ')
			  FROM pg_dist_shard s JOIN pg_class c ON c.relname = 'users_' || s.shardid AND c.relnamespace = 'saas'::regnamespace
			 WHERE s.logicalrelid = 'saas.users'::regclass")
	got=$(psql -X -q -At -h "$CITUS_DIR" -p "${CITUS_PORTS[$n]}" -U app -d "$CITUS_DB" -c "SELECT $shards" 2>&1)
	if [ "$got" == "0" ]; then ok "worker $n: app reading its users shards directly sees no row"
	else not_ok "worker $n: app reading its users shards directly sees no row" "$got"; fi
	t_error "worker $n: app cannot read the credentials' shards at all" 42501 \
		-h "$CITUS_DIR" -p "${CITUS_PORTS[$n]}" -U app -d "$CITUS_DB" -c "SELECT count(*) FROM saas._credentials"
done

# ---- A single-tenant query is a router query: one task, on one node.
# t_tasks NAME WANT SQL: EXPLAIN of SQL on the coordinator says "Task Count: WANT".
t_tasks() {
	local got
	got=$(cpsql 0 -c "EXPLAIN $3" 2>&1 | grep -oE 'Task Count: [0-9]+' | head -1)
	if [ "$got" == "Task Count: $2" ]; then ok "$1"; else not_ok "$1" "want Task Count: $2, got: $got"; fi
}
t_tasks "a single-tenant users page is routed to one shard" 1 \
	"SELECT * FROM saas.users WHERE org_id = '00000000-0000-4000-8000-000000000003' ORDER BY id LIMIT 50"
t_tasks "a join of colocated tenant tables for one tenant is routed to one shard" 1 \
	"SELECT u.id, c.updated_at FROM saas.users u JOIN saas._credentials c ON c.org_id = u.org_id AND c.user_id = u.id
	  WHERE u.org_id = '00000000-0000-4000-8000-000000000003'"
t_tasks "a page of the audit log of one tenant is routed to one shard" 1 \
	"SELECT * FROM saas.audit_log WHERE org_id = '00000000-0000-4000-8000-000000000003' ORDER BY seq DESC LIMIT 50"

# ---- The API on the coordinator (saas.http, as the application's login role).
# api METHOD PATH TOKEN BODY EXPR: "status|EXPR", EXPR an SQL expression on the answer's
# body b (jsonb).
api() {
	psql -X -q -At -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U app -d "$CITUS_DB" \
		-v m="$1" -v p="$2" -v t="$3" -v b="$4" -v expr="$5" 2>&1 <<'SQL'
SELECT r.status || '|' || coalesce((:expr)::text, '')
  FROM saas.http(:'m', :'p', jsonb_build_object('content-type', 'application/json', 'authorization', 'Bearer ' || :'t'),
				 NULLIF(:'b', '')) r, LATERAL (SELECT r.body::jsonb AS b) x
SQL
}
# t_api NAME WANT METHOD PATH TOKEN BODY EXPR
t_api() {
	local name=$1 want=$2 got
	shift 2
	got=$(api "$@")
	if [ "$got" == "$want" ]; then ok "$name"; else not_ok "$name" "want: $want"$'\n'"got:  $got"; fi
}
login() {
	api POST /auth/login "" "{\"email\":\"$1\",\"password\":\"$2\"}" "b->>'token'" | sed -n 's/^200|//p'
}

root=$(login root@platform.test 'platform root password')
a1=$(login admin@tenant-1.test 'tenant admin password')
a2=$(login admin@tenant-2.test 'tenant admin password')
if [ -n "$root" ] && [ -n "$a1" ] && [ -n "$a2" ]; then ok "POST /auth/login answers 200 with a token (super_admin, two tenant admins)"
else not_ok "POST /auth/login answers 200 with a token (super_admin, two tenant admins)" "root=$root a1=$a1 a2=$a2"; fi
t_api "POST /auth/login with a wrong password is 401" "401|unauthorized" \
	POST /auth/login "" '{"email":"admin@tenant-1.test","password":"not the password"}' "b->'error'->>'code'"

# The tenant context reaches the workers: each admin sees its own organization's users, and
# only those (the rows are on the shards; without the context they would see none).
t_api "GET /users: tenant 1's admin sees its 2 users, and only tenant 1's" "200|2 true" \
	GET /users "$a1" "" "(SELECT count(*) || ' ' || bool_and(u->>'org_id' = '00000000-0000-4000-8000-000000000001') FROM jsonb_array_elements(b->'data') u)"
t_api "GET /users: tenant 2's admin sees its 2 users" "200|admin@tenant-2.test,user@tenant-2.test" \
	GET /users "$a2" "" "(SELECT string_agg(u->>'email', ',' ORDER BY u->>'email') FROM jsonb_array_elements(b->'data') u)"
t_api "GET /users?limit=1 pages on Citus too" "200|1 true" \
	GET "/users?limit=1" "$a1" "" "jsonb_array_length(b->'data') || ' ' || (b->>'next_cursor' IS NOT NULL)"
u2=$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'user@tenant-2.test'")
t_api "GET /users/:id of another tenant's user is 404" "404|not_found" \
	GET "/users/$u2" "$a1" "" "b->'error'->>'code'"
t_api "GET /users/:id of its own user is 200" "200|user@tenant-2.test" \
	GET "/users/$u2" "$a2" "" "b->>'email'"
t_api "GET /organizations: a tenant admin sees its own organization only" "200|tenant-1" \
	GET /organizations "$a1" "" "(SELECT string_agg(o->>'slug', ',') FROM jsonb_array_elements(b->'data') o)"
t_api "GET /organizations: the super_admin sees all 9" "200|9" \
	GET "/organizations?limit=50" "$root" "" "jsonb_array_length(b->'data')"
t_api "GET /organizations/:id of another organization is 404 for a tenant admin" "404|not_found" \
	GET /organizations/00000000-0000-4000-8000-000000000002 "$a1" "" "b->'error'->>'code'"
t_api "GET /audit-logs: the entries recorded before distribute(), of the caller's organization only" "200|true" \
	GET /audit-logs "$a1" "" "jsonb_array_length(b->'data') >= 1 AND (SELECT bool_and(e->>'org_id' = '00000000-0000-4000-8000-000000000001') FROM jsonb_array_elements(b->'data') e)"
t_api "GET /users without a token is 401" "401|unauthorized" \
	GET /users "" "" "b->'error'->>'code'"
# Errors from the shards map like on a single node, without shard names.
t_api "POST /users with an email taken in the organization is 409 on field email, no shard name in the answer" \
	"409|email a resource with this value already exists" \
	POST /users "$a1" '{"email":"user@tenant-1.test","first_name":"U","last_name":"B","role":"user","status":"inactive"}' \
	"(b->'error'->'details'->0->>'field') || ' ' || (b->'error'->>'message')"
# Writes: the audit chain of an organization is written on the node that holds its shards.
u1=$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'user@tenant-1.test'")
t_api "PUT /users/:id: an admin renames a user of its organization" "200|Renamed" \
	PUT "/users/$u1" "$a1" '{"first_name":"Renamed"}' "b->>'first_name'"
t_api "GET /users/:id shows the new name" "200|Renamed 2" \
	GET "/users/$u1" "$a1" "" "(b->>'first_name') || ' ' || (b->>'version')"
t_api "GET /audit-logs: the rename is recorded once, with its actor" "200|1 admin" \
	GET "/audit-logs?entity=user&action=update" "$a1" "" \
	"(SELECT count(*) || ' ' || min(e->>'actor_role') FROM jsonb_array_elements(b->'data') e WHERE e->>'entity_id' = '$u1')"
t_api "PUT /organizations/:id: an admin renames its organization" "200|Tenant One" \
	PUT /organizations/00000000-0000-4000-8000-000000000001 "$a1" '{"name":"Tenant One"}' "b->>'name'"
t_api "GET /audit-logs: the organization's rename is recorded once (a reference table has a copy on every node)" "200|1" \
	GET "/audit-logs?entity=organization&action=update" "$a1" "" "jsonb_array_length(b->'data')"
t_api "POST /users: an admin creates an inactive user" "201|inactive" \
	POST /users "$a1" '{"email":"new@tenant-1.test","first_name":"N","last_name":"U","role":"user","status":"inactive"}' "b->>'status'"
t_api "POST /users: an admin creates an active user (the employee limit is counted under the organization's lock)" "201|active" \
	POST /users "$a1" '{"email":"act@tenant-1.test","first_name":"N","last_name":"U","role":"user"}' "b->>'status'"
t_api "PUT /users/:id: an admin activates the inactive user" "200|active" \
	PUT "/users/$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'new@tenant-1.test'")" "$a1" '{"status":"active"}' "b->>'status'"
t_api "PUT /organizations/:id: the super_admin raises an employee limit" "200|50" \
	PUT /organizations/00000000-0000-4000-8000-000000000006 "$root" '{"employee_limit":50}' "b->>'employee_limit'"
t_eq "saas.audit_verify: tenant 1's chain is intact after writes on the worker" 0 "t" \
	-c "SELECT ok FROM saas.audit_verify('00000000-0000-4000-8000-000000000001')"
t_eq "the entries written on the workers carry the request id of their API request" 0 "0|t" \
	-c "SELECT count(*) FILTER (WHERE request_id IS NULL), count(*) > 0 FROM saas.audit_log WHERE action = 'update'"
t_eq "every change of tenant 1 is in its chain once (seq gapless)" 0 "t" \
	-c "SELECT count(*) = max(seq) AND count(DISTINCT seq) = count(*) FROM saas.audit_log WHERE org_id = '00000000-0000-4000-8000-000000000001'"
q1=$(cpsql 0 -c "SELECT count(*) FROM saas.jobs WHERE org_id = '00000000-0000-4000-8000-000000000001'
	AND service = 'user-service' AND state IN ('available', 'running')")
qall=$(cpsql 0 -c "SELECT count(*) FROM saas.jobs WHERE service = 'user-service' AND state IN ('available', 'running')")
t_api "GET /integrations/status: a tenant admin sees its own organization's queue ($q1 user-service jobs)" "200|$q1 OK" \
	GET /integrations/status "$a1" "" "(b->'userService'->>'queued') || ' ' || (b->'userService'->>'status')"
t_api "GET /integrations/status: the super_admin sees every organization's queue ($qall user-service jobs)" "200|$qall 3" \
	GET /integrations/status "$root" "" "(b->'userService'->>'queued') || ' ' || (SELECT count(*) FROM jsonb_object_keys(b))"

# Key rotation and retirement (saas._signing_keys is a reference table).
newkid=$(cpsql 0 -c "SELECT saas.rotate_signing_key()")
t_eq "saas.rotate_signing_key() adds a key on every node" 1 "1" -c "SELECT count(*) FROM saas._signing_keys WHERE kid = '$newkid'"
oldkid=$(cpsql 0 -c "SELECT kid FROM saas._signing_keys WHERE kid <> '$newkid' ORDER BY created_at LIMIT 1")
t_eq "saas.retire_signing_key() retires the old key" 0 "" -c "SELECT saas.retire_signing_key('$oldkid')"
t_api "a token signed with the retired key stops verifying at once" "401|unauthorized" \
	GET /users "$a1" "" "b->'error'->>'code'"
a1=$(login admin@tenant-1.test 'tenant admin password')
t_api "a new login is signed with the new key and works" "200|1" \
	GET "/users?role=admin" "$a1" "" "(SELECT count(*) FROM jsonb_array_elements(b->'data'))::text || ''"

echo "passed=$pass failed=$fail"
