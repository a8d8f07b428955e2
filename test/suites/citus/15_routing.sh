# Part of test/suites/80_citus.sh (sourced): the API's single-tenant requests are router
# queries end to end: with citus.log_remote_commands on, every command the coordinator sends
# for one request goes to the one worker node that holds the tenant's shards (reference tables
# are read from the coordinator's own copy), never to the other node.

# nodes_of METHOD PATH TOKEN [BODY]: "STATUS NODES" where NODES are the ports, sorted, that the
# coordinator sent commands to while saas.http answered the request.
nodes_of() {
	local out
	out=$(psql -X -q -At -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U postgres -d "$CITUS_DB" \
		-v m="$1" -v p="$2" -v t="$3" -v b="${4:-}" 2>&1 <<'SQL'
SET citus.log_remote_commands = on;
SET client_min_messages = log;
SET ROLE app;
SELECT 'status=' || status FROM saas.http(:'m', :'p',
	jsonb_build_object('content-type', 'application/json', 'authorization', 'Bearer ' || :'t'), NULLIF(:'b', ''));
SQL
)
	echo "$(echo "$out" | sed -n 's/^status=//p') $(echo "$out" | grep -oE 'on server [^ ]*@127\.0\.0\.1:[0-9]+' |
		sed 's/.*://' | sort -u | tr '\n' ' ' | sed 's/ $//')"
}
# The node of tenant 1's shards (its users' shard placement).
t1_port=$(cpsql 0 -c "SELECT nodeport FROM pg_dist_shard_placement
	WHERE shardid = get_shard_id_for_distribution_column('saas.users', '00000000-0000-4000-8000-000000000001'::uuid)")
t1_user=$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'user@tenant-1.test'")
for req in "GET /users" "GET /users/$t1_user" "GET /audit-logs?limit=5" "GET /organizations" \
	"GET /integrations/status"; do
	got=$(nodes_of ${req% *} "${req#* }" "$a1")
	name="${req/$t1_user/:id} of a tenant admin talks to its shards' node only"
	if [ "$got" == "200 $t1_port" ]; then ok "$name"; else not_ok "$name" "want: 200 $t1_port"$'\n'"got:  $got"; fi
done
# (the admin's own row: later parts count the changes of tenant 1's other user)
t1_admin=$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'admin@tenant-1.test'")
got=$(nodes_of PUT "/users/$t1_admin" "$a1" '{"last_name":"Routed"}')
if [ "$got" == "200 $t1_port" ]; then ok "PUT /users/:id of a tenant admin writes on its shards' node only"
else not_ok "PUT /users/:id of a tenant admin writes on its shards' node only" "want: 200 $t1_port"$'\n'"got:  $got"; fi
# The probe sees fan-out: the super_admin's queue status covers every organization, on both nodes.
got=$(nodes_of GET /integrations/status "$root")
if [[ "$got" == "200 "* && " $got " == *" ${CITUS_PORTS[1]} "* && " $got " == *" ${CITUS_PORTS[2]} "* ]]; then
	ok "the probe sees fan-out: the super_admin's GET /integrations/status reads both worker nodes"
else
	not_ok "the probe sees fan-out: the super_admin's GET /integrations/status reads both worker nodes" \
		"want: 200 and ports ${CITUS_PORTS[1]} ${CITUS_PORTS[2]}"$'\n'"got:  $got"
fi

# Secrets never reach the server log: with the commands Citus sends logged (a superuser's
# session setting), the context tokens forwarded to the worker nodes are cut out.
before=$(stat -c %s "$CITUS_DIR/coord.log")
psql -X -q -At -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U postgres -d "$CITUS_DB" -v t="$a1" >/dev/null 2>&1 <<'SQL'
SET log_min_messages = notice;
SET citus.log_remote_commands = on;
SET ROLE app;
SELECT status FROM saas.http('GET', '/users', jsonb_build_object('authorization', 'Bearer ' || :'t'), NULL);
SQL
logged=$(tail -c +$((before + 1)) "$CITUS_DIR/coord.log")
tok_sig=${a1##*.}
if echo "$logged" | grep -q 'issuing .*"saas.context" = '"'"'\[redacted\]'"'" && ! echo "$logged" | grep -qF "$tok_sig"; then
	ok "the server log shows the forwarded context as [redacted], never the token"
else
	not_ok "the server log shows the forwarded context as [redacted], never the token" \
		"$(echo "$logged" | grep -E 'saas.context|issuing' | head -3 | cut -c1-300)"
fi
# ... and no client can read them: citus.log_remote_commands, which echoes every command Citus
# sends as a NOTICE, is for superusers only where pg_saas is loaded (Citus lets anyone set it).
t_error "app cannot turn citus.log_remote_commands on (SET)" 42501 \
	-h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U app -d "$CITUS_DB" -c "SET citus.log_remote_commands = on"
t_error "app cannot turn citus.log_remote_commands on (set_config)" 42501 \
	-h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U app -d "$CITUS_DB" -c "SELECT set_config('citus.log_remote_commands', 'on', true)"
got=$(PGOPTIONS="-c citus.log_remote_commands=on" psql -X -q -At -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U app -d "$CITUS_DB" \
	-c "SHOW citus.log_remote_commands" 2>&1)
# (a startup option that fails its check refuses the connection)
if [ "$got" == "off" ] || echo "$got" | grep -q "only a superuser may turn citus.log_remote_commands on"; then ok "app cannot turn citus.log_remote_commands on from its connection options"
else not_ok "app cannot turn citus.log_remote_commands on from its connection options" "$got"; fi
t_error "app cannot turn citus.log_remote_commands on a worker node either" 42501 \
	-h "$CITUS_DIR" -p "${CITUS_PORTS[1]}" -U app -d "$CITUS_DB" -c "SET citus.log_remote_commands = on"
# A role setting is applied at login with the role's rights: refused too (a WARNING, the value stays off).
cpsql 0 -c "ALTER ROLE app IN DATABASE $CITUS_DB SET citus.log_remote_commands = on" >/dev/null
got=$(psql -X -q -At -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U app -d "$CITUS_DB" -c "SHOW citus.log_remote_commands" 2>/dev/null)
cpsql 0 -c "ALTER ROLE app IN DATABASE $CITUS_DB RESET citus.log_remote_commands" >/dev/null
if [ "$got" == "off" ]; then ok "app cannot turn citus.log_remote_commands on through a role setting"
else not_ok "app cannot turn citus.log_remote_commands on through a role setting" "SHOW: $got"; fi
