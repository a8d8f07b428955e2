# Part of test/suites/80_citus.sh (sourced): the trusted-token channel (docs/scale-out.md, "The
# extension's trusted contexts"). The extension's own short trusted contexts reach the worker
# nodes as the text of a forwarded SET LOCAL, which another session of the same role can read in
# pg_stat_activity. Such a token, set by app, must give no trusted rights anywhere: on the
# coordinator, on a worker node directly, forwarded by app itself. The API's trusted writes run
# over the extension owner's connections, which honour it (30_register and 95_e2e test them).
# Uses a1 (tenant-1's admin token) from the suite.

tpw="correct horse battery staple"

# b64url: stdin as unpadded base64url.
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# A trusted token for tenant-1's plain user as its admin, signed with the active key: what a
# replay of a token read in pg_stat_activity gives (the extension mints them the same way).
t1org=$(cpsql 0 -c "SELECT id FROM saas.organizations WHERE slug = 'tenant-1'")
t1user=$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'user@tenant-1.test'")
read -r tkid tsecret < <(cpsql 0 -F ' ' -c "SELECT kid, encode(secret, 'hex') FROM saas._signing_keys
	WHERE retired_at IS NULL ORDER BY created_at DESC, kid DESC LIMIT 1")
tphc=$(cpsql 0 -c "SELECT saas.hash_password('a replayed password')")
tnow=$(date +%s)
tsi="$(printf '{"alg":"HS256","typ":"JWT","kid":"%s"}' "$tkid" | b64url).$(printf \
	'{"iss":"pg_saas","aud":"pg_saas_api","sub":"%s","org_id":"%s","role":"admin","iat":%s,"nbf":%s,"exp":%s,"jti":"replay-%s","trusted":true}' \
	"$t1user" "$t1org" "$tnow" "$tnow" $((tnow + 300)) "$tnow" | b64url)"
ttok="$tsi.$(printf '%s' "$tsi" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$tsecret" -binary | b64url)"

# as_app NODE SQL: SQL in one transaction as app on NODE, with the trusted token set the way
# Citus forwards it (so it also reaches the nodes the statement is sent to).
as_app() {
	psql -X -q -At -v VERBOSITY=verbose -h "$CITUS_DIR" -p "${CITUS_PORTS[$1]}" -U app -d "$CITUS_DB" 2>&1 <<SQL
BEGIN;
SET LOCAL citus.propagate_set_commands = 'local';
SET LOCAL saas.context = '$ttok';
$2
COMMIT;
SQL
}

t_eq "(control) the replayed trusted token is valid: a superuser's session on a worker honours it" 1 "$t1org|t" \
	-c "SET saas.context = '$ttok'" -c "SELECT saas.current_org_id(), saas._context_trusted()"
for n in 0 1 2; do
	got=$(as_app "$n" "SELECT coalesce(saas.current_org_id()::text, 'null') || ' ' || saas._context_trusted();")
	if [ "$got" == "null false" ]; then ok "node $n: app with the trusted token has no context"
	else not_ok "node $n: app with the trusted token has no context" "got: $got"; fi
	got=$(as_app "$n" "UPDATE saas.users SET role = 'admin' WHERE org_id = '$t1org' AND id = '$t1user';")
	if [ "$got" == "" ]; then
		got=$(as_app "$n" "SELECT count(*) FROM saas.users WHERE org_id = '$t1org';")
	fi
	if [ "$got" == "0" ]; then ok "node $n: with it, app sees no user and cannot make the plain user admin"
	else not_ok "node $n: with it, app sees no user and cannot make the plain user admin" "got: $got"; fi
	got=$(as_app "$n" "INSERT INTO saas._credentials (org_id, user_id, password_hash) VALUES ('$t1org', '$t1user', '$tphc');")
	if echo "$got" | grep -q "ERROR:  SA401:"; then ok "node $n: with it, app cannot write a password hash (SA401)"
	else not_ok "node $n: with it, app cannot write a password hash (SA401)" "got: $got"; fi
done
t_eq "the plain user is still a plain user, its password unchanged" 0 "user|f" \
	-c "SELECT u.role, coalesce(c.password_hash = '$tphc', false) FROM saas.users u LEFT JOIN saas._credentials c
		ON c.org_id = u.org_id AND c.user_id = u.id WHERE u.org_id = '$t1org' AND u.id = '$t1user'"
t_error "app cannot set saas._trusted (the minting backend's own setting) on a worker" 42501 \
	-h "$CITUS_DIR" -p "${CITUS_PORTS[1]}" -U app -d "$CITUS_DB" -c "SET saas._trusted = 'a.b.c'"

# The API's trusted steps, on the coordinator as app, still work (more in 30_register).
t_api "POST /users with a password works (the write over the owner's connections)" "201|active" \
	POST /users "$a1" "{\"email\":\"trust@tenant-1.test\",\"first_name\":\"T\",\"last_name\":\"R\",\"role\":\"user\",\"password\":\"$tpw\"}" "b->>'status'"
tru=$(login trust@tenant-1.test "$tpw")
if [ -n "$tru" ]; then ok "the new user logs in (login's last_login write)"
else not_ok "the new user logs in (login's last_login write)" "no token"; fi
truid=$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'trust@tenant-1.test'")
t_api "PUT /users/:id: the user changes its own password" "200|trust@tenant-1.test" \
	PUT "/users/$truid" "$tru" "{\"password\":\"$tpw 2\",\"current_password\":\"$tpw\"}" "b->>'email'"
t_api "the new password logs in" "200|true" POST /auth/login "" \
	"{\"email\":\"trust@tenant-1.test\",\"password\":\"$tpw 2\"}" "b->>'token' IS NOT NULL"
