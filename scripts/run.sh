#!/usr/bin/env bash
# make run: a local PostgreSQL with pg_saas preloaded (and its worker), the
# HTTP relay saas-http and the simulated services saas-sim, all on 127.0.0.1.
# Stays in the foreground; Ctrl-C stops everything it started, whatever its
# output is connected to (make run | tee log included).
#
# Settings (environment): SAAS_PGPORT (5433), SAAS_HTTP_PORT (8080),
# SAAS_SIM_PORT (4000: control; services on +1..+4, +4 the OIDC provider), SAAS_RUN_DIR (.run),
# SAAS_RUN_RESET=1 (start from an empty cluster); the relay's own SAAS_HTTP_*
# settings (docs/relay.md) pass through, e.g. SAAS_HTTP_CORS_ORIGINS.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/cluster.sh"

PORT=${SAAS_PGPORT:-5433}
HTTP_PORT=${SAAS_HTTP_PORT:-8080}
SIM_PORT=${SAAS_SIM_PORT:-4000}
DB=saas
RUN_DIR=${SAAS_RUN_DIR:-$ROOT/.run}

# A reader of our output that went away (tee stopped by the same Ctrl-C) must
# not kill this script before it has stopped the servers: writes just fail.
trap '' PIPE
say() { echo "$@" 2>/dev/null || true; }
complain() { echo "$@" >&2 2>/dev/null || true; }

# The cluster belongs to the postgres OS user when we are root: it must be
# able to reach the folder. If it cannot (a checkout under /root), use /tmp.
mkdir -p "$RUN_DIR"
if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$RUN_DIR" 2>/dev/null; then
	RUN_DIR=/tmp/pg_saas_run
	mkdir -p "$RUN_DIR"
	say "run: the postgres user cannot reach the project folder; using $RUN_DIR"
fi
chmod 755 "$RUN_DIR"
cluster_chown "$RUN_DIR"
PGDATA="$RUN_DIR/data"
PIDS_FILE="$RUN_DIR/run.pids"
export PGHOST="$RUN_DIR" PGPORT="$PORT" PGUSER=postgres

pids=()
names=()
stopping=
# stop_all CODE: stop what this run started, PostgreSQL last, and exit CODE.
stop_all() {
	[ -n "$stopping" ] && return
	stopping=1
	trap '' INT TERM HUP
	say
	say "run: stopping"
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	cluster_stop "$PGDATA"
	rm -f "$PIDS_FILE"
	say "run: stopped"
	exit "$1"
}
trap 'stop_all 0' INT TERM HUP

# pid_is PID NAME: PID is alive and runs NAME (a leftover, not a recycled pid).
pid_is() {
	[ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -- "$2"
}

# port_owner PORT: "name (pid N)" of the process listening on PORT, if ss can tell.
port_owner() {
	ss -Hltnp "sport = :$1" 2>/dev/null | sed -nE 's/.*users:\(\("([^"]+)",pid=([0-9]+).*/\1 (pid \2)/p' | head -1
}

# An earlier make run that is still running owns this folder; one whose script
# was killed left its servers behind: say so and stop them.
if [ -f "$PIDS_FILE" ]; then
	while read -r pid name; do
		[ -n "$pid" ] || continue
		if [ "$name" = run.sh ] && pid_is "$pid" scripts/run.sh; then
			complain "run: make run is already running from $RUN_DIR (pid $pid): stop it with Ctrl-C"
			complain "run:          there, or kill $pid; or use another SAAS_RUN_DIR and ports"
			exit 1
		fi
		if [ "$name" != run.sh ] && pid_is "$pid" "$name"; then
			say "run: stopping $name (pid $pid), left running by an earlier make run"
			kill -TERM "$pid" 2>/dev/null
		fi
	done <"$PIDS_FILE"
fi
if cluster_alive "$PGDATA"; then
	say "run: stopping the PostgreSQL of an earlier make run ($PGDATA)"
	cluster_stop "$PGDATA"
fi
echo "$$ run.sh" >"$PIDS_FILE"

# Every port free before anything starts, or the reason and the setting to change.
sleep 0.2							# leftovers stopped just above release their ports
for spec in "$PORT:PostgreSQL:SAAS_PGPORT" "$HTTP_PORT:saas-http:SAAS_HTTP_PORT" \
	"$SIM_PORT:saas-sim control:SAAS_SIM_PORT" "$((SIM_PORT + 1)):saas-sim user-service:SAAS_SIM_PORT" \
	"$((SIM_PORT + 2)):saas-sim payment-service:SAAS_SIM_PORT" \
	"$((SIM_PORT + 3)):saas-sim communication-service:SAAS_SIM_PORT" \
	"$((SIM_PORT + 4)):saas-sim identity-provider:SAAS_SIM_PORT"; do
	IFS=: read -r p what setting <<<"$spec"
	if (echo >/dev/tcp/127.0.0.1/"$p") 2>/dev/null; then
		owner=$(port_owner "$p")
		complain "run: port $p, wanted for $what, is taken${owner:+ by $owner}."
		complain "run: stop that program, or choose another port: make run $setting=<port>"
		rm -f "$PIDS_FILE"
		exit 1
	fi
done

if [ -n "${SAAS_RUN_RESET:-}" ] && [ -d "$PGDATA" ]; then
	say "run: SAAS_RUN_RESET: removing $PGDATA"
	rm -rf "$PGDATA" "$RUN_DIR/install_script.md5"
fi
if [ ! -f "$PGDATA/PG_VERSION" ]; then
	say "run: creating a cluster in $PGDATA"
	cluster_init "$PGDATA" "$PORT" "$RUN_DIR" "$DB" || { rm -f "$PIDS_FILE"; exit 1; }
fi
say "run: starting PostgreSQL on 127.0.0.1:$PORT (log: $RUN_DIR/postgres.log)"
# -p: the port asked for now, whatever the cluster was created with
if ! as_pg pg_ctl -D "$PGDATA" -l "$RUN_DIR/postgres.log" -o "-p $PORT" -w -t 60 start >/dev/null; then
	complain "run: PostgreSQL did not start; the end of $RUN_DIR/postgres.log:"
	tail -20 "$RUN_DIR/postgres.log" >&2 2>/dev/null
	stop_all 1
fi

psql -X -q -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 ||
	psql -X -q -d postgres -c "CREATE DATABASE $DB"

# The extension: created, or upgraded to the version this tree installs (ALTER EXTENSION
# pg_saas UPDATE runs the upgrade scripts from the version the database has, docs/operations.md).
# A database whose version this tree has no upgrade from (made by a newer branch) is refused.
installed=$(psql -X -q -d "$DB" -tAc "SELECT extversion FROM pg_extension WHERE extname = 'pg_saas'")
target=$(psql -X -q -d "$DB" -tAc "SELECT default_version FROM pg_available_extensions WHERE name = 'pg_saas'")
if [ -n "$installed" ] && [ "$installed" != "$target" ] &&
	! psql -X -q -d "$DB" -tAc "SELECT 1 FROM pg_extension_update_paths('pg_saas')
		WHERE source = '$installed' AND target = '$target' AND path IS NOT NULL" | grep -q 1; then
	complain "run: database \"$DB\" has pg_saas $installed, and this tree (pg_saas $target) has no upgrade from it."
	complain "run: Start afresh with:  make run SAAS_RUN_RESET=1   (drops the local cluster's data)"
	stop_all 1
fi
# The integrations follow the simulator's ports (rows that point elsewhere are left alone).
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" <<SQL || { complain "run: cannot set up database $DB"; stop_all 1; }
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_saas;
ALTER EXTENSION pg_saas UPDATE;
DO \$\$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'saas_http') THEN
		CREATE ROLE saas_http LOGIN IN ROLE saas_api;
	END IF;
END
\$\$;
UPDATE saas.integrations i SET base_url = u.url
FROM (SELECT service, regexp_replace(base_url, '^http://127\.0\.0\.1:[0-9]+/',
		'http://127.0.0.1:' || CASE service WHEN 'user-service' THEN $((SIM_PORT + 1))
			WHEN 'payment-service' THEN $((SIM_PORT + 2)) ELSE $((SIM_PORT + 3)) END || '/') AS url
	  FROM saas.integrations
	  WHERE service IN ('user-service', 'payment-service', 'communication-service')
		AND base_url ~ '^http://127\.0\.0\.1:[0-9]+/') u
WHERE i.service = u.service AND i.base_url <> u.url;
SQL
if [ -z "$installed" ]; then
	say "run: created pg_saas $target in database \"$DB\""
elif [ "$installed" != "$target" ]; then
	say "run: upgraded pg_saas in database \"$DB\" from $installed to $target (ALTER EXTENSION pg_saas UPDATE)"
fi
say "run: integrations call saas-sim on 127.0.0.1:$((SIM_PORT + 1))-$((SIM_PORT + 3))"

# Between releases the install script of the version under development changes under one
# version number, and no upgrade script covers a database made from an earlier build of it:
# say so, rather than serve 500s. (A database of an earlier release is upgraded above.)
script="$(pg_config --sharedir)/extension/pg_saas--$target.sql"
sum="$target $(md5sum "$script" | cut -d' ' -f1)"
recorded=$(cat "$RUN_DIR/install_script.md5" 2>/dev/null)
if [ "$installed" = "$target" ] && [ "${recorded%% *}" = "$target" ] && [ "$recorded" != "$sum" ]; then
	say "run: WARNING: database \"$DB\" was created by an earlier build of pg_saas $target's install script."
	say "run:          Start afresh with:  make run SAAS_RUN_RESET=1   (drops the local cluster's data)"
else
	echo "$sum" >"$RUN_DIR/install_script.md5"
fi

# start_program NAME LOG READY CMD...: start CMD in the background, its stderr appended to LOG,
# and wait until LOG gains a line matching READY; if CMD exits first, or takes more than 20 s,
# print why and stop everything.
start_program() {
	local name=$1 log=$2 ready=$3 from pid i
	shift 3
	touch "$log"
	from=$(($(stat -c %s "$log") + 1))
	"$@" 2>>"$log" >/dev/null &
	pid=$!
	pids+=("$pid")
	names+=("$name")
	echo "$pid $name" >>"$PIDS_FILE"
	for ((i = 0; i < 200; i++)); do
		if tail -c +"$from" "$log" 2>/dev/null | grep -q -- "$ready"; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			complain "run: $name did not start (exit $?); its log ($log) says:"
			tail -c +"$from" "$log" | tail -15 >&2 2>/dev/null
			stop_all 1
		fi
		sleep 0.1
	done
	complain "run: $name did not say it was ready within 20 s; its log ($log) says:"
	tail -c +"$from" "$log" | tail -15 >&2 2>/dev/null
	stop_all 1
}

start_program saas-sim "$RUN_DIR/saas-sim.log" " up: control" \
	"$ROOT/sim/saas-sim" --control-port "$SIM_PORT" --user-port $((SIM_PORT + 1)) \
	--payment-port $((SIM_PORT + 2)) --communication-port $((SIM_PORT + 3)) \
	--oidc-port $((SIM_PORT + 4)) \
	--webhook-url "http://127.0.0.1:$HTTP_PORT/webhooks" \
	--seed-data "$ROOT/../shared/reference-data/platform_data.json"
say "run: saas-sim control on 127.0.0.1:$SIM_PORT (log: $RUN_DIR/saas-sim.log)"
start_program saas-http "$RUN_DIR/saas-http.log" "msg=listening" \
	"$ROOT/shim/saas-http" --listen "127.0.0.1:$HTTP_PORT" \
	--dsn "host=$RUN_DIR port=$PORT dbname=$DB user=saas_http"
say "run: saas-http on http://127.0.0.1:$HTTP_PORT (log: $RUN_DIR/saas-http.log)"

# The walk through registers new users each run: the database outlives runs.
tag=$(date +%s)
say "
pg_saas is running.

  SQL:   psql -h $RUN_DIR -p $PORT -U postgres $DB
  HTTP:  http://127.0.0.1:$HTTP_PORT
  Admin: http://127.0.0.1:$HTTP_PORT/admin/   (the dashboard: sign in as an admin; docs/dashboard.md)
  Docs:  http://127.0.0.1:$HTTP_PORT/docs

A walk through, in that psql (as an application role, so row-level security applies):

  SET ROLE saas_http;
  SELECT saas.register('{\"organization\":{\"name\":\"Acme\"},\"email\":\"alice.$tag@acme.test\",
         \"password\":\"correct horse battery\",\"first_name\":\"Alice\",\"last_name\":\"Smith\"}')->>'token' AS tok \\gset
  SELECT count(*) FROM saas.users;                        -- 0: no context, nothing visible
  BEGIN;
  SELECT saas.authenticate(:'tok');                       -- verified context for this transaction
  SELECT email, role FROM saas.users;                     -- Acme's users only
  SELECT saas.create_user('{\"email\":\"bob.$tag@acme.test\",\"first_name\":\"Bob\",\"last_name\":\"Jones\",\"role\":\"user\"}');
  COMMIT;
  SELECT status, body FROM saas.http('GET', '/users?limit=10',
         jsonb_build_object('authorization', 'Bearer ' || :'tok'));

Over HTTP, in a shell:

  curl -s -X POST http://127.0.0.1:$HTTP_PORT/auth/register -H 'Content-Type: application/json' \\
       -d '{\"organization\":{\"name\":\"Globex\"},\"email\":\"hank.$tag@globex.test\",\"password\":\"correct horse battery\",\"first_name\":\"Hank\",\"last_name\":\"Scorpio\"}'
  TOKEN=\$(curl -s -X POST http://127.0.0.1:$HTTP_PORT/auth/login -H 'Content-Type: application/json' \\
       -d '{\"email\":\"hank.$tag@globex.test\",\"password\":\"correct horse battery\"}' | jq -r .token)
  curl -s http://127.0.0.1:$HTTP_PORT/users -H \"Authorization: Bearer \$TOKEN\"
  curl -s http://127.0.0.1:$HTTP_PORT/healthz

Ctrl-C stops everything.
"

# Stay in the foreground while everything runs; if one stops, say which and stop the rest.
while cluster_alive "$PGDATA"; do
	for i in "${!pids[@]}"; do
		if ! kill -0 "${pids[$i]}" 2>/dev/null; then
			wait "${pids[$i]}"
			complain "run: ${names[$i]} exited (status $?); the end of its log:"
			tail -5 "$RUN_DIR/${names[$i]}.log" >&2 2>/dev/null
			stop_all 1
		fi
	done
	sleep 1
done
complain "run: PostgreSQL stopped; the end of $RUN_DIR/postgres.log:"
tail -5 "$RUN_DIR/postgres.log" >&2 2>/dev/null
stop_all 1
