-- API keys through SQL (src/auth/api_keys.c, extension/sql/92_api_keys.sql):
-- an admin creates keys with scopes, the secret is shown once and stored
-- hashed; saas.authenticate_api_key sets the context; a key's scopes hold
-- for plain SQL as the application role, not only in the API functions; a
-- key cannot manage keys or change roles; forged keys and replayed key
-- contexts are refused; a revocation ends the key in another session at
-- once; audit entries name the key.
--
-- Other sessions are real logins (dblink), so the fixtures are committed.
-- Needs: pgtap, dblink, pg_saas, and the role app (LOGIN, IN ROLE saas_api).
\set ON_ERROR_STOP 1

SELECT plan(69);

SELECT substr(md5(random()::text), 1, 8) AS run \gset
CREATE FUNCTION pg_temp.conninfo(usr text) RETURNS text LANGUAGE sql STABLE
	RETURN format('dbname=%s host=%s port=%s user=%s', current_database(),
		split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), usr);

-- Fixtures: organizations A and B with their admins, a plain user in A.
SELECT r->>'token' AS tok_a, r->'organization'->>'id' AS org_a, r->'user'->>'id' AS admin_a
  FROM saas.register(jsonb_build_object(
	'organization', jsonb_build_object('name', 'Keys A ' || :'run'),
	'email', 'admin-' || :'run' || '@keys-a.test', 'password', 'correct horse battery A',
	'first_name', 'Ada', 'last_name', 'Admin')) r \gset
SELECT r->>'token' AS tok_b, r->'organization'->>'id' AS org_b, r->'user'->>'id' AS admin_b
  FROM saas.register(jsonb_build_object(
	'organization', jsonb_build_object('name', 'Keys B ' || :'run'),
	'email', 'admin-' || :'run' || '@keys-b.test', 'password', 'correct horse battery B',
	'first_name', 'Bob', 'last_name', 'Admin')) r \gset

SET ROLE app;
BEGIN;
SELECT saas.authenticate(:'tok_a') IS NOT NULL AS ignore \gset
SELECT saas.create_user(jsonb_build_object('email', 'user-' || :'run' || '@keys-a.test',
	'first_name', 'Ugo', 'last_name', 'User', 'role', 'user'))->>'id' AS user_u \gset
SELECT saas.create_api_key('{"name":"reader","scopes":["users:read"]}') AS k_read \gset
SELECT saas.create_api_key('{"name":"writer","scopes":["users:read","users:write"]}') AS k_write \gset
SELECT saas.create_api_key('{"name":"auditor","scopes":["audit:read"]}') AS k_audit \gset
COMMIT;
BEGIN;
SELECT saas.authenticate(:'tok_b') IS NOT NULL AS ignore \gset
SELECT saas.create_user(jsonb_build_object('email', 'user-' || :'run' || '@keys-b.test',
	'first_name', 'Vic', 'last_name', 'User', 'role', 'user'))->>'id' AS user_b \gset
COMMIT;
RESET ROLE;
SELECT :'k_read'::jsonb->>'key' AS key_read, :'k_read'::jsonb->>'id' AS id_read,
	   :'k_write'::jsonb->>'key' AS key_write, :'k_write'::jsonb->>'id' AS id_write,
	   :'k_audit'::jsonb->>'key' AS key_audit, :'k_audit'::jsonb->>'id' AS id_audit \gset

-- 1. Creation: the key once, its format, the hash alone stored.
SELECT ok(:'key_read' ~ ('^sk_' || replace(:'org_a', '-', '') || '_' || replace(:'id_read', '-', '') || '_[A-Za-z0-9_-]{43}$'),
	'the key is sk_<org>_<key id>_<256-bit secret>');
SELECT is(:'k_read'::jsonb->'scopes', '["users:read"]'::jsonb, 'the answer names the scopes');
SELECT is(:'k_read'::jsonb->>'created_by', :'admin_a', 'created_by is the admin who made it');
SELECT is((SELECT secret_hash FROM saas._api_key_secrets WHERE key_id = :'id_read'),
	sha256(decode(translate(right(:'key_read', 43), '-_', '+/') || '=', 'base64')),
	'what is stored is the SHA-256 of the 32 secret bytes');
SELECT is((SELECT length(secret_hash) FROM saas._api_key_secrets WHERE key_id = :'id_read'), 32,
	'a 32-byte SHA-256 is stored');
SELECT is((SELECT count(*)::int FROM saas.api_keys a, LATERAL jsonb_each_text(to_jsonb(a)) c
			WHERE a.org_id = :'org_a' AND c.value LIKE '%' || right(:'key_read', 43) || '%'), 0,
	'no column of saas.api_keys holds the secret');

SET ROLE app;
BEGIN;
SELECT saas.authenticate(:'tok_a') IS NOT NULL AS ignore \gset
SELECT is(jsonb_array_length(saas.list_api_keys()->'data'), 3, 'the admin lists its organization''s 3 keys');
SELECT ok(NOT (saas.list_api_keys()::text ~ 'sk_|secret|hash'), 'the list holds no key, secret or hash');
SELECT is(saas.get_api_key(:'id_read')->>'status', 'active', 'a key reads as active');
SELECT throws_ok($$SELECT saas.create_api_key('{"name":"x","scopes":["users:admin"]}')$$, 'SA400', NULL,
	'an unknown scope is refused (400)');
SELECT throws_ok($$SELECT saas.create_api_key('{"name":"x","scopes":[]}')$$, 'SA400', NULL,
	'no scope at all is refused (400)');
SELECT throws_ok($$SELECT saas.create_api_key('{"name":"x","scopes":["users:read","users:read"]}')$$, 'SA400', NULL,
	'a scope given twice is refused (400)');
SELECT throws_ok($$SELECT saas.create_api_key('{"name":"x","scopes":["users:read"],"expires_at":"2001-01-01T00:00:00Z"}')$$,
	'SA400', NULL, 'an expiry in the past is refused (400)');
SELECT throws_ok($$SELECT saas.create_api_key('{"name":"x","scopes":["users:read"],"expires_at":"soon"}')$$,
	'SA400', NULL, 'an expiry that is no date is refused (400)');
SELECT throws_ok($$SELECT saas.create_api_key('{"name":"x","scopes":["users:read"],"secret":"mine"}')$$,
	'SA400', NULL, 'an unknown field is refused (400)');
SELECT throws_ok(format($$INSERT INTO saas._api_key_secrets VALUES (%L, %L, '\x00')$$, :'org_a', :'id_read'),
	'23514', NULL, 'a hash of the wrong length cannot be stored');
SELECT throws_ok('SELECT secret_hash FROM saas._api_key_secrets', '42501', NULL,
	'the application role cannot read the hashes');
SELECT throws_ok(format($$UPDATE saas.api_keys SET scopes = '{users:write}' WHERE id = %L$$, :'id_read'),
	'SA403', NULL, 'a key''s scopes cannot be changed, even by an admin');
COMMIT;
RESET ROLE;

-- 2. A users:read key, as the application role: reads users, writes nothing.
SET ROLE app;
BEGIN;
SELECT is(saas.authenticate_api_key(:'key_read')->'scopes', '["users:read"]'::jsonb,
	'saas.authenticate_api_key sets the context and names its scopes');
SELECT is(saas.current_org_id()::text, :'org_a', 'the key acts in its organization');
SELECT is(saas._context_api_key()::text, :'id_read', 'the acting key is known to the database');
SELECT is((SELECT count(*)::int FROM saas.users), 2, 'users:read: the organization''s users are visible');
SELECT is(jsonb_array_length(saas.list_users()->'data'), 2, 'users:read: saas.list_users works');
SELECT throws_ok(format($$UPDATE saas.users SET first_name = 'Hacked' WHERE id = %L$$, :'user_u'),
	'SA403', 'this API key lacks the scope users:write', 'users:read: UPDATE users in SQL is refused (403)');
SELECT throws_ok(format($$DELETE FROM saas.users WHERE id = %L$$, :'user_u'),
	'SA403', NULL, 'users:read: DELETE users in SQL is refused (403)');
SELECT throws_ok(format($$INSERT INTO saas.users (org_id, email, first_name, last_name, role)
	VALUES (%L, 'sneak@keys-a.test', 'S', 'N', 'user')$$, :'org_a'),
	'SA403', NULL, 'users:read: INSERT users in SQL is refused (403)');
SELECT throws_ok($$SELECT saas.create_user('{"email":"x@keys-a.test","first_name":"X","last_name":"Y","role":"user"}')$$,
	'SA403', NULL, 'users:read: saas.create_user is refused (403)');
SELECT throws_ok(format($$SELECT saas.update_user(%L, '{"first_name":"Z"}')$$, :'user_u'),
	'SA403', NULL, 'users:read: saas.update_user is refused (403)');
SELECT is((SELECT count(*)::int FROM saas.audit_log), 0, 'without audit:read the audit log shows nothing');
SELECT throws_ok('SELECT saas.list_audit_logs()', 'SA403', NULL, 'without audit:read saas.list_audit_logs is 403');
SELECT throws_ok('SELECT saas.integration_status_json()', 'SA403', NULL, 'without integrations:read the status is refused (403)');
SELECT throws_ok('SELECT saas.retry_jobs()', 'SA403', NULL, 'a key cannot retry jobs (403)');
SELECT throws_ok($$SELECT saas.create_api_key('{"name":"child","scopes":["users:read"]}')$$,
	'SA403', NULL, 'a key cannot create keys (saas.create_api_key)');
SELECT throws_ok(format($$INSERT INTO saas.api_keys (org_id, id, name, scopes, created_by)
	VALUES (%L, gen_random_uuid(), 'child', '{users:read}', %L)$$, :'org_a', :'admin_a'),
	NULL, NULL, 'a key cannot create keys (INSERT)');
SELECT throws_ok('SELECT saas.list_api_keys()', 'SA403', NULL, 'a key cannot list keys');
SELECT is((SELECT count(*)::int FROM saas.api_keys), 1, 'a key sees only itself among the keys');
SELECT throws_ok(format($$UPDATE saas.organizations SET name = 'Taken' WHERE id = %L$$, :'org_a'),
	'SA403', NULL, 'a key cannot change its organization');
SELECT throws_ok(format('SELECT saas.get_user(%L)', :'user_b'), 'SA404', NULL,
	'another organization''s user is not found');
COMMIT;
RESET ROLE;

SELECT is(public.dblink_exec(pg_temp.conninfo('app'), format(
	$$BEGIN; SELECT saas.authenticate_api_key(%L); UPDATE saas.api_keys SET revoked_at = now() WHERE id = %L; COMMIT$$,
	:'key_read', :'id_write')), 'COMMIT', 'a key''s attempt to revoke another key changes nothing...');
SELECT is((SELECT revoked_at FROM saas.api_keys WHERE id = :'id_write'), NULL,
	'... the other key stays active');

-- 3. A users:write key: writes plain users, changes no role.
SET ROLE app;
BEGIN;
SELECT saas.authenticate_api_key(:'key_write') IS NOT NULL AS ignore \gset
SELECT saas.create_user(jsonb_build_object('email', 'bot-' || :'run' || '@keys-a.test',
	'first_name', 'Bo', 'last_name', 'T', 'role', 'user'))->>'id' AS user_bot \gset
SELECT ok(:'user_bot' IS NOT NULL, 'users:write: saas.create_user works');
SELECT is(saas.update_user(:'user_u', '{"first_name":"Ugolino"}')->>'first_name', 'Ugolino',
	'users:write: saas.update_user works');
SELECT throws_ok(format($$SELECT saas.update_user(%L, '{"role":"admin"}')$$, :'user_u'),
	'SA403', NULL, 'users:write: a key cannot change a role');
SELECT throws_ok($$SELECT saas.create_user('{"email":"adm@keys-a.test","first_name":"X","last_name":"Y","role":"admin"}')$$,
	'SA403', NULL, 'users:write: a key cannot create an admin');
SELECT throws_ok(format($$SELECT saas.update_user(%L, '{"password":"a new long passphrase 1"}')$$, :'user_u'),
	'SA403', NULL, 'users:write: a key cannot set passwords');
SELECT throws_ok(format($$UPDATE saas.users SET last_name = 'Gone' WHERE id = %L$$, :'admin_a'),
	'SA403', NULL, 'users:write: a key cannot change an admin');
COMMIT;
RESET ROLE;

-- 4. Audit entries made with a key name the key.
SET ROLE app;
BEGIN;
SELECT saas.authenticate_api_key(:'key_audit') IS NOT NULL AS ignore \gset
SELECT is((SELECT actor_role || ' ' || actor_id FROM saas.audit_log
			WHERE entity = 'user' AND entity_id = :'user_bot' AND action = 'create'),
	'api_key ' || :'id_write', 'the audit entry of a key''s change names the key');
SELECT ok((SELECT count(*) FROM saas.audit_log WHERE entity = 'api_key' AND action = 'create') >= 3,
	'creating keys is audited');
SELECT throws_ok(format('SELECT saas.get_user(%L)', :'user_u'), 'SA403', NULL,
	'audit:read alone does not read users (403)');
COMMIT;
RESET ROLE;

-- 5. Forged keys and replayed key contexts.
SET ROLE app;
SELECT throws_ok(format('SELECT saas.authenticate_api_key(%L)',
	left(:'key_read', -1) || CASE WHEN right(:'key_read', 1) = 'A' THEN 'B' ELSE 'A' END),
	'SA401', NULL, 'a key with one character of the secret changed is refused');
SELECT throws_ok(format('SELECT saas.authenticate_api_key(%L)',
	'sk_' || replace(:'org_b', '-', '') || substr(:'key_read', 36)),
	'SA401', NULL, 'a key moved to another organization is refused');
SELECT throws_ok($$SELECT saas.authenticate_api_key('sk_nonsense')$$, 'SA401', NULL, 'a malformed key is refused');
SELECT throws_ok('SELECT saas.authenticate_api_key(NULL)', 'SA401', NULL, 'no key is refused');
BEGIN;
SELECT saas.authenticate_api_key(:'key_read') IS NOT NULL AS ignore \gset
SELECT current_setting('saas.context') AS minted \gset
COMMIT;
SELECT throws_ok(format('SELECT saas.authenticate(%L)', :'minted'), 'SA401', NULL,
	'a key''s context cannot be presented as a token');
RESET ROLE;
SELECT is((SELECT status FROM saas.http('GET', '/users', jsonb_build_object('authorization', 'Bearer ' || :'minted'))), 401,
	'nor as a bearer token to saas.http');

-- A key's secret never leaves a backend in a message (nor in a logged statement:
-- src/common/log_redact.c); another session's error, as its client receives it.
SELECT throws_ok(format('SELECT public.dblink_exec(%L, %L)', pg_temp.conninfo(current_user),
		format('DO $x$BEGIN RAISE EXCEPTION %L; END$x$', 'key ' || :'key_read' || ' seen')), 'P0001',
	'key ' || left(:'key_read', 69) || '[redacted] seen', 'the secret part of a key is cut out of messages');

-- A busy key does not wait: another transaction holding the key's row does
-- not block its use (the use is recorded later, by a transaction that finds it free).
SELECT is(public.dblink_connect('holder', pg_temp.conninfo(current_user)), 'OK', 'a session that will hold the key''s row');
UPDATE saas.api_keys SET last_used_at = now() - interval '1 hour' WHERE id = :'id_audit';
SELECT is(public.dblink_exec('holder', format(
	'BEGIN; UPDATE saas.api_keys SET name = name WHERE id = %L', :'id_audit')), 'UPDATE 1',
	'it locks the key''s row, whose last use is an hour old');
SET lock_timeout = '3s';
SET ROLE app;
BEGIN;
SELECT saas.authenticate_api_key(:'key_audit') IS NOT NULL AS ignore \gset
COMMIT;
RESET ROLE;
RESET lock_timeout;
SELECT pass('the key was used and its transaction committed while its row was held');
SELECT is(public.dblink_exec('holder', 'ROLLBACK'), 'ROLLBACK', 'the holder lets go');
SELECT ok((SELECT last_used_at < now() - interval '59 minutes' FROM saas.api_keys WHERE id = :'id_audit'),
	'the use was not recorded over the held row (it will be by a later one)');
SELECT public.dblink_disconnect('holder');

-- 6. Revocation ends the key at once, in another session too.
SELECT is(public.dblink_connect('other', pg_temp.conninfo('app')), 'OK', 'another session, as app');
SELECT is((SELECT n FROM public.dblink('other', format(
	'SELECT saas.authenticate_api_key(%L) IS NOT NULL', :'key_read')) AS t(n boolean)), true,
	'the other session authenticates with the key');
SELECT is((SELECT n FROM public.dblink('other', format(
	'SELECT set_config(''saas.context'', %L, false) IS NOT NULL', :'minted')) AS t(n boolean)), true,
	'and keeps a context minted from it for the session');
SELECT is((SELECT n FROM public.dblink('other', 'SELECT count(*) FROM saas.users') AS t(n bigint)), 3::bigint,
	'which shows the users before revocation');
SET ROLE app;
BEGIN;
SELECT saas.authenticate(:'tok_a') IS NOT NULL AS ignore \gset
SELECT saas.revoke_api_key(:'id_read');
SELECT is(saas.get_api_key(:'id_read')->>'status', 'revoked', 'the admin revokes the key');
SELECT ok(saas.get_api_key(:'id_read')->>'last_used_at' IS NOT NULL, 'its last use was recorded');
COMMIT;
RESET ROLE;
SELECT is((SELECT n FROM public.dblink('other', 'SELECT count(*) FROM saas.users') AS t(n bigint)), 0::bigint,
	'at once, the other session''s context from the key shows nothing');
SELECT throws_ok(format('SELECT * FROM public.dblink(%L, %L) AS t(x jsonb)', 'other',
	format('SELECT saas.authenticate_api_key(%L)', :'key_read')), NULL, NULL,
	'and the revoked key no longer authenticates there');
SELECT public.dblink_disconnect('other');

SELECT * FROM finish();
