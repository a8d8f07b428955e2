# Part of test/suites/80_citus.sh (sourced): the directories of users on Citus (docs/scale-out.md,
# "Directories"): external user ids unique across organizations, the email directory that login
# and registration read with one lookup, deleting users and organizations. Uses root, a1, a2.

t1=00000000-0000-4000-8000-000000000001
t2=00000000-0000-4000-8000-000000000002
t3=00000000-0000-4000-8000-000000000003

# appsql TOKEN SQL: SQL as app (a saas_api member) on the coordinator, in one transaction under
# the token's context; prints psql's output (errors with their SQLSTATE).
appsql() {
	psql -X -q -At -v VERBOSITY=verbose -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U app -d "$CITUS_DB" 2>&1 <<SQL
BEGIN;
SELECT FROM saas.authenticate('$1');
$2
COMMIT;
SQL
}
# t_app_error NAME SQLSTATE TOKEN SQL: the SQL fails with SQLSTATE.
t_app_error() {
	local got
	got=$(appsql "$3" "$4")
	if [[ "$got" == *"ERROR:  $2:"* ]]; then ok "$1"
	else not_ok "$1" "want SQLSTATE $2, got: $got"; fi
}
dir_of() {
	cpsql 0 -c "SELECT coalesce((SELECT string_agg(email, ',') FROM saas._user_emails WHERE user_id = '$1'), '') || '|' ||
		coalesce((SELECT string_agg(service_key || '=' || ref, ',' ORDER BY service_key) FROM saas._user_refs WHERE user_id = '$1'), '')"
}

# ---- External user ids: unique across organizations, through the API on the coordinator.
t_api "POST /users with external_user_ids: 201, the ids kept" "201|ext-1" \
	POST /users "$a1" '{"email":"d1@tenant-1.test","first_name":"D","last_name":"One","role":"user","status":"inactive","external_user_ids":{"user_service":"ext-1"}}' \
	"b->'external_user_ids'->>'user_service'"
d1=$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'd1@tenant-1.test'")
t_eq "the directories hold the new user's email and external id" 0 "d1@tenant-1.test|user_service=ext-1" -c "SELECT '$(dir_of "$d1")'"
t_api "the same external id in another organization is refused: 409 on its field, no shard name" \
	"409|external_user_ids.user_service|false" \
	POST /users "$a2" '{"email":"d2@tenant-2.test","first_name":"D","last_name":"Two","role":"user","status":"inactive","external_user_ids":{"user_service":"ext-1"}}' \
	"(b->'error'->'details'->0->>'field') || '|' || (b::text ~ '_[0-9]{6}')"
t_eq "the refused user was not created, nor its directory entries" 0 "0|0" \
	-c "SELECT (SELECT count(*) FROM saas.users WHERE email = 'd2@tenant-2.test'), (SELECT count(*) FROM saas._user_emails WHERE email = 'd2@tenant-2.test')"
t_api "PUT /users/:id changes the external ids" "200|ext-2" \
	PUT "/users/$d1" "$a1" '{"external_user_ids":{"user_service":"ext-2"}}' "b->'external_user_ids'->>'user_service'"
t_eq "the directory follows: the old id is free, the new one held" 0 "d1@tenant-1.test|user_service=ext-2" -c "SELECT '$(dir_of "$d1")'"
t_api "the freed external id can be linked in another organization" "201|ext-1" \
	POST /users "$a2" '{"email":"d2@tenant-2.test","first_name":"D","last_name":"Two","role":"user","status":"inactive","external_user_ids":{"user_service":"ext-1"}}' \
	"b->'external_user_ids'->>'user_service'"
t_api "PUT /users/:id to an external id held elsewhere is 409 on its field" "409|external_user_ids.user_service" \
	PUT "/users/$d1" "$a1" '{"external_user_ids":{"user_service":"ext-1"}}' "b->'error'->'details'->0->>'field'"

# ---- Deleting a user.
t_api "DELETE /users/:id is 204" "204|" DELETE "/users/$d1" "$a1" "" "NULL"
t_api "the deleted user is gone" "404|not_found" GET "/users/$d1" "$a1" "" "b->'error'->>'code'"
t_eq "its directory entries are gone" 0 "|" -c "SELECT '$(dir_of "$d1")'"
t_api "its external id is free again" "201|ext-2" \
	POST /users "$a2" '{"email":"d3@tenant-2.test","first_name":"D","last_name":"Three","role":"user","status":"inactive","external_user_ids":{"user_service":"ext-2"}}' \
	"b->'external_user_ids'->>'user_service'"
t_api "the deletion is recorded once in the audit log" "200|1" \
	GET "/audit-logs?entity=user&action=delete" "$a1" "" \
	"(SELECT count(*) FROM jsonb_array_elements(b->'data') e WHERE e->>'entity_id' = '$d1')"
t_eq "saas.audit_verify: tenant 1's chain is intact after the deletion" 0 "t" -c "SELECT ok FROM saas.audit_verify('$t1')"

# ---- The email directory: login reads it with one lookup, then the account by its key.
t_tasks "the email directory lookup of login is one task" 1 \
	"SELECT d.org_id, d.user_id FROM saas._user_emails d JOIN saas.organizations o ON o.id = d.org_id
	  WHERE d.email = 'admin@tenant-1.test' ORDER BY d.created_at, d.org_id, d.user_id LIMIT 3"
# (as the superuser, then the application's role: only a superuser may turn the logging on)
shards=$(psql -X -q -At -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U postgres -d "$CITUS_DB" 2>&1 <<'SQL' | grep -oE 'saas\.users_[0-9]+' | sort -u | wc -l
SET citus.log_remote_commands = on;
SET client_min_messages = log;
SET ROLE app;
SELECT status FROM saas.http('POST', '/auth/login', '{"content-type":"application/json"}',
	'{"email":"admin@tenant-1.test","password":"tenant admin password"}');
SQL
)
if [ "$shards" == "1" ]; then ok "POST /auth/login reads one shard of saas.users (citus.log_remote_commands), not every shard"
else not_ok "POST /auth/login reads one shard of saas.users (citus.log_remote_commands), not every shard" "shards read: $shards"; fi
# A password for tenant 2's plain user (as the owner: POST /users with a password is point 1).
cpsql 0 >/dev/null -c "INSERT INTO saas._credentials (org_id, user_id, password_hash)
	SELECT org_id, id, saas.hash_password('plain user password') FROM saas.users WHERE email = 'user@tenant-2.test'"
pw='plain user password'
t_api "a user logs in by its email" "200|true" POST /auth/login "" "{\"email\":\"user@tenant-2.test\",\"password\":\"$pw\"}" "b->>'token' IS NOT NULL"
u2=$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'user@tenant-2.test'")
t_api "PUT /users/:id renames the user's email" "200|renamed@tenant-2.test" \
	PUT "/users/$u2" "$a2" '{"email":"renamed@tenant-2.test"}' "b->>'email'"
t_api "the old email no longer logs in" "401|unauthorized" \
	POST /auth/login "" "{\"email\":\"user@tenant-2.test\",\"password\":\"$pw\"}" "b->'error'->>'code'"
t_api "the new email logs in" "200|true" POST /auth/login "" "{\"email\":\"renamed@tenant-2.test\",\"password\":\"$pw\"}" "b->>'token' IS NOT NULL"
t_api "DELETE /users/:id of the renamed user" "204|" DELETE "/users/$u2" "$a2" "" "NULL"
t_api "a deleted user's email no longer logs in" "401|unauthorized" \
	POST /auth/login "" "{\"email\":\"renamed@tenant-2.test\",\"password\":\"$pw\"}" "b->'error'->>'code'"
t_eq "the email directory has one entry per user, exactly the users' emails" 0 "t" \
	-c "SELECT (SELECT array_agg((org_id, id, email)::text ORDER BY id) FROM saas.users)
			 = (SELECT array_agg((org_id, user_id, email)::text ORDER BY user_id) FROM saas._user_emails)"

# ---- saas_api's own SQL cannot bypass the directories: refused, or kept exact.
d3=$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'd3@tenant-2.test'")
t_app_error "saas_api SQL: an email changed without its directory entry is refused" 55000 "$a2" \
	"UPDATE saas.users SET email = 'sneaky@tenant-2.test' WHERE org_id = '$t2' AND id = '$d3';"
t_app_error "saas_api SQL: external ids changed without their entries are refused" 55000 "$a2" \
	"UPDATE saas.users SET external_user_ids = '{\"user_service\":\"ext-9\"}' WHERE org_id = '$t2' AND id = '$d3';"
t_app_error "saas_api SQL: a user inserted without its entries is refused" 55000 "$a2" \
	"INSERT INTO saas.users (org_id, email, first_name, last_name, status) VALUES ('$t2', 'raw@tenant-2.test', 'R', 'W', 'inactive');"
t_app_error "saas_api SQL: a user deleted with its entries left is refused" 55000 "$a2" \
	"DELETE FROM saas.users WHERE org_id = '$t2' AND id = '$d3';"
t_app_error "saas_api SQL: another organization's external id cannot be claimed in the directory" 23505 "$a2" \
	"INSERT INTO saas._user_refs (service_key, ref, org_id, user_id) VALUES ('user_service', 'ext-1', '$t2', '$d3');"
t_app_error "saas_api SQL: no entry for another organization" 42501 "$a2" \
	"INSERT INTO saas._user_emails (email, org_id, user_id) VALUES ('x@tenant-1.test', '$t1', '$d3');"
t_app_error "saas_api SQL: no backdated email claim" 42501 "$a2" \
	"INSERT INTO saas._user_emails (email, org_id, user_id, created_at) VALUES ('old@tenant-2.test', '$t2', gen_random_uuid(), '2000-01-01');"
adm1=$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'admin@tenant-1.test'")
appsql "$a2" "SELECT saas._dir_drop('$t1', '$adm1');" >/dev/null
t_eq "saas_api SQL: another organization's entries cannot be dropped (the policies hide them)" 0 "admin@tenant-1.test|" \
	-c "SELECT '$(dir_of "$adm1")'"
got=$(appsql "$a2" "SELECT saas._dir_set('$t2', '$d3', 'kept@tenant-2.test', '{\"user_service\":\"ext-7\"}');
	UPDATE saas.users SET email = 'kept@tenant-2.test', external_user_ids = '{\"user_service\":\"ext-7\"}' WHERE org_id = '$t2' AND id = '$d3';")
echo "$got" | grep ERROR | sed "s/^/# /"
t_eq "saas_api SQL that writes the entries first is kept exact" 0 "kept@tenant-2.test|user_service=ext-7" -c "SELECT '$(dir_of "$d3")'"

# ---- Deleting an organization (the super_admin): its rows go from every shard, once.
cpsql 0 >/dev/null <<SQL
INSERT INTO saas.subscriptions (org_id, subscription_ref, status, last_event_at) VALUES ('$t3', 'sub-3', 'active', now());
BEGIN;
SELECT saas._dir_set('$t3', '$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'admin@tenant-3.test'")', NULL, '{"user_service":"ext-3"}');
UPDATE saas.users SET external_user_ids = '{"user_service":"ext-3"}' WHERE org_id = '$t3' AND email = 'admin@tenant-3.test';
COMMIT;
SQL
pending=$(cpsql 0 -c "SELECT count(*) FROM saas.jobs WHERE org_id = '$t3' AND state = 'available'")
others=$(cpsql 0 -c "SELECT count(*) FROM saas.users WHERE org_id <> '$t3'")
t_api "DELETE /organizations/:id by the super_admin is 204 ($pending pending calls before)" "204|" \
	DELETE "/organizations/$t3" "$root" "" "NULL"
t_eq "its organization, users, subscriptions and directory entries are gone from every node" 0 "0|0|0|0|0" \
	-c "SELECT (SELECT count(*) FROM saas.organizations WHERE id = '$t3'), (SELECT count(*) FROM saas.users WHERE org_id = '$t3'),
			   (SELECT count(*) FROM saas.subscriptions WHERE org_id = '$t3'), (SELECT count(*) FROM saas._user_emails WHERE org_id = '$t3'),
			   (SELECT count(*) FROM saas._user_refs WHERE org_id = '$t3')"
for n in 1 2; do
	t_eq "worker $n: no copy or shard holds the organization's rows" "$n" "0|0|0" \
		-c "SELECT (SELECT count(*) FROM saas.organizations WHERE id = '$t3'), (SELECT count(*) FROM saas._user_emails WHERE org_id = '$t3'),
				   (SELECT count(*) FROM saas.users WHERE org_id = '$t3')"
done
t_eq "its pending calls are dropped; the subscription's cancellation and the linked user's removal are enqueued once" 0 \
	"subscription.cancel,user.delete" \
	-c "SELECT string_agg(kind, ',' ORDER BY kind) FROM saas.jobs WHERE org_id = '$t3'"
t_eq "the deletion is recorded once in the organization's chain" 0 "1" \
	-c "SELECT count(*) FROM saas.audit_log WHERE org_id = '$t3' AND entity = 'organization' AND action = 'delete'"
t_eq "saas.audit_verify: the deleted organization's chain is intact" 0 "t" -c "SELECT ok FROM saas.audit_verify('$t3')"
t_eq "the other organizations' users are untouched" 0 "$others" -c "SELECT count(*) FROM saas.users WHERE org_id <> '$t3'"
t_api "GET /users of another tenant still answers" "200|true" GET /users "$a1" "" "jsonb_array_length(b->'data') > 0"
