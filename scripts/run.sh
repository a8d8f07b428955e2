#!/usr/bin/env bash
# make run: a local PostgreSQL with pg_saas preloaded (and its worker), the
# HTTP relay saas-http and the simulated services saas-sim, all on 127.0.0.1.
# Stays in the foreground; Ctrl-C stops everything it started.
#
# Settings (environment): SAAS_PGPORT (5433), SAAS_HTTP_PORT (8080),
# SAAS_SIM_PORT (4000: control; services on +1..+3), SAAS_RUN_DIR (.run).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/cluster.sh"

PORT=${SAAS_PGPORT:-5433}
HTTP_PORT=${SAAS_HTTP_PORT:-8080}
SIM_PORT=${SAAS_SIM_PORT:-4000}
DB=saas
RUN_DIR=${SAAS_RUN_DIR:-$ROOT/.run}

# The cluster belongs to the postgres OS user when we are root: it must be
# able to reach the folder. If it cannot (a checkout under /root), use /tmp.
mkdir -p "$RUN_DIR"
if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$RUN_DIR" 2>/dev/null; then
	RUN_DIR=/tmp/pg_saas_run
	mkdir -p "$RUN_DIR"
	echo "run: the postgres user cannot reach the project folder; using $RUN_DIR"
fi
chmod 755 "$RUN_DIR"
cluster_chown "$RUN_DIR"
PGDATA="$RUN_DIR/data"
export PGHOST="$RUN_DIR" PGPORT="$PORT" PGUSER=postgres

pids=()
stop_all() {
	echo
	echo "run: stopping"
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	cluster_stop "$PGDATA"
	echo "run: stopped"
	exit 0
}
trap stop_all INT TERM

if (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && ! [ -f "$PGDATA/postmaster.pid" ]; then
	echo "run: port $PORT is taken; set SAAS_PGPORT" >&2
	exit 1
fi
# SAAS_RUN_RESET=1 starts from an empty cluster.
if [ -n "${SAAS_RUN_RESET:-}" ] && [ -d "$PGDATA" ]; then
	echo "run: SAAS_RUN_RESET: removing $PGDATA"
	cluster_stop "$PGDATA"
	rm -rf "$PGDATA"
fi
if [ ! -f "$PGDATA/PG_VERSION" ]; then
	echo "run: creating a cluster in $PGDATA"
	cluster_init "$PGDATA" "$PORT" "$RUN_DIR" "$DB" || exit 1
fi
echo "run: starting PostgreSQL on 127.0.0.1:$PORT (log: $RUN_DIR/postgres.log)"
cluster_start "$PGDATA" "$RUN_DIR/postgres.log" || { tail -20 "$RUN_DIR/postgres.log"; exit 1; }

psql -X -q -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 ||
	psql -X -q -d postgres -c "CREATE DATABASE $DB"
psql -X -q -d "$DB" <<SQL
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
SQL

# Before the first release the install script changes under one version number: a database
# made from an older script lacks objects the new library uses. Say so, rather than serve 500s.
script="$(pg_config --sharedir)/extension/pg_saas--0.1.0.sql"
sum=$(md5sum "$script" | cut -d' ' -f1)
if [ -f "$RUN_DIR/install_script.md5" ] && [ "$(cat "$RUN_DIR/install_script.md5")" != "$sum" ]; then
	echo "run: WARNING: database \"$DB\" was created by an older pg_saas install script."
	echo "run:          Start afresh with:  make run SAAS_RUN_RESET=1   (drops the local cluster's data)"
else
	echo "$sum" > "$RUN_DIR/install_script.md5"
fi

if [ -x "$ROOT/sim/saas-sim" ]; then
	"$ROOT/sim/saas-sim" --control-port "$SIM_PORT" --user-port $((SIM_PORT + 1)) \
		--payment-port $((SIM_PORT + 2)) --communication-port $((SIM_PORT + 3)) \
		--webhook-url "http://127.0.0.1:$HTTP_PORT/webhooks" \
		--seed-data "$ROOT/../shared/reference-data/platform_data.json" \
		2>>"$RUN_DIR/saas-sim.log" &
	pids+=($!)
	echo "run: saas-sim control on 127.0.0.1:$SIM_PORT (log: $RUN_DIR/saas-sim.log)"
fi
if [ -x "$ROOT/shim/saas-http" ]; then
	"$ROOT/shim/saas-http" --listen "127.0.0.1:$HTTP_PORT" \
		--dsn "host=$RUN_DIR port=$PORT dbname=$DB user=saas_http" \
		2>>"$RUN_DIR/saas-http.log" &
	pids+=($!)
	echo "run: saas-http on http://127.0.0.1:$HTTP_PORT (log: $RUN_DIR/saas-http.log)"
fi

cat <<EOF

pg_saas is running.

  SQL:   psql -h $RUN_DIR -p $PORT -U postgres $DB
  HTTP:  http://127.0.0.1:$HTTP_PORT

A walk through, in psql (as an application role, so row-level security applies):

  SET ROLE saas_http;
  SELECT saas.register('{"organization":{"name":"Acme"},"email":"alice@acme.test",
         "password":"correct horse battery","first_name":"Alice","last_name":"Smith"}')->>'token' AS tok \\gset
  SELECT count(*) FROM saas.users;                        -- 0: no context, nothing visible
  BEGIN;
  SELECT saas.authenticate(:'tok');                       -- verified context for this transaction
  SELECT email, role FROM saas.users;                     -- Acme's users only
  SELECT saas.create_user('{"email":"bob@acme.test","first_name":"Bob","last_name":"Jones","role":"user"}');
  COMMIT;
  SELECT status, body FROM saas.http('GET', '/users?limit=10',
         jsonb_build_object('authorization', 'Bearer ' || :'tok'));

Over HTTP (once saas-http runs):

  curl -s -X POST http://127.0.0.1:$HTTP_PORT/auth/register -H 'Content-Type: application/json' \\
       -d '{"organization":{"name":"Globex"},"email":"hank@globex.test","password":"correct horse battery","first_name":"Hank","last_name":"Scorpio"}'
  TOKEN=\$(curl -s -X POST http://127.0.0.1:$HTTP_PORT/auth/login -H 'Content-Type: application/json' \\
       -d '{"email":"hank@globex.test","password":"correct horse battery"}' | sed 's/.*"token":"\\([^"]*\\)".*/\\1/')
  curl -s http://127.0.0.1:$HTTP_PORT/users -H "Authorization: Bearer \$TOKEN"
  curl -s http://127.0.0.1:$HTTP_PORT/healthz

Ctrl-C stops everything.
EOF

# Stay in the foreground while PostgreSQL runs.
while cluster_alive "$PGDATA"; do sleep 2; done
echo "run: PostgreSQL stopped"
stop_all
