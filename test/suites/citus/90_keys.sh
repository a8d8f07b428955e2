# Part of test/suites/80_citus.sh (sourced last: it retires the key every earlier token was
# signed with): key rotation and retirement (saas._signing_keys is a reference table).

newkid=$(cpsql 0 -c "SELECT saas.rotate_signing_key()")
t_eq "saas.rotate_signing_key() adds a key on every node" 1 "1" -c "SELECT count(*) FROM saas._signing_keys WHERE kid = '$newkid'"
oldkid=$(cpsql 0 -c "SELECT kid FROM saas._signing_keys WHERE kid <> '$newkid' ORDER BY created_at LIMIT 1")
t_eq "saas.retire_signing_key() retires the old key" 0 "" -c "SELECT saas.retire_signing_key('$oldkid')"
t_api "a token signed with the retired key stops verifying at once" "401|unauthorized" \
	GET /users "$a1" "" "b->'error'->>'code'"
a1=$(login admin@tenant-1.test 'tenant admin password')
t_api "a new login is signed with the new key and works" "200|1" \
	GET "/users?role=admin" "$a1" "" "(SELECT count(*) FROM jsonb_array_elements(b->'data'))::text || ''"

