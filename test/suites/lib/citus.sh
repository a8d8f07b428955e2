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
CREATE EXTENSION pg_saas;
$sql
SELECT count(*) FROM saas.distribute();
SQL
}
