# Part of test/suites/80_citus.sh (sourced last: it retires the key every earlier token was
# signed with): cached configuration (signing keys, rate limits: reference tables) changed
# through the coordinator takes effect at once in sessions already open, on the coordinator
# and on a worker node. The tables' change triggers fire on each node's copy of the table
# (rate_limits_102012), and invalidate the logical table that the caches follow.

# held_session NODE SQL-BEFORE CHANGE-SQL SQL-AFTER: one session as app on NODE runs
# SQL-BEFORE, then (while it stays open) the superuser runs CHANGE-SQL on the coordinator, then
# the session runs SQL-AFTER; the session's output.
held_session() {
	psql -X -q -At -h "$CITUS_DIR" -p "${CITUS_PORTS[$1]}" -U app -d "$CITUS_DB" 2>&1 <<SQL
$2
\! psql -X -q -At -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U postgres -d "$CITUS_DB" -c "$3" >/dev/null
$4
SQL
}
login_as() {
	echo "SELECT status FROM saas.http('POST', '/auth/login', '{\"content-type\":\"application/json\"}', '{\"email\":\"$1\",\"password\":\"not the password\"}');"
}
got=$(held_session 0 "$(login_as admin@tenant-2.test)" \
	"UPDATE saas.rate_limits SET requests_per_minute = 1, burst = 1 WHERE tier = '*' AND scope = 'auth_email'" \
	"$(login_as admin@tenant-2.test) $(login_as admin@tenant-2.test)" | tr '\n' ' ')
if [ "$got" == "401 429 429 " ]; then ok "a lowered rate limit takes effect at once in a coordinator session that had the limits cached"
else not_ok "a lowered rate limit takes effect at once in a coordinator session that had the limits cached" "statuses: $got (want 401 429 429)"; fi
cpsql 0 -c "UPDATE saas.rate_limits SET requests_per_minute = 20, burst = 10 WHERE tier = '*' AND scope = 'auth_email'" >/dev/null

newkid=$(cpsql 0 -c "SELECT saas.rotate_signing_key()")
t_eq "saas.rotate_signing_key() adds a key on every node" 1 "1" -c "SELECT count(*) FROM saas._signing_keys WHERE kid = '$newkid'"
oldkid=$(cpsql 0 -c "SELECT kid FROM saas._signing_keys WHERE kid <> '$newkid' AND retired_at IS NULL ORDER BY created_at LIMIT 1")
get_users="SELECT status FROM saas.http('GET', '/users', '{\"authorization\":\"Bearer $a1\"}', NULL);"
# Queries run on a worker node too (Citus keeps the metadata on every node): a session there
# verifies tokens with its own cached keys.
got=$(held_session 1 "$get_users" "SELECT saas.retire_signing_key('$oldkid')" "$get_users" | tr '\n' ' ')
if [ "$got" == "200 401 " ]; then ok "a session held open on a worker node refuses a token of the retired key at once"
else not_ok "a session held open on a worker node refuses a token of the retired key at once" "statuses: $got (want 200 401)"; fi
t_eq "saas.retire_signing_key() retired the old key on every node" 2 "t" -c "SELECT retired_at IS NOT NULL FROM saas._signing_keys WHERE kid = '$oldkid'"
t_api "a token signed with the retired key stops verifying at once" "401|unauthorized" \
	GET /users "$a1" "" "b->'error'->>'code'"
a1=$(login admin@tenant-1.test 'tenant admin password')
t_api "a new login is signed with the new key and works" "200|1" \
	GET "/users?role=admin" "$a1" "" "(SELECT count(*) FROM jsonb_array_elements(b->'data'))::text || ''"
