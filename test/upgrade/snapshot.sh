#!/usr/bin/env bash
# snapshot.sh DB [content]: everything of the pg_saas extension in DB that an upgrade must
# make equal to a fresh install, as normalized text on stdout (suite 68_upgrade diffs two).
#
#   - pg_dump --binary-upgrade --schema-only: in that mode pg_dump writes out every member
#     object of the extension (a plain dump writes only CREATE EXTENSION): tables with their
#     columns in order, defaults, constraints, indexes, functions with their bodies, settings
#     and security, policies, triggers (and their enabled state), row-level security and
#     FORCE, comments, grants, the initial privileges (pg_init_privs) and the membership
#     (ALTER EXTENSION ... ADD). Object ids, relfilenodes and transaction ids are removed;
#     so is the schema upgrade_fill of the suite's own fixtures (test/upgrade/fill.sql).
#   - the pg_extension_config_dump entries, by table name, with their filters;
#   - with "content": the rows of every table of the extension (the seeded configuration),
#     but the signing keys' random kid and secret (their count and state are kept).
# Environment: PGHOST, PGPORT; runs as the postgres role.
set -euo pipefail
db=$1
mode=${2:-}
q() { psql -X -q -At -v ON_ERROR_STOP=1 -U postgres -d "$db" "$@"; }

pg_dump -U postgres --binary-upgrade --schema-only --no-sync --exclude-schema=upgrade_fill -d "$db" |
	grep -vE '^SELECT pg_catalog\.binary_upgrade_set_next_|^-- Dumped (from|by) |^\\(un)?restrict |^SET relfrozenxid = |^WHERE oid = '"'"'[0-9]+'"'"';$' |
	sed -E "s/(binary_upgrade_create_empty_extension\('pg_saas', '[^']*', (true|false), '[^']*', )'\{[0-9,]*\}'/\1'{config tables: below}'/"

echo "-- pg_extension_config_dump entries"
q -c "SELECT c.cfg::regclass || ' ' || pg_catalog.quote_literal(c.cond)
	    FROM pg_catalog.pg_extension e,
	         LATERAL ROWS FROM (pg_catalog.unnest(e.extconfig), pg_catalog.unnest(e.extcondition)) AS c(cfg, cond)
	   WHERE e.extname = 'pg_saas' ORDER BY 1"

if [ "$mode" = content ]; then
	for t in $(q -c "SELECT c.oid::regclass FROM pg_catalog.pg_class c
	                 JOIN pg_catalog.pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
	                  AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
	                 JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_saas'
	                WHERE c.relkind IN ('r', 'p') ORDER BY 1"); do
		echo "-- rows of $t"
		if [ "$t" = saas._signing_keys ]; then
			q -c "SELECT alg, length(secret), retired_at IS NULL FROM saas._signing_keys ORDER BY 1, 2, 3"
		else
			q -c "SELECT r::text FROM $t r ORDER BY 1"
		fi
	done
fi
