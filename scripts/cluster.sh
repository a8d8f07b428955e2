# Helpers to run a PostgreSQL 15 cluster for pg_saas, sourced by scripts/run.sh and
# test/run_all.sh. Servers refuse to run as root: as root, everything that touches the
# cluster runs as the postgres OS user.

PG_BINDIR=$(pg_config --bindir)
export PG_BINDIR

# as_pg CMD...: run CMD as the postgres OS user when we are root, else as ourselves.
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- env PATH="$PG_BINDIR:$PATH" "$@"
	else
		env PATH="$PG_BINDIR:$PATH" "$@"
	fi
}

cluster_chown() {
	if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$1"; fi
}

# cluster_free_port START: a TCP port nobody listens on, at or above a random point in START..START+1999.
cluster_free_port() {
	# from a random point above the base: clusters started at the same moment (parallel
	# suites, a Citus cluster's nodes) rarely pick the same port between check and bind
	local p=$(($1 + RANDOM % 2000))
	while (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null || [ -e "/tmp/.s.PGSQL.$p" ]; do
		p=$((p + 1))
	done
	echo "$p"
}

# cluster_init PGDATA PORT SOCKETDIR DBNAME: initdb and a configuration with pg_saas preloaded.
cluster_init() {
	local data=$1 port=$2 sock=$3 db=$4
	as_pg initdb -D "$data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >"$sock/initdb.log" 2>&1 || {
		cat "$sock/initdb.log"; return 1; }
	cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sock'
shared_preload_libraries = 'pg_saas'
saas.database = '$db'
max_connections = 100
fsync = on
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
max_prepared_transactions = 10
CONF
}

cluster_start() {
	as_pg pg_ctl -D "$1" -l "$2" -w -t 60 start >/dev/null
}

# cluster_start_on_free_port PGDATA LOG: cluster_start; when another server took the port
# between cluster_free_port and the start (other test clusters on this machine pick ports
# too), the next free one is written into the configuration (a later "port" line wins) and
# the start tried again, up to 5 times. Sets CLUSTER_PORT to the port it listens on.
cluster_start_on_free_port() {
	local data=$1 log=$2 try=0
	CLUSTER_PORT=$(sed -nE 's/^port = ([0-9]+)$/\1/p' "$data/postgresql.conf" | tail -1)
	until cluster_start "$data" "$log" 2>/dev/null; do
		try=$((try + 1))
		if [ "$try" -ge 5 ] || ! grep -q 'Address already in use' "$log"; then
			tail -30 "$log"
			return 1
		fi
		CLUSTER_PORT=$(cluster_free_port $((CLUSTER_PORT + 1)))
		echo "# the port was taken meanwhile; now on $CLUSTER_PORT"
		echo "port = $CLUSTER_PORT" >>"$data/postgresql.conf"
	done
}

cluster_stop() {
	[ -f "$1/postmaster.pid" ] && as_pg pg_ctl -D "$1" -m fast -w -t 60 stop >/dev/null 2>&1
	return 0
}

cluster_alive() {
	as_pg pg_ctl -D "$1" status >/dev/null 2>&1
}
