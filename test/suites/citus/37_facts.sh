# Part of test/suites/80_citus.sh (sourced): the facts a context depends on (its user's status,
# role and sessions; an API key's state) are read over the caller's own connection, on the node
# of the organization's shards (docs/scale-out.md, "A context's facts travel over the caller's
# connection"). Read as the owner they were refused (25001) once the caller had written those
# placements in the transaction: a transaction longer than the facts' 4 s cache failed, and so did
# another context verified after the application's own writes. Uses a1, a2 (tenant admins).

f1org=$(cpsql 0 -c "SELECT id FROM saas.organizations WHERE slug = 'tenant-1'")
f2org=$(cpsql 0 -c "SELECT id FROM saas.organizations WHERE slug = 'tenant-2'")

# t_app_xact NAME WANT SQL: SQL as app in one transaction on the coordinator prints WANT
# (psql -At, errors included).
t_app_xact() {
	local name=$1 want=$2 got
	got=$(psql -X -q -At -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U app -d "$CITUS_DB" 2>&1 <<SQL
BEGIN;
$3
COMMIT;
SQL
)
	if [ "$got" == "$want" ]; then ok "$name"; else not_ok "$name" "want: $want"$'\n'"got:  $got"; fi
}

t_app_xact "a transaction longer than the facts' cache writes, waits 4.2 s and writes again (was 25001)" \
	"t
slept
Long1 Long2" "
SELECT saas.authenticate('$a1') IS NOT NULL;
UPDATE saas.users SET first_name = 'Long1' WHERE org_id = '$f1org' AND email = 'user@tenant-1.test';
SELECT 'slept' FROM pg_sleep(4.2);
UPDATE saas.users SET last_name = 'Long2' WHERE org_id = '$f1org' AND email = 'user@tenant-1.test';
SELECT first_name || ' ' || last_name FROM saas.users WHERE email = 'user@tenant-1.test';"
t_eq "(its writes committed)" 0 "Long1 Long2" \
	-c "SELECT first_name || ' ' || last_name FROM saas.users WHERE email = 'user@tenant-1.test'"

t_app_xact "another context verified after the application's own writes of both tenants' placements (was 25001)" \
	"t
0
0
t
2
0" "
SELECT saas.authenticate('$a1') IS NOT NULL;
WITH u AS (UPDATE saas.users SET first_name = 'Mallory' WHERE org_id = '$f2org' RETURNING 1) SELECT count(*) FROM u;
WITH u AS (UPDATE saas.organizations SET name = 'pwned' WHERE id = '$f2org' RETURNING 1) SELECT count(*) FROM u;
SELECT saas.authenticate('$a2') IS NOT NULL;
SELECT count(*) FROM saas.users WHERE org_id = '$f2org' AND first_name <> 'Mallory';
SELECT count(*) FROM saas.users WHERE org_id = '$f1org';"

fkey=$(api POST /api-keys "$a1" '{"name":"long transactions","scopes":["users:read","users:write"]}' "b->>'key'" | sed -n 's/^201|//p')
fkeyid=$(echo "$fkey" | cut -d_ -f3)
# The same key with one character of its secret changed (not the last: its low bits are padding).
fkey_wrong=$(echo "$fkey" | sed -E 's/(.)(.{8})$/\2\1/; t; s/$//')
[ "$fkey_wrong" != "$fkey" ] || fkey_wrong="${fkey}x"
t_app_xact "an API key's transaction longer than the key's cache, then the key presented again (was 25001)" \
	"t
longkey@tenant-1.test
slept
1
t" "
SELECT saas.authenticate_api_key('$fkey') ->> 'org_id' = '$f1org';
SELECT saas.create_user('{\"email\":\"longkey@tenant-1.test\",\"first_name\":\"L\",\"last_name\":\"K\",\"role\":\"user\"}') ->> 'email';
SELECT 'slept' FROM pg_sleep(4.2);
SELECT count(*) FROM saas.users WHERE email = 'longkey@tenant-1.test';
SELECT saas.authenticate_api_key('$fkey') ->> 'org_id' = '$f1org';"
t_app_xact "a wrong secret for that key is still refused after the transaction's writes" \
	"ERROR:  invalid API key: the API key is revoked, expired or not valid" "
SELECT saas.authenticate('$a1') IS NOT NULL AS x \\gset
UPDATE saas.users SET first_name = 'W' WHERE org_id = '$f1org' AND email = 'longkey@tenant-1.test';
SELECT saas.authenticate_api_key('$fkey_wrong');"

# The facts functions answer only a caller that proves its right, on any node.
t1tok_tampered=$(echo "$a1" | sed -E 's/\.([^.]*)$/.AAAA\1/')
for n in 0 1; do
	t_eq "node $n: saas._context_facts gives a token's holder its own user's facts" "$n" "t|t|admin" \
		-c "SET ROLE app" -c "SELECT (f).user_active, (f).org_active, (f).role FROM (SELECT saas._context_facts('$a1') f) q"
	t_eq "node $n: saas._context_facts: nothing for a tampered token or an API key" "$n" "t|t" \
		-c "SET ROLE app" -c "SELECT saas._context_facts('$t1tok_tampered') IS NULL, saas._context_facts('$fkey') IS NULL"
	t_eq "node $n: saas._context_facts: nothing for an API key's context token" "$n" "t" \
		-c "SET ROLE app" -c "SELECT saas.authenticate_api_key('$fkey') IS NULL OR saas._context_facts(current_setting('saas.context')) IS NULL"
	t_eq "node $n: saas._api_key_facts: nothing without proof, for a wrong secret, a user's token or another org's key" "$n" "t|t|t|t" \
		-c "SET ROLE app" -c "SELECT saas._api_key_facts(NULL, '$f1org', '$fkeyid', NULL) IS NULL,
			saas._api_key_facts(NULL, '$f1org', '$fkeyid', sha256('not the secret')) IS NULL,
			saas._api_key_facts('$a1', '$f1org', '$fkeyid', NULL) IS NULL,
			saas._api_key_facts(NULL, '$f2org', '$fkeyid', sha256('x')) IS NULL"
done

# Logout and logout-all run on the organization's node over the caller's connection
# (saas._logout_here): after the transaction's own writes too, through SQL and saas.http.
# Tokens of their own for tenant-1's admin (logging them out leaves a1 alone).
ftok=$(login admin@tenant-1.test 'tenant admin password')
ftok2=$(login admin@tenant-1.test 'tenant admin password')
ftok3=$(login admin@tenant-1.test 'tenant admin password')
t_app_xact "SQL: logout after the transaction's own writes (was 25001)" \
	"t
done" "
SELECT saas.authenticate('$ftok') IS NOT NULL;
UPDATE saas.users SET first_name = 'W' WHERE org_id = '$f1org' AND email = 'longkey@tenant-1.test';
SELECT 'done' FROM saas.logout();"
t_eq "(that token is ended, everywhere)" 0 "ERROR:  invalid token: the session has ended (logout or password change); log in again" \
	-c "SET ROLE app" -c "\\set VERBOSITY terse" -c "SELECT saas.authenticate('$ftok')"
t_eq "(another token of the same user still works)" 0 "t" \
	-c "SET ROLE app" -c "SELECT saas.authenticate('$ftok2') IS NOT NULL"
t_app_xact "saas.http: POST /auth/logout after the transaction's own writes answers 204 (was 500)" \
	"t
204" "
SELECT saas.authenticate('$ftok2') IS NOT NULL;
UPDATE saas.users SET first_name = 'X' WHERE org_id = '$f1org' AND email = 'longkey@tenant-1.test';
SELECT r.status FROM saas.http('POST', '/auth/logout', jsonb_build_object('authorization', 'Bearer $ftok2'), NULL) r;"
t_api "(that token is refused afterwards: 401)" "401|unauthorized" GET /users "$ftok2" "" "b->'error'->>'code'"
t_eq "(both logouts are in the organization's audit chain after their updates, which verifies)" 0 "logout|update|logout|update|t" \
	-c "SELECT string_agg(action, '|' ORDER BY seq DESC), (SELECT ok FROM saas.audit_verify('$f1org'))
		FROM (SELECT seq, action FROM saas.audit_log WHERE org_id = '$f1org' AND entity = 'user'
			   ORDER BY seq DESC LIMIT 4) l"
t_app_xact "saas._logout_here ends only the context's own token, of its own organization (404 otherwise)" \
	"t
ERROR:  organization not found" "
SELECT saas.authenticate('$ftok3') IS NOT NULL;
\\set VERBOSITY terse
SELECT saas._logout_here('$f2org', true);"

# What still acts as the owner (a password set or changed: the write section of POST /users with a
# password) cannot follow the transaction's own writes to the organization (Citus's 25001): the
# SQL caller gets a hint that says what to do, saas.http a 409 that says it.
t_app_xact "SQL: a user with a password after the transaction's own writes is refused with a hint saying what to do" \
	"t
ERROR:  cannot perform query on placements that were modified in this transaction by a different user
HINT:  On Citus, setting or changing a password acts as the pg_saas extension owner, which cannot follow this transaction's own writes to the same organization: do it in a transaction of its own, or before those writes (docs/scale-out.md)." "
SELECT saas.authenticate('$ftok3') IS NOT NULL;
UPDATE saas.users SET first_name = 'W' WHERE org_id = '$f1org' AND email = 'longkey@tenant-1.test';
\\set VERBOSITY default
\\set SHOW_CONTEXT never
SELECT saas.create_user('{\"email\":\"pw1@tenant-1.test\",\"first_name\":\"P\",\"last_name\":\"W\",\"role\":\"user\",\"password\":\"a long password one\"}');"
t_app_xact "saas.http: the same answers 409 with that explanation, not 500" \
	"t
409|conflict|true" "
SELECT saas.authenticate('$ftok3') IS NOT NULL;
UPDATE saas.users SET first_name = 'W' WHERE org_id = '$f1org' AND email = 'longkey@tenant-1.test';
SELECT r.status || '|' || (r.body::jsonb -> 'error' ->> 'code') || '|' || (r.body::jsonb -> 'error' ->> 'message' LIKE 'on Citus this operation of pg_saas acts as the extension owner%')
  FROM saas.http('POST', '/users', jsonb_build_object('authorization', 'Bearer $ftok3', 'content-type', 'application/json'),
	'{\"email\":\"pw1@tenant-1.test\",\"first_name\":\"P\",\"last_name\":\"W\",\"role\":\"user\",\"password\":\"a long password one\"}') r;"
t_api "(control) the same in a request of its own: 201" "201|pw1@tenant-1.test" POST /users "$ftok3" \
	'{"email":"pw1@tenant-1.test","first_name":"P","last_name":"W","role":"user","password":"a long password one"}' "b->>'email'"

# The audit chain's verification by a tenant's admin runs on the organization's node over the
# caller's connection (saas._audit_verify_here): after the transaction's own writes too.
t_app_xact "audit_verify by the tenant's admin after the transaction's own writes (was 25001)" \
	"t
t" "
SELECT saas.authenticate('$a1') IS NOT NULL;
UPDATE saas.users SET first_name = 'V' WHERE org_id = '$f1org' AND email = 'longkey@tenant-1.test';
SELECT ok FROM saas.audit_verify('$f1org');"
t_app_xact "saas._audit_verify_here keeps audit_verify's rights: another tenant's admin gets 404 (organization not found)" \
	"t
ERROR:  organization not found" "
SELECT saas.authenticate('$a2') IS NOT NULL;
\\set VERBOSITY terse
SELECT saas._audit_verify_here('$f1org');"
t_eq "(and without a context)" 0 "ERROR:  authentication required" \
	-c "SET ROLE app" -c "\\set VERBOSITY terse" -c "SELECT saas._audit_verify_here('$f1org')"
