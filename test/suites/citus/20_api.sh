# Part of test/suites/80_citus.sh (sourced): the API on the coordinator, reads and writes, each
# change audited once. Uses root, a1, a2 (tokens) from the suite.

# The tenant context reaches the workers: each admin sees its own organization's users, and
# only those (the rows are on the shards; without the context they would see none).
t_api "GET /users: tenant 1's admin sees its 2 users, and only tenant 1's" "200|2 true" \
	GET /users "$a1" "" "(SELECT count(*) || ' ' || bool_and(u->>'org_id' = '00000000-0000-4000-8000-000000000001') FROM jsonb_array_elements(b->'data') u)"
t_api "GET /users: tenant 2's admin sees its 2 users" "200|admin@tenant-2.test,user@tenant-2.test" \
	GET /users "$a2" "" "(SELECT string_agg(u->>'email', ',' ORDER BY u->>'email') FROM jsonb_array_elements(b->'data') u)"
t_api "GET /users?limit=1 pages on Citus too" "200|1 true" \
	GET "/users?limit=1" "$a1" "" "jsonb_array_length(b->'data') || ' ' || (b->>'next_cursor' IS NOT NULL)"
u2=$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'user@tenant-2.test'")
t_api "GET /users/:id of another tenant's user is 404" "404|not_found" \
	GET "/users/$u2" "$a1" "" "b->'error'->>'code'"
t_api "GET /users/:id of its own user is 200" "200|user@tenant-2.test" \
	GET "/users/$u2" "$a2" "" "b->>'email'"
t_api "GET /organizations: a tenant admin sees its own organization only" "200|tenant-1" \
	GET /organizations "$a1" "" "(SELECT string_agg(o->>'slug', ',') FROM jsonb_array_elements(b->'data') o)"
t_api "GET /organizations: the super_admin sees all 9" "200|9" \
	GET "/organizations?limit=50" "$root" "" "jsonb_array_length(b->'data')"
t_api "GET /organizations/:id of another organization is 404 for a tenant admin" "404|not_found" \
	GET /organizations/00000000-0000-4000-8000-000000000002 "$a1" "" "b->'error'->>'code'"
t_api "GET /audit-logs: the entries recorded before distribute(), of the caller's organization only" "200|true" \
	GET /audit-logs "$a1" "" "jsonb_array_length(b->'data') >= 1 AND (SELECT bool_and(e->>'org_id' = '00000000-0000-4000-8000-000000000001') FROM jsonb_array_elements(b->'data') e)"
t_api "GET /users without a token is 401" "401|unauthorized" \
	GET /users "" "" "b->'error'->>'code'"
# Errors from the shards map like on a single node, without shard names.
t_api "POST /users with an email taken in the organization is 409 on field email, no shard name in the answer" \
	"409|email a resource with this value already exists" \
	POST /users "$a1" '{"email":"user@tenant-1.test","first_name":"U","last_name":"B","role":"user","status":"inactive"}' \
	"(b->'error'->'details'->0->>'field') || ' ' || (b->'error'->>'message')"
# Writes: the audit chain of an organization is written on the node that holds its shards.
u1=$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'user@tenant-1.test'")
t_api "PUT /users/:id: an admin renames a user of its organization" "200|Renamed" \
	PUT "/users/$u1" "$a1" '{"first_name":"Renamed"}' "b->>'first_name'"
t_api "GET /users/:id shows the new name" "200|Renamed 2" \
	GET "/users/$u1" "$a1" "" "(b->>'first_name') || ' ' || (b->>'version')"
t_api "GET /audit-logs: the rename is recorded once, with its actor" "200|1 admin" \
	GET "/audit-logs?entity=user&action=update" "$a1" "" \
	"(SELECT count(*) || ' ' || min(e->>'actor_role') FROM jsonb_array_elements(b->'data') e WHERE e->>'entity_id' = '$u1')"
t_api "PUT /organizations/:id: an admin renames its organization" "200|Tenant One" \
	PUT /organizations/00000000-0000-4000-8000-000000000001 "$a1" '{"name":"Tenant One"}' "b->>'name'"
t_api "GET /audit-logs: the organization's rename is recorded once (a reference table has a copy on every node)" "200|1" \
	GET "/audit-logs?entity=organization&action=update" "$a1" "" "jsonb_array_length(b->'data')"
t_api "POST /users: an admin creates an inactive user" "201|inactive" \
	POST /users "$a1" '{"email":"new@tenant-1.test","first_name":"N","last_name":"U","role":"user","status":"inactive"}' "b->>'status'"
t_api "POST /users: an admin creates an active user (the employee limit is counted under the organization's lock)" "201|active" \
	POST /users "$a1" '{"email":"act@tenant-1.test","first_name":"N","last_name":"U","role":"user"}' "b->>'status'"
t_api "PUT /users/:id: an admin activates the inactive user" "200|active" \
	PUT "/users/$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'new@tenant-1.test'")" "$a1" '{"status":"active"}' "b->>'status'"
t_api "PUT /organizations/:id: the super_admin raises an employee limit" "200|50" \
	PUT /organizations/00000000-0000-4000-8000-000000000006 "$root" '{"employee_limit":50}' "b->>'employee_limit'"
t_eq "saas.audit_verify: tenant 1's chain is intact after writes on the worker" 0 "t" \
	-c "SELECT ok FROM saas.audit_verify('00000000-0000-4000-8000-000000000001')"
t_eq "the entries written on the workers carry the request id of their API request" 0 "0|t" \
	-c "SELECT count(*) FILTER (WHERE request_id IS NULL), count(*) > 0 FROM saas.audit_log WHERE action = 'update'"
t_eq "every change of tenant 1 is in its chain once (seq gapless)" 0 "t" \
	-c "SELECT count(*) = max(seq) AND count(DISTINCT seq) = count(*) FROM saas.audit_log WHERE org_id = '00000000-0000-4000-8000-000000000001'"
q1=$(cpsql 0 -c "SELECT count(*) FROM saas.jobs WHERE org_id = '00000000-0000-4000-8000-000000000001'
	AND service = 'user-service' AND state IN ('available', 'running')")
qall=$(cpsql 0 -c "SELECT count(*) FROM saas.jobs WHERE service = 'user-service' AND state IN ('available', 'running')")
t_api "GET /integrations/status: a tenant admin sees its own organization's queue ($q1 user-service jobs)" "200|$q1 OK" \
	GET /integrations/status "$a1" "" "(b->'userService'->>'queued') || ' ' || (b->'userService'->>'status')"
t_api "GET /integrations/status: the super_admin sees every organization's queue ($qall user-service jobs)" "200|$qall 3" \
	GET /integrations/status "$root" "" "(b->'userService'->>'queued') || ' ' || (SELECT count(*) FROM jsonb_object_keys(b))"
