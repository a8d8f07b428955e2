-- Attacks on API keys, the restore path and the SQL functions granted to
-- saas_api, from SQL as the application role (issue: attack the newest
-- changes from outside; docs/security.md "API keys, restore and SSO under
-- attack").
--
-- Each key scope is tried against the SECURITY DEFINER and C functions that
-- read or change what another scope guards. Found here: saas.audit_verify()
-- let a key without audit:read verify its organization's chain (how many
-- entries, whether and where it is broken): now 403 like saas.list_audit_logs.
-- The rest are guards that held and must keep holding.
--
-- Found as well: a transaction kept open went on acting with a key revoked
-- in another session (the key was read once per transaction); now a
-- statement starting 4 s or more after the read reads the key again.
--
-- Needs: pgtap, dblink, pg_saas, and the role app (LOGIN, IN ROLE saas_api).
\set ON_ERROR_STOP 1

SELECT plan(40);

SELECT substr(md5(random()::text), 1, 8) AS run \gset

SELECT r->>'token' AS tok_a, r->'organization'->>'id' AS org_a, r->'user'->>'id' AS admin_a
  FROM saas.register(jsonb_build_object(
	'organization', jsonb_build_object('name', 'Attack2 A ' || :'run'),
	'email', 'admin-' || :'run' || '@atk2-a.test', 'password', 'correct horse battery A',
	'first_name', 'Ada', 'last_name', 'Admin')) r \gset
SELECT r->>'token' AS tok_b, r->'organization'->>'id' AS org_b
  FROM saas.register(jsonb_build_object(
	'organization', jsonb_build_object('name', 'Attack2 B ' || :'run'),
	'email', 'admin-' || :'run' || '@atk2-b.test', 'password', 'correct horse battery B',
	'first_name', 'Bob', 'last_name', 'Admin')) r \gset

SET ROLE app;
BEGIN;
SELECT saas.authenticate(:'tok_a') IS NOT NULL AS ignore \gset
SELECT saas.create_user(jsonb_build_object('email', 'admin2-' || :'run' || '@atk2-a.test',
	'first_name', 'Sam', 'last_name', 'Second', 'role', 'admin',
	'password', 'correct horse battery 2'))->>'id' AS admin2 \gset
SELECT saas.create_api_key('{"name":"ur","scopes":["users:read"]}')->>'key' AS k_ur \gset
SELECT saas.create_api_key('{"name":"uw","scopes":["users:write"]}')->>'key' AS k_uw \gset
SELECT saas.create_api_key('{"name":"ir","scopes":["integrations:read"]}')->>'key' AS k_ir \gset
SELECT saas.create_api_key('{"name":"ar","scopes":["audit:read"]}')->>'key' AS k_ar \gset
COMMIT;

-- 1. saas.audit_verify: the chain is the audit log's, so audit:read is needed.
BEGIN;
SELECT saas.authenticate(:'tok_a') IS NOT NULL AS ignore \gset
SELECT ok((saas.audit_verify(:'org_a')).ok, 'an admin''s token verifies its organization''s chain');
COMMIT;
BEGIN;
SELECT saas.authenticate_api_key(:'k_ar') IS NOT NULL AS ignore \gset
SELECT ok((saas.audit_verify(:'org_a')).ok, 'a key with audit:read verifies its organization''s chain');
SELECT throws_ok(format('SELECT saas.audit_verify(%L)', :'org_b'), 'SA404', NULL,
	'a key with audit:read cannot verify another organization''s chain (404)');
COMMIT;
BEGIN;
SELECT saas.authenticate_api_key(:'k_ur') IS NOT NULL AS ignore \gset
SELECT throws_ok(format('SELECT saas.audit_verify(%L)', :'org_a'), 'SA403', NULL,
	'a users:read key cannot verify the audit chain (403)');
COMMIT;
BEGIN;
SELECT saas.authenticate_api_key(:'k_uw') IS NOT NULL AS ignore \gset
SELECT throws_ok(format('SELECT saas.audit_verify(%L)', :'org_a'), 'SA403', NULL,
	'a users:write key cannot verify the audit chain (403)');
COMMIT;
BEGIN;
SELECT saas.authenticate_api_key(:'k_ir') IS NOT NULL AS ignore \gset
SELECT throws_ok(format('SELECT saas.audit_verify(%L)', :'org_a'), 'SA403', NULL,
	'an integrations:read key cannot verify the audit chain (403)');
COMMIT;

-- 2. Every scope against what keys never do, through the functions granted
-- to saas_api (SSO, invitations, keys, organizations, jobs, sessions).
CREATE FUNCTION pg_temp.key_refused(k text, label text) RETURNS SETOF text LANGUAGE plpgsql AS $f$
BEGIN
	PERFORM saas.authenticate_api_key(k);
	RETURN NEXT throws_ok($$SELECT saas.put_sso_connection('{"issuer":"http://127.0.0.1:9","client_id":"x","client_secret":"y","domains":["atk2-a.test"]}')$$,
		'SA403', NULL, label || ': no SSO connection set by a key');
	RETURN NEXT throws_ok('SELECT saas.get_sso_connection()', 'SA403', NULL, label || ': no SSO connection read by a key');
	RETURN NEXT throws_ok($$SELECT saas.create_invitation('{"email":"new@atk2-a.test","role":"admin"}')$$,
		'SA403', NULL, label || ': no invitation by a key');
	RETURN NEXT throws_ok($$SELECT saas.create_api_key('{"name":"child","scopes":["audit:read"]}')$$,
		'SA403', NULL, label || ': no key made by a key');
	RETURN NEXT throws_ok('SELECT saas.retry_jobs()', 'SA403', NULL, label || ': no retry by a key');
	RETURN NEXT throws_ok('SELECT saas.logout_all()', 'SA403', NULL, label || ': no logout by a key');
END
$f$;
BEGIN;
SELECT * FROM pg_temp.key_refused(:'k_ur', 'users:read');
COMMIT;
BEGIN;
SELECT * FROM pg_temp.key_refused(:'k_uw', 'users:write');
COMMIT;
BEGIN;
SELECT * FROM pg_temp.key_refused(:'k_ar', 'audit:read');
COMMIT;
BEGIN;
SELECT * FROM pg_temp.key_refused(:'k_ir', 'integrations:read');
COMMIT;

-- 3. A users:write key cannot make itself an admin's power: no admin created,
-- no admin changed, no password set.
BEGIN;
SELECT saas.authenticate_api_key(:'k_uw') IS NOT NULL AS ignore \gset
SELECT throws_ok(format($$SELECT saas.update_user(%L, '{"status":"suspended"}')$$, :'admin_a'), 'SA403', NULL,
	'a users:write key cannot suspend an admin');
SELECT throws_ok(format($$UPDATE saas.users SET role = 'admin' WHERE org_id = %L$$, :'org_a'), 'SA403', NULL,
	'a users:write key cannot promote anyone in plain SQL');
COMMIT;

-- 4. The restore path stays a superuser's: the application role can neither
-- set replica mode nor load rows with row_security off.
SELECT throws_ok('SET session_replication_role = replica', '42501', NULL,
	'saas_api cannot set session_replication_role (no replica-mode merge, no skipped audit)');
BEGIN;
SELECT saas.authenticate(:'tok_a') IS NOT NULL AS ignore \gset
SET LOCAL row_security = off;
SELECT throws_ok(format($$INSERT INTO saas.users (org_id, email, first_name, last_name, role)
	VALUES (%L, 'restored@atk2-a.test', 'R', 'R', 'user')$$, :'org_a'), NULL, NULL,
	'with row_security off, the application role''s insert is refused');
ROLLBACK;
SELECT is(current_setting('session_replication_role'), 'origin', 'the session is still in origin mode');

-- 5. A key whose creator is demoted or removed stops at once.
BEGIN;
SELECT (saas.login(jsonb_build_object('email', 'admin2-' || :'run' || '@atk2-a.test',
	'password', 'correct horse battery 2')))->>'token' AS tok2 \gset
COMMIT;
BEGIN;
SELECT saas.authenticate(:'tok2') IS NOT NULL AS ignore \gset
SELECT saas.create_api_key('{"name":"k2","scopes":["users:read"]}')->>'key' AS k2 \gset
COMMIT;
BEGIN;
SELECT saas.authenticate(:'tok_a') IS NOT NULL AS ignore \gset
SELECT is(saas.update_user(:'admin2', '{"role":"user"}')->>'role', 'user', 'the second admin is demoted');
COMMIT;
SELECT throws_ok(format('SELECT saas.authenticate_api_key(%L)', :'k2'), 'SA401', NULL,
	'the demoted creator''s key no longer authenticates');

-- 6. A revoked key in a transaction another session keeps open: it acts no
-- more from the first statement 4 s after its last read.
BEGIN;
SELECT saas.authenticate(:'tok_a') IS NOT NULL AS ignore \gset
SELECT saas.create_api_key('{"name":"long","scopes":["users:read"]}') AS k_long \gset
COMMIT;
RESET ROLE;
SELECT :'k_long'::jsonb->>'key' AS key_long, :'k_long'::jsonb->>'id' AS id_long \gset
SELECT public.dblink_connect('other', format('dbname=%s host=%s port=%s user=app', current_database(),
	split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'))) AS ignore \gset
SELECT public.dblink_exec('other', 'BEGIN') AS ignore \gset
SELECT x IS NOT NULL AS ignore FROM public.dblink('other', format('SELECT saas.authenticate_api_key(%L)::text', :'key_long')) AS t(x text) \gset
SELECT ok((SELECT n FROM public.dblink('other', 'SELECT count(*) FROM saas.users') AS t(n bigint)) > 0,
	'the other session''s open transaction reads users with the key');
SET ROLE app;
BEGIN;
SELECT saas.authenticate(:'tok_a') IS NOT NULL AS ignore \gset
SELECT saas.revoke_api_key(:'id_long');
COMMIT;
RESET ROLE;
SELECT pg_sleep(4.2);
SELECT is((SELECT n FROM public.dblink('other', 'SELECT count(*) FROM saas.users') AS t(n bigint)), 0::bigint,
	'after the revocation, the same open transaction sees no user');
SELECT throws_ok($$SELECT * FROM public.dblink('other', 'SELECT saas.list_users()') AS t(x jsonb)$$, NULL, NULL,
	'and the API functions refuse it');
SELECT public.dblink_exec('other', 'ROLLBACK') AS ignore \gset
SELECT public.dblink_disconnect('other') AS ignore \gset

SELECT * FROM finish();
