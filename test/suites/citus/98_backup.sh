# Part of test/suites/80_citus.sh (sourced): backup and restore of a distributed installation,
# the way docs/operations.md says ("Backup and restore of a Citus cluster"): pg_dump of the
# coordinator's database (Citus reads the distributed tables' rows from the shards), restored
# into a new database on the coordinator alone with session_replication_role = replica (as on
# a single node: Citus, no worker yet, pg_saas and its rows), then the workers added (Citus
# creates pg_saas on them) and saas.distribute(), which moves the rows into the shards with the
# triggers off. Checked: every row is back (users, directories, credentials, sessions, audit
# log, jobs), the audit chains verify, no job is enqueued again, tokens, logouts and passwords
# hold, the API writes on it, and its shards are a fresh install's. And why not the other way
# round: rows restored into an installation already distributed are refused at the first user
# (the triggers fire on the shards: session_replication_role does not travel to the workers).
# Databases backup_src, backup_dst and backup_early, dropped at the end.

BK_SRC=backup_src
BK_DST=backup_dst
BK_EARLY=backup_early
bk_dir="$CITUS_WORK/backup"
mkdir -p "$bk_dir"
chmod 777 "$bk_dir"

# bk_state DB: the rows a restore must bring back, as digests.
bk_state() {
	dbpsql 0 "$1" -c "SELECT concat_ws(' ',
		(SELECT count(*) || ' orgs ' || md5(string_agg(o::text, ',' ORDER BY o.id)) FROM saas.organizations o),
		(SELECT count(*) || ' users ' || md5(string_agg(u::text, ',' ORDER BY u.id)) FROM saas.users u),
		(SELECT count(*) || ' credentials ' || md5(string_agg(c::text, ',' ORDER BY c.user_id)) FROM saas._credentials c),
		(SELECT count(*) || ' emails ' || md5(string_agg(e::text, ',' ORDER BY e.email)) FROM saas._user_emails e),
		(SELECT count(*) || ' sessions ' || md5(string_agg(s::text, ',' ORDER BY s.user_id)) FROM saas._sessions s),
		(SELECT count(*) || ' revoked' FROM saas._revoked_tokens),
		(SELECT count(*) || ' refresh ' || md5(string_agg(r::text, ',' ORDER BY r.id)) FROM saas._refresh_tokens r),
		(SELECT count(*) || ' audit ' || md5(string_agg(a::text, ',' ORDER BY a.org_id, a.seq)) FROM saas.audit_log a),
		(SELECT count(*) || ' heads ' || md5(string_agg(h::text, ',' ORDER BY h.org_id)) FROM saas._audit_heads h),
		(SELECT count(*) || ' jobs ' || md5(string_agg(j.id::text || j.state || j.attempt, ',' ORDER BY j.id)) FROM saas.jobs j),
		(SELECT count(*) || ' keys' FROM saas.api_keys))" 2>&1
}
# bk_chains DB: "N chains, M ok" (saas.audit_verify per organization, one statement each).
bk_chains() {
	local org n=0 good=0
	for org in $(dbpsql 0 "$1" -c "SELECT org_id FROM saas._audit_heads"); do
		n=$((n + 1))
		[ "$(dbpsql 0 "$1" -c "SELECT ok FROM saas.audit_verify('$org')" 2>&1)" == "t" ] && good=$((good + 1))
	done
	echo "$n chains, $good ok"
}
# bk_api NAME WANT DB METHOD PATH TOKEN BODY EXPR
bk_api() {
	local name=$1 want=$2 got
	shift 2
	got=$(dbapi "$@")
	if [ "$got" == "$want" ]; then ok "$name"; else not_ok "$name" "want: $want"$'\n'"got:  $got"; fi
}

if ! citus_saas_db "$BK_SRC" "SELECT saas.create_super_admin('root@platform.test', 'platform root password');
UPDATE saas.integrations SET base_url = 'parked:' || base_url;" >"$bk_dir/setup.log" 2>&1; then
	not_ok "backup: cannot make $BK_SRC (Citus, pg_saas, distribute)" "$(tail -5 "$bk_dir/setup.log")"
else
	# ---- Rows through the API (the services parked: the jobs stay queued).
	ada=$(dbapi "$BK_SRC" POST /auth/register "" '{"organization":{"name":"Backup Alpha","slug":"backup-alpha"},
		"email":"ada@bk-alpha.test","password":"correct horse battery","first_name":"Ada","last_name":"Alpha"}' "b->>'token'" | sed -n 's/^201|//p')
	bo=$(dbapi "$BK_SRC" POST /auth/register "" '{"organization":{"name":"Backup Beta","slug":"backup-beta"},
		"email":"bo@bk-beta.test","password":"correct horse battery","first_name":"Bo","last_name":"Beta"}' "b->>'token'" | sed -n 's/^201|//p')
	cy=$(dbapi "$BK_SRC" POST /users "$ada" '{"email":"cy@bk-alpha.test","first_name":"Cy","last_name":"Alpha",
		"role":"user","password":"cy password one"}' "b->>'id'" | sed -n 's/^201|//p')
	fill=$(
		dbapi "$BK_SRC" PUT "/users/$cy" "$ada" '{"last_name":"Alphason"}' "b->>'last_name'"
		t=$(dbapi "$BK_SRC" POST /auth/login "" '{"email":"cy@bk-alpha.test","password":"cy password one"}' "b->>'token'" | sed -n 's/^200|//p')
		dbapi "$BK_SRC" PUT "/users/$cy" "$t" '{"password":"cy password two","current_password":"cy password one"}' "''"
		dbapi "$BK_SRC" POST /api-keys "$ada" '{"name":"backup probe","scopes":["users:read"]}' "''"
	)
	bo_out=$(dbapi "$BK_SRC" POST /auth/login "" '{"email":"bo@bk-beta.test","password":"correct horse battery"}' "b->>'token'" | sed -n 's/^200|//p')
	fill="$fill $(dbapi "$BK_SRC" POST /auth/logout "$bo_out" "" "''")"
	if [ -n "$ada" ] && [ -n "$bo" ] && [ -n "$cy" ] && [ "$(echo $fill)" == "200|Alphason 200| 201| 204|" ]; then
		ok "backup: tenants, users, a password change, an API key and a logout written through saas.http"
	else
		not_ok "backup: tenants, users, a password change, an API key and a logout written through saas.http" \
			"ada=${ada:0:12} bo=${bo:0:12} cy=$cy fill=$(echo $fill)"
	fi
	before=$(bk_state "$BK_SRC")
	if [[ "$before" == *" orgs "*" jobs "*" keys" && "$before" != *ERROR* ]]; then ok "backup: the state to compare is read ($(echo "$before" | grep -oE '[0-9]+ (orgs|users|audit|jobs)' | tr '\n' ' '))"
	else not_ok "backup: the state to compare is read" "$before"; fi
	pending=$(dbpsql 0 "$BK_SRC" -c "SELECT count(*) FROM saas.jobs WHERE state NOT IN ('succeeded', 'dead')")
	if [ "${pending:-0}" -gt 0 ]; then ok "backup: $pending jobs are queued at the dump"
	else not_ok "backup: jobs are queued at the dump" "$pending"; fi

	# ---- The dump: the coordinator's database, the rows read from the shards through Citus.
	if pg_dump -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U postgres -Fc -d "$BK_SRC" -f "$bk_dir/saas.dump" 2>"$bk_dir/dump.log" &&
		[ "$(pg_restore -a -t users -f - "$bk_dir/saas.dump" | grep -c '@bk-')" -eq 3 ]; then
		ok "backup: pg_dump of the coordinator holds the distributed tables' rows (the 3 tenant users)"
	else
		not_ok "backup: pg_dump of the coordinator holds the distributed tables' rows" "$(tail -3 "$bk_dir/dump.log")"
	fi

	# ---- Why not into an installation already distributed: the rows go to the shards, whose
	# triggers fire on the workers, replica mode or not.
	if citus_saas_db "$BK_EARLY" "" >>"$bk_dir/setup.log" 2>&1; then
		got=$(PGOPTIONS='-c session_replication_role=replica' pg_restore -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U postgres \
			--data-only --exit-on-error -d "$BK_EARLY" "$bk_dir/saas.dump" 2>&1)
		if echo "$got" | grep -q 'COPY failed for table "users".*directory entries of user'; then
			ok "backup: rows restored into an installation already distributed are refused (the users' rules fire on the shards)"
		else
			not_ok "backup: rows restored into an installation already distributed are refused (the users' rules fire on the shards)" "$got"
		fi
		citus_db_drop "$BK_EARLY"
	else
		not_ok "backup: cannot make $BK_EARLY" "$(tail -5 "$bk_dir/setup.log")"
	fi

	# ---- The restore: the coordinator alone first, as a single node, then the workers, then
	# distribute().
	dbpsql 0 postgres -c "CREATE DATABASE $BK_DST" >/dev/null 2>&1
	if PGOPTIONS='-c session_replication_role=replica' pg_restore -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U postgres \
		--exit-on-error -d "$BK_DST" "$bk_dir/saas.dump" >"$bk_dir/restore.log" 2>&1; then
		ok "backup: pg_restore into a new database on the coordinator (replica mode)"
	else
		not_ok "backup: pg_restore into a new database on the coordinator (replica mode)" "$(tail -5 "$bk_dir/restore.log")"
	fi
	for n in 1 2; do
		dbpsql "$n" postgres -c "CREATE DATABASE $BK_DST" >/dev/null 2>&1
		dbpsql "$n" "$BK_DST" -c "SET client_min_messages = warning" -c "CREATE EXTENSION citus" >/dev/null 2>&1
	done
	dbpsql 0 "$BK_DST" >"$bk_dir/nodes.log" 2>&1 <<SQL
SET client_min_messages = warning;
SELECT citus_set_coordinator_host('127.0.0.1', ${CITUS_PORTS[0]});
SELECT citus_add_node('127.0.0.1', ${CITUS_PORTS[1]});
SELECT citus_add_node('127.0.0.1', ${CITUS_PORTS[2]});
SQL
	got=$(for n in 1 2; do dbpsql "$n" "$BK_DST" -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_saas'" 2>&1; done | tr '\n' ' ')
	want=$(dbpsql 0 "$BK_DST" -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_saas'")
	if [ "$got" == "$want $want " ]; then ok "backup: adding the workers creates pg_saas on them ($got)"
	else not_ok "backup: adding the workers creates pg_saas on them" "want: $want $want; got: $got $(tail -3 "$bk_dir/nodes.log")"; fi
	got=$(dbpsql 0 "$BK_DST" -c "SELECT count(*) FROM saas.distribute()" 2>&1)
	if [ "$got" == "29" ]; then ok "backup: saas.distribute() places the restored tables"
	else not_ok "backup: saas.distribute() places the restored tables" "$got"; fi

	# ---- Everything is back, nothing twice.
	got=$(bk_state "$BK_DST")
	if [ "$got" == "$before" ]; then ok "backup: every row is back, unchanged (organizations, users, credentials, directory, sessions, refresh tokens, audit log and heads, jobs, API keys)"
	else not_ok "backup: every row is back, unchanged" "before: $before"$'\n'"after:  $got"; fi
	got=$(bk_chains "$BK_DST")
	if [ "$got" == "3 chains, 3 ok" ]; then ok "backup: the audit chains verify after the restore ($got)"
	else not_ok "backup: the audit chains verify after the restore" "$got"; fi
	got=$(citus_placement "$BK_DST")
	if [ "$got" == "$(citus_placement "$CITUS_DB")" ]; then ok "backup: every table is placed as in a fresh distributed install"
	else not_ok "backup: every table is placed as in a fresh distributed install" "$got"; fi
	if [ "$(citus_shard_signatures "$BK_DST")" == "$(citus_shard_signatures "$CITUS_DB")" ]; then
		ok "backup: every shard carries what a fresh install's does (triggers, policies, checks, RLS, grants)"
	else
		not_ok "backup: every shard carries what a fresh install's does" "$(diff <(citus_shard_signatures "$CITUS_DB") <(citus_shard_signatures "$BK_DST") | head -10)"
	fi
	bk_api "backup: a token issued before the dump works after the restore (GET /users)" "200|2" \
		"$BK_DST" GET /users "$ada" "" "jsonb_array_length(b->'data')"
	bk_api "backup: a token logged out before the dump stays refused" "401|unauthorized" \
		"$BK_DST" GET /users "$bo_out" "" "b->'error'->>'code'"
	bk_api "backup: a changed password's old one stays refused" "401|unauthorized" \
		"$BK_DST" POST /auth/login "" '{"email":"cy@bk-alpha.test","password":"cy password one"}' "b->'error'->>'code'"
	ada2=$(dbapi "$BK_DST" POST /auth/login "" '{"email":"ada@bk-alpha.test","password":"correct horse battery"}' "b->>'token'" | sed -n 's/^200|//p')
	if [ -n "$ada2" ]; then ok "backup: login works after the restore"; else not_ok "backup: login works after the restore"; fi
	bk_api "backup: Beta's admin sees none of Alpha's users (isolation after the restore)" "200|bo@bk-beta.test" \
		"$BK_DST" GET /users "$bo" "" "(SELECT string_agg(u->>'email', ',') FROM jsonb_array_elements(b->'data') u)"
	dbpsql 0 "$BK_DST" -c "CREATE TABLE public.bk_jobs_before AS SELECT id, idempotency_key FROM saas.jobs" >/dev/null 2>&1
	dee=$(dbapi "$BK_DST" POST /users "$ada2" '{"email":"dee@bk-alpha.test","first_name":"Dee","last_name":"Alpha","role":"user"}' "b->>'id'")
	if [[ "$dee" == "201|"?* ]]; then ok "backup: a user created after the restore (201)"
	else not_ok "backup: a user created after the restore (201)" "$dee"; fi
	got=$(dbpsql 0 "$BK_DST" -c "SELECT count(*) > 0 AND count(*) FILTER (WHERE j.idempotency_key IN (SELECT idempotency_key FROM public.bk_jobs_before)) = 0
		  FROM saas.jobs j WHERE j.id NOT IN (SELECT id FROM public.bk_jobs_before)" \
		-c "SELECT (SELECT count(*) FROM saas.audit_log a JOIN saas.organizations o ON o.id = a.org_id WHERE o.slug = 'backup-alpha')
			= (SELECT last_seq FROM saas._audit_heads h JOIN saas.organizations o ON o.id = h.org_id WHERE o.slug = 'backup-alpha')" 2>&1)
	if [ "$(echo $got)" == "t t" ]; then
		ok "backup: the new writes enqueue new calls only (none of the restored jobs again), and their audit entries continue the restored chain"
	else
		not_ok "backup: the new writes enqueue new calls only (none of the restored jobs again), and their audit entries continue the restored chain" "$got"
	fi
	got=$(bk_chains "$BK_DST")
	if [ "$got" == "3 chains, 3 ok" ]; then ok "backup: the audit chains verify after the new writes ($got)"
	else not_ok "backup: the audit chains verify after the new writes" "$got"; fi
	citus_db_drop "$BK_DST"
fi
citus_db_drop "$BK_SRC"
