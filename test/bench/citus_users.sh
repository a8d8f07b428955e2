#!/usr/bin/env bash
# Bench: a single-tenant GET /users?limit=50 on Citus (a coordinator and two workers) against
# the same request on a plain node, side by side in one run, and where the CPU of a request
# goes on Citus (the arithmetic of docs/scale-out.md, "Throughput").
#
#   plain side  (role app): saas.http('GET', '/users?limit=50', ...) on a database of the bench
#               cluster with pg_saas alone;
#   citus side  (role app): the same call on the Citus coordinator, after saas.distribute().
#   Both hold the same organizations and users (BENCH_CITUS_ORGS x BENCH_CITUS_USERS), loaded
#   the same way, and the tenant's admin logs in through saas.http on each side for its token.
#
#   citus_users_ratio = tps_citus / tps_plain (median of the rounds; no target: the three Citus
#   servers share this machine's cores with the plain node, so the figure says what the extra hop
#   and the second verification cost, not what a cluster of real machines serves).
#   Then each side runs alone for BENCH_SECONDS, and the CPU time every server's processes used
#   (utime + stime of the postmaster, its children and its reaped children, from /proc) is
#   divided by the requests served: citus_coord_cpu_us, citus_workers_cpu_us, plain_cpu_us per
#   request. With them, docs/scale-out.md works out how throughput grows with worker nodes.
#
# Needs Citus (scripts/citus.sh builds it from ../shared/vendor, cached in .cache/); without the
# tarball it prints "SKIPPED" and measures nothing (exit 0).
set -euo pipefail
source "$(dirname "$0")/lib/bench_lib.bash"
source "$PROJECT_ROOT/scripts/cluster.sh"
source "$PROJECT_ROOT/test/suites/lib/citus.sh"

ORGS=${BENCH_CITUS_ORGS:-32}
USERS=${BENCH_CITUS_USERS:-2000}
ORG_K=$(((ORGS + 1) / 2))
PLAIN_DB=bench_citus_plain
URLPATH='/users?limit=50'

bench_citus_ready || exit 0

on_exit() {
	bench_stop_all
	citus_cluster_stop
}
trap on_exit EXIT

echo "  starting a Citus coordinator and two workers"
citus_cluster_start "$BENCH_WORK/citus" bench_citus >/dev/null || bench_fail "cannot start the Citus cluster"
CPORT=${CITUS_PORTS[0]}

# The same rows on both sides, triggers off while loading (valid by construction), and a
# password for the tenant admin. On Citus they are loaded before saas.distribute(), which
# copies them into the shards.
LOAD_SQL="
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_saas;
DO \$\$ BEGIN CREATE ROLE $BENCH_APP_ROLE LOGIN NOBYPASSRLS IN ROLE saas_api;
	EXCEPTION WHEN duplicate_object THEN NULL; END \$\$;
SET session_replication_role = replica;
INSERT INTO saas.organizations (name, slug, subscription_tier, employee_limit)
	SELECT 'Bench Org ' || k, 'bench-org-' || lpad(k::text, 3, '0'), 'enterprise', 1000000
	  FROM generate_series(1, $ORGS) k;
INSERT INTO saas.users (org_id, id, email, first_name, last_name, role, status)
	SELECT o.id, saas.uuid_generate_v7(), 'user' || g || '@' || o.slug || '.example.com',
		   'First' || g, 'Last' || g, CASE WHEN g = 1 THEN 'admin' ELSE 'user' END, 'active'
	  FROM generate_series(1, $USERS) g CROSS JOIN (SELECT id, slug FROM saas.organizations ORDER BY slug) o;
INSERT INTO saas._credentials (org_id, user_id, password_hash)
	SELECT u.org_id, u.id, saas.hash_password('bench admin password') FROM saas.users u
	 WHERE u.email = 'user1@bench-org-$(printf %03d "$ORG_K").example.com';
-- the email directory login reads (its trigger was off too)
INSERT INTO saas._user_emails (email, org_id, user_id) SELECT email, org_id, id FROM saas.users;
UPDATE saas.rate_limits SET requests_per_minute = 60000000, burst = 1000000
 WHERE scope = 'user' AND tier IN ('enterprise', '*');
"
echo "  loading $ORGS orgs x $USERS users on both sides"
bq -d postgres -c "DROP DATABASE IF EXISTS $PLAIN_DB" -c "CREATE DATABASE $PLAIN_DB" || bench_fail "cannot create $PLAIN_DB"
bq -d "$PLAIN_DB" -c "$LOAD_SQL" -c "VACUUM ANALYZE saas.users" >/dev/null || bench_fail "cannot load $PLAIN_DB"
start=$SECONDS
# Citus everywhere, the workers added, pg_saas, the same rows, then saas.distribute().
citus_saas_db "$CITUS_DB" "$LOAD_SQL" || bench_fail "cannot make $CITUS_DB on the Citus cluster"
echo "  the Citus database loaded and distributed in $((SECONDS - start)) s"
cpsql 0 -c "VACUUM ANALYZE saas.users" >/dev/null

PLAIN_CONN="host=$PGHOST port=$PGPORT dbname=$PLAIN_DB"
CITUS_CONN="host=$CITUS_DIR port=$CPORT dbname=$CITUS_DB"
# token CONNINFO: the tenant admin's token, from POST /auth/login through saas.http.
token() {
	psql -X -q -At -v ON_ERROR_STOP=1 -U "$BENCH_APP_ROLE" -d "$1" -c "
		SELECT body::jsonb->>'token' FROM saas.http('POST', '/auth/login', '{\"content-type\":\"application/json\"}',
			'{\"email\":\"user1@bench-org-$(printf %03d "$ORG_K").example.com\",\"password\":\"bench admin password\"}')
		 WHERE status = 200"
}
TOK_PLAIN=$(token "$PLAIN_CONN")
TOK_CITUS=$(token "$CITUS_CONN")
[ -n "$TOK_PLAIN" ] && [ -n "$TOK_CITUS" ] || bench_fail "login failed (plain: ${TOK_PLAIN:-none}, citus: ${TOK_CITUS:-none})"
hdr() {
	echo "{\"host\":\"127.0.0.1:8080\",\"user-agent\":\"pg_saas-bench\",\"accept\":\"*/*\",\"authorization\":\"Bearer $1\",\"x-client-addr\":\"127.0.0.1\",\"x-request-id\":\"bench-0001\"}"
}

# Both answer 200 with the same 50 users (ids are generated per side: compare emails).
page() {
	psql -X -q -At -v ON_ERROR_STOP=1 -U "$BENCH_APP_ROLE" -d "$1" -v hdr="$(hdr "$2")" -v path="$URLPATH" <<'SQL'
SELECT status || ':' || (SELECT count(*) || ':' || md5(string_agg(u->>'email', ',' ORDER BY u->>'email'))
						   FROM jsonb_array_elements(body::jsonb->'data') u)
  FROM saas.http('GET', :'path', :'hdr'::jsonb, NULL);
SQL
}
p_plain=$(page "$PLAIN_CONN" "$TOK_PLAIN")
p_citus=$(page "$CITUS_CONN" "$TOK_CITUS")
[ "${p_plain%%:*}" = 200 ] && [ "${p_plain#200:}" = "${p_citus#200:}" ] && [ "${p_citus%%:*}" = 200 ] ||
	bench_fail "the answers differ: plain $p_plain, citus $p_citus (status:rows:md5 of emails)"
echo "  checked: both answer 200 with the same 50 users"
org=$(cpsql 0 -c "SELECT id FROM saas.organizations WHERE slug = 'bench-org-$(printf %03d "$ORG_K")'")
explain=$(cpsql 0 -c "EXPLAIN SELECT * FROM saas.users WHERE org_id = '$org' ORDER BY id LIMIT 50" |
	grep -oE 'Task Count: [0-9]+' | head -1)
echo "  the tenant's page on Citus: $explain"

# The two sides take different tokens: pgbench gets each its own header by a per-side variable
# file (pgbench -D is shared by both sides of a comparison).
SCRIPT_PLAIN="$BENCH_WORK/citus_plain.sql"
SCRIPT_CITUS="$BENCH_WORK/citus_citus.sql"
for side in plain citus; do
	if [ $side = plain ]; then t=$TOK_PLAIN; else t=$TOK_CITUS; fi
	sed "s|:hdr::pg_catalog.jsonb|'$(hdr "$t")'::pg_catalog.jsonb|" "$BENCH_DIR/pgbench/http_api.sql" \
		>"$BENCH_WORK/citus_$side.sql"
done

bench_compare "plain:$BENCH_APP_ROLE:$SCRIPT_PLAIN::$PLAIN_CONN" "citus:$BENCH_APP_ROLE:$SCRIPT_CITUS::$CITUS_CONN" \
	-D "method=GET" -D "path=$URLPATH" || bench_fail "pgbench failed"
RATIO=$CMP_RATIO
RATIOS=$CMP_RATIOS

# cpu_ticks DATADIR: clock ticks of CPU (user + system) used so far by that server: its
# postmaster, the children alive now, and the children it has reaped.
cpu_ticks() {
	local pm pid sum=0 t
	pm=$(head -1 "$1/postmaster.pid")
	# fields after the command name: utime 14, stime 15, cutime 16, cstime 17 (1-based, full line)
	t=$(sed -E 's/^.*\) //' "/proc/$pm/stat" | awk '{ print $12 + $13 + $14 + $15 }')
	sum=$t
	for pid in $(pgrep -P "$pm"); do
		t=$(sed -E 's/^.*\) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }')
		sum=$((sum + ${t:-0}))
	done
	echo "$sum"
}
HZ=$(getconf CLK_TCK)
# alone LABEL CONNINFO SCRIPT DATADIR...: one side alone for BENCH_SECONDS; sets ALONE_TPS,
# ALONE_TX and ALONE_CPU_US (per request, per data directory, in the order given).
alone() {
	local label=$1 conn=$2 script=$3 d
	shift 3
	local -a before=()
	for d in "$@"; do before+=("$(cpu_ticks "$d")"); done
	PGB_CONN=$conn bench_pgbench_start "$label-alone" "" "$BENCH_APP_ROLE" "$script" "$BENCH_SECONDS" \
		-D "method=GET" -D "path=$URLPATH"
	bench_pgbench_result "$label-alone" "${BENCH_PIDS[-1]}" || return 1
	BENCH_PIDS=()
	sleep 0.5 # the pgbench backends exit and are reaped
	ALONE_TPS=$PGB_TPS
	ALONE_TX=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$BENCH_WORK/pgbench-$label-alone.log")
	ALONE_CPU_US=()
	local i=0
	for d in "$@"; do
		ALONE_CPU_US+=("$(awk -v a="${before[$i]}" -v b="$(cpu_ticks "$d")" -v hz="$HZ" -v n="$ALONE_TX" \
			'BEGIN { printf "%.1f", (b - a) / hz * 1e6 / n }')")
		i=$((i + 1))
	done
}
echo "  each side alone for ${BENCH_SECONDS}s, CPU time per request of every server"
alone plain "$PLAIN_CONN" "$SCRIPT_PLAIN" "$PGDATA" || bench_fail "pgbench failed"
PLAIN_TPS=$ALONE_TPS PLAIN_CPU=${ALONE_CPU_US[0]}
alone citus "$CITUS_CONN" "$SCRIPT_CITUS" "$CITUS_DIR/coord" "$CITUS_DIR/worker1" "$CITUS_DIR/worker2" ||
	bench_fail "pgbench failed"
CITUS_TPS=$ALONE_TPS COORD_CPU=${ALONE_CPU_US[0]}
WORKERS_CPU=$(awk -v a="${ALONE_CPU_US[1]}" -v b="${ALONE_CPU_US[2]}" 'BEGIN { printf "%.1f", a + b }')
echo "  plain node alone: $(fmt "$PLAIN_TPS" 1) tps, ${PLAIN_CPU} us of CPU a request"
echo "  citus alone: $(fmt "$CITUS_TPS" 1) tps; CPU a request: coordinator ${COORD_CPU} us," \
	"worker 1 ${ALONE_CPU_US[1]} us, worker 2 ${ALONE_CPU_US[2]} us (one tenant: one worker serves it)"

bench_figure citus_users_ratio "$(fmt "$RATIO" 3)" "(per round: $RATIOS; tps_citus / tps_plain, both on this machine)"
bench_figure citus_users_tps "$(fmt "$CMP_TPS_B" 1)"
bench_figure citus_plain_users_tps "$(fmt "$CMP_TPS_A" 1)"
bench_figure plain_cpu_us "$PLAIN_CPU"
bench_figure citus_coord_cpu_us "$COORD_CPU"
bench_figure citus_workers_cpu_us "$WORKERS_CPU"
