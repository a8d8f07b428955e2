# Part of test/suites/80_citus.sh (sourced): an installation distributed at the previous
# release (0.1.0), filled through saas.http, then upgraded the way docs/operations.md says
# ("Upgrade of a Citus cluster"): ALTER EXTENSION pg_saas UPDATE on the coordinator and on each
# worker node with citus.enable_ddl_propagation off, then saas.distribute_upgrade() on the
# coordinator. Compared with a fresh distributed install of this version (the suite's own
# database, made and distributed at this version; no part changes its tables): where every
# table is (pg_dist_partition, colocation, shard counts) and what every shard of every node
# carries (triggers, policies, the restrictive ones restrictive, check constraints, RLS,
# grants). Then the data written before is intact (audit chains verify) and the API works on
# it, the routes new in this version too. In its own database, upgrade_citus, dropped at the
# end; the nodes run the library of this tree (installed before the cluster started).

UPG_DB=upgrade_citus
UPG_PREV=$(sed -nE 's/^PREV_VERSION = (.*)$/\1/p' "$PROJECT_ROOT/Makefile")
UPG_THIS=$(sed -nE "s/^default_version = '(.*)'$/\1/p" "$PROJECT_ROOT/extension/pg_saas.control")
upg_dir="$CITUS_WORK/upgrade"
mkdir -p "$upg_dir"

# u_eq NAME WANT DB SQL: SQL's output on the coordinator's database DB is WANT.
u_eq() {
	local got
	got=$(dbpsql 0 "$3" -c "$4" 2>&1)
	if [ "$got" == "$2" ]; then ok "$1"; else not_ok "$1" "want: $2"$'\n'"got:  $got"; fi
}
# u_api NAME WANT DB METHOD PATH TOKEN BODY EXPR
u_api() {
	local name=$1 want=$2 got
	shift 2
	got=$(dbapi "$@")
	if [ "$got" == "$want" ]; then ok "$name"; else not_ok "$name" "want: $want"$'\n'"got:  $got"; fi
}
# versions DB: pg_saas's version on the coordinator and each worker node.
versions() {
	local n
	for n in 0 1 2; do dbpsql "$n" "$1" -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_saas'"; done | tr '\n' ' ' | sed 's/ $//'
}
# upg_state: what the data written at the previous release must still be after the upgrade.
upg_state="SELECT (SELECT count(*) FROM saas.organizations) || ' orgs, ' || (SELECT count(*) FROM saas.users) || ' users, '
	|| (SELECT count(*) FROM saas._credentials) || ' credentials, ' || (SELECT count(*) FROM saas._user_emails) || ' emails, '
	|| (SELECT count(*) FROM saas.audit_log) || ' audit entries, ' || (SELECT count(*) FROM saas.jobs) || ' jobs ('
	|| (SELECT count(*) FROM saas.jobs WHERE state = 'pending') || ' pending), '
	|| (SELECT count(*) FROM saas._sessions) || ' sessions, ' || (SELECT count(*) FROM saas._revoked_tokens) || ' revoked, '
	|| (SELECT md5(string_agg(id::text || email || last_name, ',' ORDER BY id)) FROM saas.users)"
# chains_ok DB: "N chains, M ok", saas.audit_verify of each organization with a chain, one
# statement each (in a query over the shards, Citus would push the call down into them).
chains_ok() {
	local org n=0 good=0
	for org in $(dbpsql 0 "$1" -c "SELECT org_id FROM saas._audit_heads"); do
		n=$((n + 1))
		[ "$(dbpsql 0 "$1" -c "SELECT ok FROM saas.audit_verify('$org')" 2>&1)" == "t" ] && good=$((good + 1))
	done
	echo "$n chains, $good ok"
}

if ! citus_db_nodes "$UPG_DB" "CREATE EXTENSION pg_saas VERSION '$UPG_PREV';
SELECT saas.create_super_admin('root@platform.test', 'platform root password');
UPDATE saas.integrations SET base_url = 'parked:' || base_url;
SELECT count(*) FROM saas.distribute();" >"$upg_dir/setup.log" 2>&1; then
	not_ok "upgrade: cannot make $UPG_DB at $UPG_PREV, distributed" "$(tail -5 "$upg_dir/setup.log")"
else
	ok "upgrade: $UPG_DB made at $UPG_PREV on every node ($(versions "$UPG_DB")) and distributed"

	# ---- Tenant data through the API at the previous release (each request its own transaction).
	ada=$(dbapi "$UPG_DB" POST /auth/register "" '{"organization":{"name":"Upgrade Alpha","slug":"upgrade-alpha"},
		"email":"ada@alpha.test","password":"correct horse battery","first_name":"Ada","last_name":"Alpha"}' "b->>'token'" | sed -n 's/^201|//p')
	bo=$(dbapi "$UPG_DB" POST /auth/register "" '{"organization":{"name":"Upgrade Beta","slug":"upgrade-beta"},
		"email":"bo@beta.test","password":"correct horse battery","first_name":"Bo","last_name":"Beta"}' "b->>'token'" | sed -n 's/^201|//p')
	cy=$(dbapi "$UPG_DB" POST /users "$ada" '{"email":"cy@alpha.test","first_name":"Cy","last_name":"Alpha",
		"role":"user","password":"cy password one"}' "b->>'id'" | sed -n 's/^201|//p')
	fill=$(
		dbapi "$UPG_DB" PUT "/users/$cy" "$ada" '{"last_name":"Alphason"}' "b->>'last_name'"
		dee=$(dbapi "$UPG_DB" POST /users "$ada" '{"email":"dee@alpha.test","first_name":"Dee","last_name":"Gone","role":"user"}' "b->>'id'" | sed -n 's/^201|//p')
		dbapi "$UPG_DB" DELETE "/users/$dee" "$ada" "" "''"
		t=$(dbapi "$UPG_DB" POST /auth/login "" '{"email":"cy@alpha.test","password":"cy password one"}' "b->>'token'" | sed -n 's/^200|//p')
		dbapi "$UPG_DB" PUT "/users/$cy" "$t" '{"password":"cy password two","current_password":"cy password one"}' "''"
		dbapi "$UPG_DB" POST /users "$bo" '{"email":"eve@beta.test","first_name":"Eve","last_name":"Beta","role":"admin"}' "''"
	)
	bo_out=$(dbapi "$UPG_DB" POST /auth/login "" '{"email":"bo@beta.test","password":"correct horse battery"}' "b->>'token'" | sed -n 's/^200|//p')
	fill="$fill $(dbapi "$UPG_DB" POST /auth/logout "$bo_out" "" "''")"
	if [ -n "$ada" ] && [ -n "$bo" ] && [ -n "$cy" ] && [ "$(echo $fill)" == "200|Alphason 204| 200| 201| 204|" ]; then
		ok "upgrade: at $UPG_PREV, tenants, users, a password change and a logout written through saas.http"
	else
		not_ok "upgrade: at $UPG_PREV, tenants, users, a password change and a logout written through saas.http" \
			"ada=${ada:0:12} bo=${bo:0:12} cy=$cy fill=$(echo $fill)"
	fi
	before=$(dbpsql 0 "$UPG_DB" -c "$upg_state" 2>&1)
	got=$(chains_ok "$UPG_DB")
	if [ "$got" == "3 chains, 3 ok" ]; then ok "upgrade: at $UPG_PREV the audit chains verify ($got)"
	else not_ok "upgrade: at $UPG_PREV the audit chains verify" "$got"; fi

	# ---- The update.
	t_error "upgrade: ALTER EXTENSION UPDATE with DDL propagation on is refused (55000, naming the procedure)" 55000 \
		-h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U postgres -d "$UPG_DB" -c "ALTER EXTENSION pg_saas UPDATE"
	got=$(versions "$UPG_DB")
	if [ "$got" == "$UPG_PREV $UPG_PREV $UPG_PREV" ]; then ok "upgrade: the refused update changed no node ($got)"
	else not_ok "upgrade: the refused update changed no node" "versions: $got"; fi
	dbpsql 0 "$UPG_DB" -c "SET citus.enable_ddl_propagation = off" -c "ALTER EXTENSION pg_saas UPDATE" >"$upg_dir/update.log" 2>&1
	got=$(versions "$UPG_DB")
	if [ "$got" == "$UPG_THIS $UPG_PREV $UPG_PREV" ]; then ok "upgrade: the coordinator updated alone, with propagation off ($got)"
	else not_ok "upgrade: the coordinator updated alone, with propagation off" "versions: $got"$'\n'"$(tail -5 "$upg_dir/update.log")"; fi
	t_error "upgrade: distribute_upgrade() while a worker node is behind is refused (55000)" 55000 \
		-h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U postgres -d "$UPG_DB" -c "SELECT saas.distribute_upgrade()"
	for n in 1 2; do
		dbpsql "$n" "$UPG_DB" -c "SET citus.enable_ddl_propagation = off" -c "ALTER EXTENSION pg_saas UPDATE" >>"$upg_dir/update.log" 2>&1
	done
	got=$(versions "$UPG_DB")
	if [ "$got" == "$UPG_THIS $UPG_THIS $UPG_THIS" ]; then ok "upgrade: each worker node updated ($got)"
	else not_ok "upgrade: each worker node updated" "versions: $got"$'\n'"$(tail -5 "$upg_dir/update.log")"; fi
	t_error "upgrade: distribute_upgrade() is not for saas_api" 42501 \
		-h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U app -d "$UPG_DB" -c "SELECT saas.distribute_upgrade()"
	t_error "upgrade: distribute_upgrade() on a worker node is refused" 55000 \
		-h "$CITUS_DIR" -p "${CITUS_PORTS[1]}" -U postgres -d "$UPG_DB" -c "SELECT saas.distribute_upgrade()"
	want=$(dbpsql 0 "$UPG_DB" -c "SELECT string_agg('placed:' || relation::text, ' ' ORDER BY ord) || ' ' FROM saas._distribution_plan() pl
		WHERE placement <> 'local' AND NOT EXISTS (SELECT 1 FROM pg_dist_partition d WHERE d.logicalrelid = pl.relation)")
	got=$(dbpsql 0 "$UPG_DB" -c "SELECT step || ':' || coalesce(relation::text, '') FROM saas.distribute_upgrade() WHERE step = 'placed'" 2>&1 | tr '\n' ' ')
	if [ "$got" == "$want" ] && [ -n "$want" ]; then ok "upgrade: distribute_upgrade() places the tables new since $UPG_PREV ($(echo "$got" | wc -w))"
	else not_ok "upgrade: distribute_upgrade() places the tables new since $UPG_PREV" "want: $want"$'\n'"got:  $got"; fi
	u_eq "upgrade: a second distribute_upgrade() finds nothing left to do on any node" "0|0" "$UPG_DB" \
		"SELECT count(*) FILTER (WHERE step = 'placed'), count(*) FILTER (WHERE step = 'shards' AND detail !~ ',0\)$')
		   FROM saas.distribute_upgrade()"

	# ---- Compared with a fresh distributed install of this version: the suite's own database.
	citus_placement "$CITUS_DB" >"$upg_dir/fresh.placement" 2>&1
	citus_placement "$UPG_DB" >"$upg_dir/upgraded.placement" 2>&1
	if diff -u "$upg_dir/fresh.placement" "$upg_dir/upgraded.placement" >"$upg_dir/placement.diff" &&
		[ "$(wc -l <"$upg_dir/fresh.placement")" -ge 28 ]; then
		ok "upgrade: every table is placed as in a fresh distributed install ($(wc -l <"$upg_dir/fresh.placement") tables: method, column, colocation, shards)"
	else
		not_ok "upgrade: every table is placed as in a fresh distributed install (- fresh, + upgraded)" "$(head -30 "$upg_dir/placement.diff")"
	fi
	citus_shard_signatures "$CITUS_DB" >"$upg_dir/fresh.shards"
	citus_shard_signatures "$UPG_DB" >"$upg_dir/upgraded.shards"
	tables=$(cut -d' ' -f1 "$upg_dir/fresh.shards" | sort -u | wc -l)
	if diff -u "$upg_dir/fresh.shards" "$upg_dir/upgraded.shards" >"$upg_dir/shards.diff" &&
		[ "$tables" -ge 28 ] && [ "$(wc -l <"$upg_dir/fresh.shards")" -eq "$tables" ]; then
		ok "upgrade: every shard on every node carries what a fresh install's does ($tables tables, all shards of each alike: triggers, policies, checks, RLS, grants)"
	else
		not_ok "upgrade: every shard on every node carries what a fresh install's does (- fresh, + upgraded; a table twice: its shards differ)" \
			"$(head -30 "$upg_dir/shards.diff")"$'\n'"tables=$tables lines=$(wc -l <"$upg_dir/fresh.shards")"
	fi
	# As 10_placement checks it: no shard copy of a restrictive policy is permissive, and the
	# scope policies of 0.2.0 are on the shards of both workers.
	got=$(dbpsql 0 "$UPG_DB" -c "SELECT string_agg(result, ' ' ORDER BY nodeport) FROM run_command_on_workers(\$q\$
		SELECT count(*) FILTER (WHERE sp.polpermissive) || '/' || CASE WHEN count(*) > 100 THEN 'many' ELSE count(*)::text END
		  FROM pg_policy sp JOIN pg_class sc ON sc.oid = sp.polrelid
		  JOIN pg_class bc ON bc.relnamespace = sc.relnamespace AND sc.relname ~ ('^' || bc.relname || '_[0-9]+\$')
		  JOIN pg_policy bp ON bp.polrelid = bc.oid AND bp.polname = sp.polname AND NOT bp.polpermissive
		 WHERE sc.relnamespace = 'saas'::regnamespace\$q\$)" 2>&1)
	if [ "$got" == "0/many 0/many" ]; then ok "upgrade: every restrictive policy is restrictive on every shard of both workers (more than 100 each)"
	else not_ok "upgrade: every restrictive policy is restrictive on every shard of both workers" "permissive/total per worker: $got"; fi

	# ---- The data written before, and the API on it.
	u_eq "upgrade: the data written at $UPG_PREV is all there, unchanged" "$before" "$UPG_DB" "$upg_state"
	got=$(chains_ok "$UPG_DB")
	if [ "$got" == "3 chains, 3 ok" ]; then ok "upgrade: the audit chains still verify ($got)"
	else not_ok "upgrade: the audit chains still verify" "$got"; fi
	u_api "upgrade: a token issued at $UPG_PREV still works (GET /users)" "200|2" \
		"$UPG_DB" GET /users "$ada" "" "jsonb_array_length(b->'data')"
	u_api "upgrade: a token logged out at $UPG_PREV stays refused" "401|unauthorized" \
		"$UPG_DB" GET /users "$bo_out" "" "b->'error'->>'code'"
	u_api "upgrade: the old password of a changed one stays refused" "401|unauthorized" \
		"$UPG_DB" POST /auth/login "" '{"email":"cy@alpha.test","password":"cy password one"}' "b->'error'->>'code'"
	login=$(dbapi "$UPG_DB" POST /auth/login "" '{"email":"ada@alpha.test","password":"correct horse battery"}' "(b->>'token') || ' ' || (b->>'refresh_token')")
	ada2=$(echo "$login" | sed -nE 's/^200\|([^ ]+) rt_.*/\1/p')
	rt=$(echo "$login" | sed -nE 's/^200\|[^ ]+ (rt_.*)/\1/p')
	if [ -n "$ada2" ] && [ -n "$rt" ]; then ok "upgrade: login answers a token and a refresh token"
	else not_ok "upgrade: login answers a token and a refresh token" "$login"; fi
	# (on cy's session: the reuse below ends it, with the access tokens it issued)
	rt=$(dbapi "$UPG_DB" POST /auth/login "" '{"email":"cy@alpha.test","password":"cy password two"}' "b->>'refresh_token'" | sed -n 's/^200|//p')
	u_api "upgrade: POST /auth/refresh answers a new token" "200|true" \
		"$UPG_DB" POST /auth/refresh "" "{\"refresh_token\":\"$rt\"}" "b ? 'token' AND b ? 'refresh_token'"
	u_api "upgrade: the same refresh token presented again is reuse (401)" "401|unauthorized" \
		"$UPG_DB" POST /auth/refresh "" "{\"refresh_token\":\"$rt\"}" "b->'error'->>'code'"
	made=$(dbapi "$UPG_DB" POST /api-keys "$ada2" '{"name":"upgrade probe","scopes":["users:read"]}' "(b->>'key') || ' ' || (b->>'id')")
	key=$(echo "$made" | sed -nE 's/^201\|([^ ]+) .*/\1/p')
	key_id=$(echo "$made" | sed -nE 's/^201\|[^ ]+ (.*)/\1/p')
	if [ -n "$key" ] && [ -n "$key_id" ]; then ok "upgrade: POST /api-keys makes a key"; else not_ok "upgrade: POST /api-keys makes a key" "$made"; fi
	u_api "upgrade: the key reads its organization's users (GET /users)" "200|ada@alpha.test,cy@alpha.test" \
		"$UPG_DB" GET /users "$key" "" "(SELECT string_agg(u->>'email', ',' ORDER BY u->>'email') FROM jsonb_array_elements(b->'data') u)"
	u_api "upgrade: the users:read key cannot write (403)" "403|forbidden" \
		"$UPG_DB" POST /users "$key" '{"email":"mal@alpha.test","first_name":"M","last_name":"A","role":"user"}' "b->'error'->>'code'"
	u_api "upgrade: Beta's admin does not see Alpha's key (404)" "404|" \
		"$UPG_DB" GET "/api-keys/$key_id" "$bo" "" "''"
	# The tenant's GET /users is a router query: one task, on its shards' node.
	org=$(dbpsql 0 "$UPG_DB" -c "SELECT id FROM saas.organizations WHERE slug = 'upgrade-alpha'")
	got=$(dbpsql 0 "$UPG_DB" -c "EXPLAIN SELECT * FROM saas.users WHERE org_id = '$org' ORDER BY id LIMIT 50" \
		-c "EXPLAIN SELECT * FROM saas.api_keys WHERE org_id = '$org'" 2>&1 | grep -oE 'Task Count: [0-9]+' | tr '\n' ' ')
	if [ "$got" == "Task Count: 1 Task Count: 1 " ]; then ok "upgrade: a tenant's users page and its API keys (a new table) are routed to one shard"
	else not_ok "upgrade: a tenant's users page and its API keys (a new table) are routed to one shard" "$got"; fi
	port=$(dbpsql 0 "$UPG_DB" -c "SELECT nodeport FROM pg_dist_shard_placement
		WHERE shardid = get_shard_id_for_distribution_column('saas.users', '$org'::uuid)")
	got=$(psql -X -q -At -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U postgres -d "$UPG_DB" -v t="$ada2" 2>&1 <<'SQL' |
SET citus.log_remote_commands = on;
SET client_min_messages = log;
SET ROLE app;
SELECT 'status=' || status FROM saas.http('GET', '/users', jsonb_build_object('authorization', 'Bearer ' || :'t'));
SQL
		grep -oE 'status=[0-9]+|on server [^ ]*@127\.0\.0\.1:[0-9]+' | sed 's/.*[=:]//' | sort -u | tr '\n' ' ')
	if [ "$got" == "$(printf '%s\n' 200 "$port" | sort -u | tr '\n' ' ')" ]; then
		ok "upgrade: GET /users of a tenant admin talks to its shards' node only"
	else
		not_ok "upgrade: GET /users of a tenant admin talks to its shards' node only" "want: 200 and $port; got: $got"
	fi
	got=$(chains_ok "$UPG_DB")
	if [ "$got" == "3 chains, 3 ok" ]; then ok "upgrade: the audit chains verify after the requests made since ($got)"
	else not_ok "upgrade: the audit chains verify after the requests made since" "$got"; fi
	crashed=$(grep -hE 'terminated by signal|PANIC|TRAP:' "$CITUS_DIR"/coord.log "$CITUS_DIR"/worker1.log "$CITUS_DIR"/worker2.log | head -3)
	if [ -z "$crashed" ]; then ok "upgrade: no node's log shows a crashed backend"
	else not_ok "upgrade: no node's log shows a crashed backend" "$crashed"; fi
fi
# Citus runs a maintenance worker per database and node: the part's database goes.
citus_db_drop "$UPG_DB"
