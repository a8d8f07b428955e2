# Part of test/suites/80_citus.sh (sourced): registration, new organizations, passwords, logout
# on the coordinator (docs/scale-out.md). No identity switch inside a request: the password hash
# is written as the caller, under the extension's trusted context; the organization's lock is an
# advisory lock on the node of its shards; events that are not row changes travel to that node
# through saas._audit_outbox. Uses root, a1, a2 (tokens) from the suite.

pw='correct horse battery staple'

# chain_ok ORG: "tt" when the organization's chain verifies and its seq is gapless.
chain_ok() {
	echo "$(cpsql 0 -c "SELECT ok FROM saas.audit_verify('$1')")$(cpsql 0 -c "SELECT count(*) = max(seq) AND count(DISTINCT seq) = count(*) FROM saas.audit_log WHERE org_id = '$1'")"
}
# audit_count ORG ACTION [ENTITY_ID]: entries of ACTION in the organization's chain.
audit_count() {
	cpsql 0 -c "SELECT count(*) FROM saas.audit_log WHERE org_id = '$1' AND action = '$2'
		AND ('${3:-}' = '' OR entity_id::text = '${3:-}')"
}

# ---- POST /auth/register
t_api "POST /auth/register on the coordinator answers 201 with a token" "201|reg-co admin true" \
	POST /auth/register "" "{\"organization\":{\"name\":\"Reg Co\",\"slug\":\"reg-co\"},\"email\":\"owner@reg-co.test\",\"password\":\"$pw\",\"first_name\":\"O\",\"last_name\":\"W\"}" \
	"(b->'organization'->>'slug') || ' ' || (b->'user'->>'role') || ' ' || (b->>'token' IS NOT NULL)"
rorg=$(cpsql 0 -c "SELECT id FROM saas.organizations WHERE slug = 'reg-co'")
t_eq "registration: the organization and its admin exist once" 0 "1|1|1" \
	-c "SELECT (SELECT count(*) FROM saas.organizations WHERE slug = 'reg-co'),
		(SELECT count(*) FROM saas.users WHERE email = 'owner@reg-co.test'),
		(SELECT count(*) FROM saas._credentials WHERE org_id = '$rorg')"
reg=$(login owner@reg-co.test "$pw")
if [ -n "$reg" ]; then ok "registration: the new admin logs in with its password"
else not_ok "registration: the new admin logs in with its password" "no token"; fi
t_eq "registration: the organization and the user are recorded once each in the new chain" 0 "1|1" \
	-c "SELECT count(*) FILTER (WHERE entity = 'organization' AND action = 'create'),
		count(*) FILTER (WHERE entity = 'user' AND action = 'create') FROM saas.audit_log WHERE org_id = '$rorg'"
t_eq "registration: the new organization's chain is intact, seq gapless" 0 "tt" -c "SELECT '$(chain_ok "$rorg")'"
t_api "POST /auth/register with a registered email is 409 on email, no shard name" \
	"409|email this email is already registered false" \
	POST /auth/register "" "{\"organization\":{\"name\":\"Reg Two\"},\"email\":\"owner@reg-co.test\",\"password\":\"$pw\",\"first_name\":\"O\",\"last_name\":\"W\"}" \
	"(b->'error'->'details'->0->>'field') || ' ' || (b->'error'->>'message') || ' ' || (b::text ~ '_[0-9]{6}')"
t_api "POST /auth/register with a taken slug is 409 on organization.slug" "409|organization.slug" \
	POST /auth/register "" "{\"organization\":{\"name\":\"Reg Co\",\"slug\":\"reg-co\"},\"email\":\"other@reg-co.test\",\"password\":\"$pw\",\"first_name\":\"O\",\"last_name\":\"W\"}" \
	"b->'error'->'details'->0->>'field'"
t_eq "a refused registration leaves nothing behind" 0 "0|1" \
	-c "SELECT (SELECT count(*) FROM saas.users WHERE email = 'other@reg-co.test'),
		(SELECT count(*) FROM saas.organizations WHERE name LIKE 'Reg%')"

# ---- POST /organizations (super_admin) with its admin's password
t_api "POST /organizations: the super_admin creates an organization with its admin" "201|made-co made@made-co.test" \
	POST /organizations "$root" "{\"name\":\"Made Co\",\"slug\":\"made-co\",\"admin_user\":{\"email\":\"made@made-co.test\",\"first_name\":\"M\",\"last_name\":\"A\",\"password\":\"$pw\"}}" \
	"(b->'organization'->>'slug') || ' ' || (b->'admin_user'->>'email')"
morg=$(cpsql 0 -c "SELECT id FROM saas.organizations WHERE slug = 'made-co'")
made=$(login made@made-co.test "$pw")
if [ -n "$made" ]; then ok "POST /organizations: its admin logs in with the password given"
else not_ok "POST /organizations: its admin logs in with the password given" "no token"; fi
t_api "POST /organizations by a tenant admin is 403" "403|forbidden" \
	POST /organizations "$a1" "{\"name\":\"Nope\",\"admin_user\":{\"email\":\"n@nope.test\",\"first_name\":\"M\",\"last_name\":\"A\",\"password\":\"$pw\"}}" \
	"b->'error'->>'code'"

# ---- POST /users with a password, PUT /users/:id changing one
t_api "POST /users with a password (the hash written on the worker, as the caller)" "201|active" \
	POST /users "$reg" "{\"email\":\"pw@reg-co.test\",\"first_name\":\"P\",\"last_name\":\"W\",\"role\":\"user\",\"password\":\"$pw\"}" "b->>'status'"
pwu=$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'pw@reg-co.test'")
upw=$(login pw@reg-co.test "$pw")
if [ -n "$upw" ]; then ok "POST /users: the new user logs in with its password"
else not_ok "POST /users: the new user logs in with its password" "no token"; fi
t_api "PUT /users/:id: the admin sets the user's password" "200|pw@reg-co.test" \
	PUT "/users/$pwu" "$reg" '{"password":"another fine long passphrase"}' "b->>'email'"
t_api "after the change, the old password is 401" "401|unauthorized" \
	POST /auth/login "" "{\"email\":\"pw@reg-co.test\",\"password\":\"$pw\"}" "b->'error'->>'code'"
upw=$(login pw@reg-co.test 'another fine long passphrase')
if [ -n "$upw" ]; then ok "after the change, the new password logs in"
else not_ok "after the change, the new password logs in" "no token"; fi
t_eq "the password change is recorded once, with the admin as actor" 0 "1|admin" \
	-c "SELECT count(*), min(actor_role) FROM saas.audit_log WHERE org_id = '$rorg' AND action = 'password_change' AND entity_id = '$pwu'"
t_api "PUT /users/:id: a user changes its own password with its current one" "200|pw@reg-co.test" \
	PUT "/users/$pwu" "$upw" "{\"password\":\"$pw and more\",\"current_password\":\"another fine long passphrase\"}" "b->>'email'"
t_api "PUT /users/:id: a wrong current password is 403" "403|forbidden" \
	PUT "/users/$pwu" "$(login pw@reg-co.test "$pw and more")" "{\"password\":\"$pw\",\"current_password\":\"not it at all\"}" "b->'error'->>'code'"
upw=$(login pw@reg-co.test "$pw and more")
if [ -n "$upw" ]; then ok "the user's own change took, the refused one did not"
else not_ok "the user's own change took, the refused one did not" "no token"; fi
t_api "PUT /users/:id: a tenant admin cannot set another tenant's user's password (404)" "404|not_found" \
	PUT "/users/$pwu" "$a1" '{"password":"a takeover passphrase here"}' "b->'error'->>'code'"

# ---- The database is the guard: saas_api never reads a hash, writes one only through the API.
for n in 0 1; do
	t_error "node $n: app cannot read saas._credentials" 42501 \
		-h "$CITUS_DIR" -p "${CITUS_PORTS[$n]}" -U app -d "$CITUS_DB" -c "SELECT password_hash FROM saas._credentials"
done
# raw_cred TOKEN ORG USER: an INSERT of a hash by hand, as app with TOKEN's context.
raw_cred() {
	psql -X -q -At -v VERBOSITY=verbose -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U app -d "$CITUS_DB" 2>&1 <<SQL | grep -oE 'ERROR:  [0-9A-Z]{5}' | head -1
BEGIN;
SELECT saas.authenticate('$1') IS NOT NULL;
INSERT INTO saas._credentials (org_id, user_id, password_hash) VALUES ('$2', '$3', '\$argon2id\$v=19\$m=8,t=1,p=1\$c2FsdHNhbHQ\$aGFzaA');
COMMIT;
SQL
}
got=$(raw_cred "$reg" "$rorg" "$pwu")
if [ "$got" == "ERROR:  SA403" ]; then ok "an admin's hand-written hash for its own user is refused (403: through the API only)"
else not_ok "an admin's hand-written hash for its own user is refused (403: through the API only)" "$got"; fi
got=$(raw_cred "$a1" "$rorg" "$pwu")
if [ "$got" == "ERROR:  SA404" ]; then ok "a hash for another tenant's user is refused (404)"
else not_ok "a hash for another tenant's user is refused (404)" "$got"; fi
t_eq "the refused hand-written hashes changed nothing" 0 "1" \
	-c "SELECT count(*) FROM saas.audit_log WHERE org_id = '$rorg' AND action = 'password_change' AND entity_id = '$pwu' AND actor_role = 'user'"

# ---- Logout, logout-all: the events are recorded in the organization's chain, on its node.
t_api "POST /auth/logout answers 204 on the coordinator" "204|" POST /auth/logout "$upw" "" "NULL"
t_api "the logged-out token is 401" "401|unauthorized" GET /users "$upw" "" "b->'error'->>'code'"
t_eq "the logout is recorded once in the organization's chain" 0 "1" -c "SELECT $(audit_count "$rorg" logout "$pwu")"
t_eq "the logout entry, written on the worker, names the user and its role, and carries the request id" 0 "t|user|t" \
	-c "SELECT actor_id = entity_id, actor_role, request_id IS NOT NULL FROM saas.audit_log WHERE org_id = '$rorg' AND action = 'logout'"
upw2=$(login pw@reg-co.test "$pw and more")
t_api "POST /auth/logout-all answers 204" "204|" POST /auth/logout-all "$upw2" "" "NULL"
t_api "a token from before logout-all is 401" "401|unauthorized" GET "/users/$pwu" "$upw2" "" "b->'error'->>'code'"
t_eq "the logout-all is recorded once" 0 "1" -c "SELECT $(audit_count "$rorg" logout_all "$pwu")"
t_eq "the outbox keeps no row" 0 "0" -c "SELECT count(*) FROM saas._audit_outbox"
t_eq "saas.audit_verify: the registered organization's chain is intact, seq gapless" 0 "tt" \
	-c "SELECT '$(chain_ok "$rorg")'"
t_eq "saas.audit_verify: the created organization's chain is intact" 0 "tt" -c "SELECT '$(chain_ok "$morg")'"

# ---- The same through the SQL API functions, as app on the coordinator (autocommit statements).
# sqlapi SQL...: psql as app; prints the output, an error as its SQLSTATE.
sqlapi() {
	psql -X -q -At -v VERBOSITY=verbose -v ON_ERROR_STOP=1 -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U app -d "$CITUS_DB" "$@" 2>&1 |
		sed -nE 's/^.*ERROR:  ([0-9A-Z]{5}):.*$/\1/p; /ERROR|DETAIL|HINT|LOCATION|CONTEXT/!p'
}
stok=$(sqlapi -c "SELECT saas.register('{\"organization\":{\"name\":\"Sql Co\",\"slug\":\"sql-co\"},\"email\":\"owner@sql-co.test\",\"password\":\"$pw\",\"first_name\":\"S\",\"last_name\":\"Q\"}')->>'token'")
sorg=$(cpsql 0 -c "SELECT id FROM saas.organizations WHERE slug = 'sql-co'")
if [ -n "$sorg" ] && [ -n "$(login owner@sql-co.test "$pw")" ]; then ok "saas.register(): the organization exists and its admin logs in"
else not_ok "saas.register(): the organization exists and its admin logs in" "$stok"; fi
sown=$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'owner@sql-co.test'")
got=$(sqlapi -c "SELECT saas.authenticate('$stok') IS NOT NULL;
	SELECT saas.update_user('$sown', '{\"password\":\"$pw, changed\",\"current_password\":\"$pw\"}')->>'email'" | tail -1)
t_eq "saas.update_user(): its own password, with the current one, recorded once" 0 "owner@sql-co.test 1" \
	-c "SELECT '$got' || ' ' || $(audit_count "$sorg" password_change "$sown")"
if [ -n "$(login owner@sql-co.test "$pw, changed")" ]; then ok "saas.update_user(): the new password logs in"
else not_ok "saas.update_user(): the new password logs in"; fi
t_eq "saas.register() with a registered email is SA409" 0 "SA409" \
	-c "SELECT '$(sqlapi -c "SELECT saas.register('{\"organization\":{\"name\":\"Sql Two\"},\"email\":\"owner@sql-co.test\",\"password\":\"$pw\",\"first_name\":\"S\",\"last_name\":\"Q\"}')" | head -1)'"
t_eq "saas.register(): the chain of the new organization is intact" 0 "tt" -c "SELECT '$(chain_ok "$sorg")'"

# ---- Races on Citus: the organization's lock is taken on the node of its shards.
# session TOKEN SLEEP SQL: in one transaction as app with TOKEN's context, SQL, then sleep, then
# commit; prints "done" or the SQLSTATE of the error.
session() {
	local out
	out=$(psql -X -q -At -v VERBOSITY=verbose -v ON_ERROR_STOP=1 -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U app \
		-d "$CITUS_DB" 2>&1 >/dev/null <<SQL
BEGIN;
SELECT saas.authenticate('$1') IS NOT NULL;
$3;
SELECT pg_sleep($2);
COMMIT;
SQL
	) && echo done || echo "$out" | grep -oE 'ERROR:  [0-9A-Z]{5}' | head -1 | cut -c9-
}
# race TOKEN1 SQL1 TOKEN2 SQL2: the first holds its transaction open 2 s; the second starts
# 0.5 s later (and waits for the first's lock). Prints what each session printed.
race() {
	local f="$CITUS_WORK/race.$$"
	session "$1" 2 "$2" >"$f.1" &
	sleep 0.5
	session "$3" 0 "$4" >"$f.2" &
	wait
	echo "$(cat "$f.1") $(cat "$f.2")"
}
t_api "a second admin for the race" "201|admin" \
	POST /users "$reg" "{\"email\":\"second@reg-co.test\",\"first_name\":\"S\",\"last_name\":\"A\",\"role\":\"admin\",\"password\":\"$pw\"}" "b->>'role'"
sec=$(login second@reg-co.test "$pw")
reg=$(login owner@reg-co.test "$pw")
ownid=$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'owner@reg-co.test'")
secid=$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'second@reg-co.test'")
got=$(race "$reg" "UPDATE saas.users SET role = 'user' WHERE org_id = '$rorg' AND id = '$secid'" \
	"$sec" "UPDATE saas.users SET role = 'user' WHERE org_id = '$rorg' AND id = '$ownid'")
if [ "$got" == "done SA409" ]; then ok "two admins demote each other at once: exactly one wins"
else not_ok "two admins demote each other at once: exactly one wins" "$got"; fi
t_eq "the organization keeps one active admin" 0 "1" \
	-c "SELECT count(*) FROM saas.users WHERE org_id = '$rorg' AND role = 'admin' AND status = 'active'"
# The employee limit: made-co has one active user (its admin) and a limit of 2; two users created
# at once. Without the lock both would count one active user and both would be created.
t_api "the super_admin sets made-co's employee limit to 2" "200|2" \
	PUT "/organizations/$morg" "$root" '{"employee_limit":2}' "b->>'employee_limit'"
got=$(race "$made" "SELECT saas.create_user('{\"email\":\"one@made-co.test\",\"first_name\":\"O\",\"last_name\":\"N\",\"role\":\"user\"}')" \
	"$made" "SELECT saas.create_user('{\"email\":\"two@made-co.test\",\"first_name\":\"T\",\"last_name\":\"W\",\"role\":\"user\"}')")
if [ "$got" == "done SA409" ]; then ok "two users created at once against the employee limit: the second is refused"
else not_ok "two users created at once against the employee limit: the second is refused" "$got"; fi
t_eq "made-co has 2 active users, its limit" 0 "2" \
	-c "SELECT count(*) FROM saas.users WHERE org_id = '$morg' AND status = 'active'"
t_eq "the races leave the chains intact" 0 "tt tt" -c "SELECT '$(chain_ok "$rorg") $(chain_ok "$morg")'"
