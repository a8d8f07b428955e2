# A throwaway Citus cluster for test/suites/80_citus.sh (sourced after scripts/cluster.sh):
# a coordinator and two workers on free loopback ports, owned by the postgres OS user when we
# are root, each with shared_preload_libraries = 'citus,pg_saas' (Citus must come first).
#
# citus_cluster_start DIR DB: sets CITUS_DIR, CITUS_DB and CITUS_PORTS (coordinator first).
# pg_saas's background worker serves DB on every node: on the worker nodes it must see that it
# is on a worker node and wait; on the coordinator it runs the queue (its claims are routed per
# organization, docs/scale-out.md). Until DB exists, it fails to connect and is started again
# (every 5 s).
# CITUS_EXTRA_CONF, when set, is appended to every node's configuration after these lines
# (later lines win; a bench preloads pg_stat_statements with it).
# citus_cluster_stop: stops the three servers (fast shutdown), whatever state they are in.

CITUS_NODES=(coord worker1 worker2)

citus_cluster_start() {
	CITUS_DIR=$1
	CITUS_DB=$2
	CITUS_PORTS=()
	mkdir -p "$CITUS_DIR"
	chmod 755 "$CITUS_DIR"
	cluster_chown "$CITUS_DIR"
	local i port=57432 node
	for i in 0 1 2; do
		node=${CITUS_NODES[$i]}
		port=$(cluster_free_port $((port + 1)))
		cluster_init "$CITUS_DIR/$node" "$port" "$CITUS_DIR" "$CITUS_DB" || return 1
		# Later lines win: Citus first, and connections between nodes without TLS on loopback.
		cat >>"$CITUS_DIR/$node/postgresql.conf" <<CONF
shared_preload_libraries = 'citus,pg_saas'
citus.node_conninfo = 'sslmode=disable'
max_connections = 120
# Citus commits every write of a reference table with two-phase commit, a prepared
# transaction per node and connection; its docs advise as many as connections.
max_prepared_transactions = 120
log_min_messages = warning
${CITUS_EXTRA_CONF:-}
CONF
		cluster_start_on_free_port "$CITUS_DIR/$node" "$CITUS_DIR/$node.log" || return 1
		port=$CLUSTER_PORT
		CITUS_PORTS+=("$port")
	done
	export CITUS_DIR CITUS_DB
}

citus_cluster_stop() {
	local node
	for node in "${CITUS_NODES[@]}"; do
		[ -n "${CITUS_DIR:-}" ] && cluster_stop "$CITUS_DIR/$node"
	done
	return 0
}

# cpsql N ARGS...: psql as postgres on node N (0 coordinator, 1 and 2 workers), database
# CITUS_DB, unaligned tuples only, stopping at the first error.
cpsql() {
	local n=$1
	shift
	psql -X -q -At -v ON_ERROR_STOP=1 -h "$CITUS_DIR" -p "${CITUS_PORTS[$n]}" -U postgres -d "$CITUS_DB" "$@"
}

# citus_saas_db DB [SQL]: a database DB of its own on every node of the running cluster, made
# as docs/scale-out.md says: Citus on every node, the workers added on the coordinator,
# CREATE EXTENSION pg_saas, then SQL (as the superuser, before distribution), then
# saas.distribute(). Citus keeps its node metadata per database.
citus_saas_db() {
	citus_db_nodes "$1" "SET client_min_messages = warning;
CREATE EXTENSION pg_saas;
${2:-}
SELECT count(*) FROM saas.distribute();"
}

# citus_db_nodes DB [SQL]: a database DB on every node of the running cluster with Citus, the
# workers added on the coordinator, then SQL on the coordinator (as the superuser). No pg_saas.
citus_db_nodes() {
	local db=$1 sql=${2:-} n
	for n in 0 1 2; do
		psql -X -q -h "$CITUS_DIR" -p "${CITUS_PORTS[$n]}" -U postgres -d postgres -c "CREATE DATABASE $db" >/dev/null &&
			psql -X -q -h "$CITUS_DIR" -p "${CITUS_PORTS[$n]}" -U postgres -d "$db" \
				-c "SET client_min_messages = warning" -c "CREATE EXTENSION citus" >/dev/null || return 1
	done
	psql -X -q -v ON_ERROR_STOP=1 -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U postgres -d "$db" >/dev/null <<SQL
SET client_min_messages = warning;
SELECT citus_set_coordinator_host('127.0.0.1', ${CITUS_PORTS[0]});
SELECT citus_add_node('127.0.0.1', ${CITUS_PORTS[1]});
SELECT citus_add_node('127.0.0.1', ${CITUS_PORTS[2]});
$sql
SQL
}

# dbpsql N DB ARGS...: psql as postgres on node N, database DB (unaligned, tuples only,
# stopping at the first error).
dbpsql() {
	local n=$1 db=$2
	shift 2
	psql -X -q -At -v ON_ERROR_STOP=1 -h "$CITUS_DIR" -p "${CITUS_PORTS[$n]}" -U postgres -d "$db" "$@"
}

# dbapi DB METHOD PATH TOKEN BODY EXPR: saas.http on the coordinator's database DB as the
# application role app, each request in a transaction of its own; prints "status|EXPR", EXPR
# an SQL expression on the answer's body b (jsonb).
dbapi() {
	psql -X -q -At -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U app -d "$1" \
		-v m="$2" -v p="$3" -v t="$4" -v b="$5" -v expr="$6" 2>&1 <<'SQL'
SELECT r.status || '|' || coalesce((:expr)::text, '')
  FROM saas.http(:'m', :'p', jsonb_strip_nulls(jsonb_build_object('content-type', 'application/json',
				 'authorization', 'Bearer ' || NULLIF(:'t', ''))), NULLIF(:'b', '')) r,
	   LATERAL (SELECT r.body::jsonb AS b) x
SQL
}

# citus_shard_signatures DB: one line "table md5" per distinct definition of the shards of each
# table of pg_saas, over every node: the shard's triggers and policies (names and expressions
# with the shard id taken out), its check constraints (as named), row-level security, FORCE
# and grants. A table whose shards all agree has one line.
citus_shard_signatures() {
	local n
	for n in 0 1 2; do
		dbpsql "$n" "$1" -c "SET citus.override_table_visibility = off" -c "
WITH sh AS (
	SELECT ds.shardid::text AS sid, bc.relname AS bname, sc.oid AS shard, sc.relrowsecurity AS rls,
		   sc.relforcerowsecurity AS force, sc.relacl::text AS acl
	  FROM pg_dist_shard ds
	  JOIN pg_class bc ON bc.oid = ds.logicalrelid
	  JOIN pg_class sc ON sc.relnamespace = bc.relnamespace AND sc.relname = bc.relname || '_' || ds.shardid
	 WHERE bc.relnamespace = 'saas'::regnamespace),
items AS (
	SELECT sh.bname, sh.sid, 'trigger ' || replace(pg_get_triggerdef(t.oid), '_' || sh.sid, '') || ' ' || t.tgenabled::text AS item
	  FROM sh JOIN pg_trigger t ON t.tgrelid = sh.shard AND NOT t.tgisinternal
	UNION ALL
	SELECT sh.bname, sh.sid, 'policy ' || concat_ws(' ', p.polname, p.polcmd::text,
			CASE WHEN p.polpermissive THEN 'permissive' ELSE 'RESTRICTIVE' END, p.polroles::regrole[]::text,
			replace(pg_get_expr(p.polqual, p.polrelid), '_' || sh.sid, ''),
			replace(pg_get_expr(p.polwithcheck, p.polrelid), '_' || sh.sid, ''))
	  FROM sh JOIN pg_policy p ON p.polrelid = sh.shard
	UNION ALL
	SELECT sh.bname, sh.sid, concat_ws(' ', 'table rls', sh.rls, 'force', sh.force, 'acl', sh.acl) FROM sh
	UNION ALL
	SELECT sh.bname, sh.sid, 'constraint ' || c.conname || ' ' || pg_get_constraintdef(c.oid)
	  FROM sh JOIN pg_constraint c ON c.conrelid = sh.shard AND c.contype = 'c')
SELECT bname || ' ' || md5(string_agg(item, E'\n' ORDER BY item)) FROM items GROUP BY bname, sid" || echo "error on node $n"
	done | sort -u
}

# citus_placement DB: where each table of pg_saas is, as Citus keeps it: name, method,
# distribution column, replication model, colocated with saas.users or not, shard count.
citus_placement() {
	dbpsql 0 "$1" -c "SELECT string_agg(concat_ws(' ', c.relname, d.partmethod, column_to_column_name(d.logicalrelid, d.partkey),
			d.repmodel, CASE WHEN d.colocationid = u.colocationid THEN 'with-users' ELSE 'own-group' END,
			(SELECT count(*) FROM pg_dist_shard s WHERE s.logicalrelid = d.logicalrelid)), E'\n' ORDER BY c.relname)
		  FROM pg_dist_partition d JOIN pg_class c ON c.oid = d.logicalrelid,
			   (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'saas.users'::regclass) u
		 WHERE c.relnamespace = 'saas'::regnamespace"
}

# citus_db_drop DB: DB dropped on every node (Citus 12.1 does not propagate DROP DATABASE;
# each database with Citus keeps a maintenance worker per node).
citus_db_drop() {
	local n
	for n in 0 1 2; do
		psql -X -q -h "$CITUS_DIR" -p "${CITUS_PORTS[$n]}" -U postgres -d postgres \
			-c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null 2>&1
	done
	return 0
}
