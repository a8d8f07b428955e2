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
-- The coordinator's worker runs the queue: no call leaves the cluster until the part 50_queue
-- starts the simulator and points the services at it (a base URL that is not http(s) is a
-- setting to fix: the worker claims none of that service's jobs meanwhile).
UPDATE saas.integrations SET base_url = 'parked:' || base_url;
CREATE ROLE app LOGIN;
GRANT saas_api TO app;
SQL
saas_version=$(sed -nE "s/^default_version = '(.*)'$/\1/p" "$PROJECT_ROOT/extension/pg_saas.control")
for n in 1 2; do
	t_eq "CREATE EXTENSION pg_saas reached worker $n" "$n" "$saas_version" \
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
t_eq "distribute() places the 29 tables of pg_saas" 0 \
	"distributed=22 local=1 reference=6" \
	-c "SELECT string_agg(placement || '=' || n, ' ' ORDER BY placement) FROM
		(SELECT placement, count(*) AS n FROM saas.distribute() GROUP BY placement) s"
t_error "a second distribute() is refused (42710: already distributed)" 42710 \
	-h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U postgres -d "$CITUS_DB" -c "SELECT saas.distribute()"
t_eq "distribute() leaves its Citus settings behind" 0 "off|on" \
	-c "SELECT current_setting('citus.enable_unsafe_triggers'), current_setting('citus.enable_local_reference_table_foreign_keys')"

# t_tasks NAME WANT SQL: EXPLAIN of SQL on the coordinator says "Task Count: WANT".
t_tasks() {
	local got
	got=$(cpsql 0 -c "EXPLAIN $3" 2>&1 | grep -oE 'Task Count: [0-9]+' | head -1)
	if [ "$got" == "Task Count: $2" ]; then ok "$1"; else not_ok "$1" "want Task Count: $2, got: $got"; fi
}

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

# ---- The parts: test/suites/citus/NN_*.sh, in name order (CITUS_PARTS=10_placement,20_api runs
# only those; 90_keys retires the key the tokens above were signed with, so it comes last).
for part in "$PROJECT_ROOT"/test/suites/citus/*.sh; do
	name=$(basename "$part" .sh)
	if [ -n "${CITUS_PARTS:-}" ] && ! [[ ",$CITUS_PARTS," == *",$name,"* ]]; then continue; fi
	echo "# -- $name"
	# shellcheck source=/dev/null
	source "$part"
done

echo "passed=$pass failed=$fail"
