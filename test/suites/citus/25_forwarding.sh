# Part of test/suites/80_citus.sh (sourced): what a request sends to the worker nodes, and that
# the tenant context forwarded to them never outlives its request (docs/scale-out.md, "The
# tenant context reaches the workers" and "Throughput"; src/common/citus_env.c).
#
# (a) A regression guard on the commands one single-tenant GET /users sends to the worker
#     nodes (counted with citus.log_remote_commands; not a timing).
# (b) Two saas.http requests with different tokens in one transaction each see their own
#     context on the workers, and the application's own SQL after them in the same transaction
#     sees none (fail closed): reads, a write, a cursor opened before, a DO block, savepoints,
#     a failed request, a subquery of the request's own statement.

# fw_sql: psql as the superuser on the coordinator with :t1 and :t2 (tenant 1's and tenant 2's
# admins' tokens); the SQL switches to app itself. Output and errors together.
fw_sql() {
	psql -X -q -At -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U postgres -d "$CITUS_DB" \
		-v t1="$a1" -v t2="$a2" 2>&1
}
# fw_want NAME WANT GOT: GOT has the line WANT.
fw_want() {
	if printf '%s\n' "$3" | grep -qxF -- "$2"; then ok "$1"; else not_ok "$1" "want the line: $2"$'\n'"got:"$'\n'"$3"; fi
}
fw_t1=00000000-0000-4000-8000-000000000001
fw_t2=00000000-0000-4000-8000-000000000002

# ---- (a) commands sent for one request (its context verified before: cached, as it is for
# the relay's requests after a client's first)
# (the facts of a verified token are cached for 4 s: a stall between the two requests makes the
# second read them again, with more commands; up to 3 tries)
for _ in 1 2 3; do
	out=$(fw_sql <<'SQL'
SET ROLE app;
SELECT 'warm=' || status FROM saas.http('GET', '/users?limit=50', jsonb_build_object('authorization', 'Bearer ' || :'t1'), NULL);
RESET ROLE;
SET citus.log_remote_commands = on;
SET client_min_messages = log;
SET ROLE app;
SELECT 'status=' || status FROM saas.http('GET', '/users?limit=50', jsonb_build_object('authorization', 'Bearer ' || :'t1'), NULL);
SQL
)
	cmds=$(printf '%s\n' "$out" | grep '^NOTICE:  issuing ' | sed 's/^NOTICE:  issuing //')
	n_cmds=$(printf '%s\n' "$cmds" | grep -c .)
	n_set=$(printf '%s\n' "$cmds" | grep -v '^BEGIN' | grep -c 'saas\.context\|saas\.request_id')
	[ "$n_cmds" -gt 4 ] || break
done
fw_want "GET /users answers 200 while the commands are counted" "status=200" "$out"
# Today: BEGIN (with the forwarded settings and the request's SAVEPOINT), the query, RELEASE
# SAVEPOINT, COMMIT. Before the forwarding was deferred: 5 (a SET LOCAL of the request id
# after the request), and 4 DO blocks on the coordinator.
if [ "$n_cmds" -ge 2 ] && [ "$n_cmds" -le 4 ]; then
	ok "a single-tenant GET /users sends at most 4 commands to the worker nodes ($n_cmds)"
else
	not_ok "a single-tenant GET /users sends at most 4 commands to the worker nodes ($n_cmds)" \
		"$(printf '%s\n' "$cmds" | sed -E 's/eyJ[A-Za-z0-9_.-]+/<token>/g' | cut -c1-200)"
fi
if [ "$n_set" -eq 0 ] && [ "$(printf '%s\n' "$cmds" | grep '^BEGIN' | grep -o 'SET LOCAL "saas.context" = .eyJ' | wc -l)" -eq 1 ]; then
	ok "the request's context and id travel once, in the BEGIN: no SET of their own, no restore after an autocommit request"
else
	not_ok "the request's context and id travel once, in the BEGIN: no SET of their own, no restore after an autocommit request" \
		"$(printf '%s\n' "$cmds" | sed -E 's/eyJ[A-Za-z0-9_.-]+/<token>/g' | cut -c1-200)"
fi

# ---- (b) one transaction, two tenants' requests, then the application's own SQL
out=$(fw_sql <<SQL
SET ROLE app;
BEGIN;
SELECT 'r1=' || status || ':' || (SELECT string_agg(DISTINCT u->>'org_id', ',') FROM jsonb_array_elements(body::jsonb->'data') u)
  FROM saas.http('GET', '/users', jsonb_build_object('authorization', 'Bearer ' || :'t1'), NULL);
SELECT 'r2=' || status || ':' || (SELECT string_agg(DISTINCT u->>'org_id', ',') FROM jsonb_array_elements(body::jsonb->'data') u)
  FROM saas.http('GET', '/users', jsonb_build_object('authorization', 'Bearer ' || :'t2'), NULL);
SELECT 'plain_users=' || count(*) FROM saas.users;
SELECT 'plain_t2=' || count(*) FROM saas.users WHERE org_id = '$fw_t2';
SELECT 'plain_audit=' || count(*) FROM saas.audit_log;
UPDATE saas.users SET last_name = 'Forwarded' WHERE org_id IN ('$fw_t1', '$fw_t2');
COMMIT;
SQL
)
fw_want "two requests in one transaction: the first sees its own tenant on the workers" "r1=200:$fw_t1" "$out"
fw_want "two requests in one transaction: the second sees its own tenant, not the first's" "r2=200:$fw_t2" "$out"
fw_want "plain SQL after them in the same transaction sees no tenant's users (fail closed)" "plain_users=0" "$out"
fw_want "plain SQL after them sees nothing of the last request's tenant, on its node" "plain_t2=0" "$out"
fw_want "plain SQL after them sees no audit entries on either worker node" "plain_audit=0" "$out"
t_eq "plain SQL after them in the same transaction changed no row of either tenant" 0 "0" \
	-c "SELECT count(*) FROM saas.users WHERE last_name = 'Forwarded'"

# The same after a request in each way a transaction goes on.
out=$(fw_sql <<'SQL'
SET ROLE app;
BEGIN;
DECLARE before_request CURSOR FOR SELECT 'cursor=' || count(*) FROM saas.users;
SELECT 'req=' || status FROM saas.http('GET', '/users', jsonb_build_object('authorization', 'Bearer ' || :'t1'), NULL);
FETCH before_request;
COMMIT;
BEGIN;
SELECT set_config('fw.t', :'t1', true) IS NULL;
DO $$DECLARE n bigint;
BEGIN
	PERFORM saas.http('GET', '/users', jsonb_build_object('authorization', 'Bearer ' || current_setting('fw.t')), NULL);
	SELECT count(*) INTO n FROM saas.users;
	RAISE NOTICE 'do_block=%', n;
END$$;
COMMIT;
BEGIN;
SELECT 'same_statement=' || r.status || ':' || (SELECT count(*) FROM saas.users)
  FROM saas.http('GET', '/users', jsonb_build_object('authorization', 'Bearer ' || :'t1'), NULL) r;
SELECT 'next_statement=' || count(*) FROM saas.users;
COMMIT;
BEGIN;
SAVEPOINT a;
SELECT 'req=' || status FROM saas.http('GET', '/users', jsonb_build_object('authorization', 'Bearer ' || :'t1'), NULL);
RELEASE a;
SELECT 'after_release=' || count(*) FROM saas.users;
SAVEPOINT b;
SELECT 'req=' || status FROM saas.http('GET', '/users', jsonb_build_object('authorization', 'Bearer ' || :'t1'), NULL);
ROLLBACK TO b;
SELECT 'after_rollback_to=' || count(*) FROM saas.users;
COMMIT;
BEGIN;
SELECT 'failed=' || status FROM saas.http('PUT', '/users/00000000-0000-4000-8000-00000000dead',
	jsonb_build_object('content-type', 'application/json', 'authorization', 'Bearer ' || :'t1'), '{"last_name":"X"}');
SELECT 'after_failed=' || count(*) FROM saas.users;
COMMIT;
BEGIN;
SELECT 'req=' || status FROM saas.http('GET', '/users', jsonb_build_object('authorization', 'Bearer ' || :'t1'), NULL);
SELECT saas.authenticate(:'t2') IS NULL;
SELECT 'authenticated=' || string_agg(DISTINCT org_id::text, ',') FROM saas.users;
COMMIT;
SQL
)
fw_want "a cursor declared before a request and read after it sees no tenant's users" "cursor=0" "$out"
fw_want "a DO block's query after its saas.http call sees no tenant's users" "NOTICE:  do_block=0" "$out"
fw_want "a subquery of the request's own statement sees no tenant's users" "same_statement=200:0" "$out"
fw_want "the next statement after it sees none either" "next_statement=0" "$out"
fw_want "a request under a released savepoint: the SQL after the RELEASE sees no tenant's users" "after_release=0" "$out"
fw_want "a request under a savepoint rolled back to: the SQL after it sees no tenant's users" "after_rollback_to=0" "$out"
fw_want "a failed request (404) answers its error" "failed=404" "$out"
fw_want "a failed request leaves no context on the workers" "after_failed=0" "$out"
fw_want "saas.authenticate after a request: the application's SQL sees that token's tenant only" \
	"authenticated=$fw_t2" "$out"
