#!/usr/bin/env bash
# A scratch cluster for development: bash scripts/dev_cluster.sh start|stop|psql
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/cluster.sh"
D=/tmp/pg_saas_dev
case "${1:-start}" in
start)
	if [ ! -d $D/data ]; then
		mkdir -p $D; chmod 755 $D; cluster_chown $D
		cluster_init $D/data 5499 $D saas_dev
	fi
	cluster_start $D/data $D/postgres.log
	psql -h $D -p 5499 -U postgres -Atc "SELECT 1 FROM pg_database WHERE datname='saas_dev'" postgres | grep -q 1 ||
		psql -h $D -p 5499 -U postgres -c "CREATE DATABASE saas_dev" postgres ;;
stop) cluster_stop $D/data ;;
restart) cluster_stop $D/data; cluster_start $D/data $D/postgres.log ;;
psql) shift; psql -h $D -p 5499 -U postgres saas_dev "$@" ;;
esac
