-- API keys and the features that came with them or after them (invitations,
-- single sign-on, the dashboard's functions): a key acts as an admin only
-- where an operation checks its scopes, so every other admin operation
-- refuses it (403) through the SQL API, and plain SQL as the application
-- role can neither read nor change the SSO connection with a key's context.
-- The same calls with the admin's own token pass (controls).
--
-- Needs: pgtap, pg_saas, and the role app (LOGIN, IN ROLE saas_api).
\set ON_ERROR_STOP 1

SELECT plan(16);
-- The SSO connections below name a loopback issuer (never called here).
SET saas.sso_allowed_origins = 'http://127.0.0.1:*';

SELECT substr(md5(random()::text), 1, 8) AS run \gset
SELECT r->>'token' AS tok, r->'organization'->>'id' AS org
  FROM saas.register(jsonb_build_object(
	'organization', jsonb_build_object('name', 'Keys elsewhere ' || :'run'),
	'email', 'admin-' || :'run' || '@keys-else.test', 'password', 'correct horse battery E',
	'first_name', 'Eve', 'last_name', 'Admin')) r \gset

SET ROLE app;
BEGIN;
SELECT saas.authenticate(:'tok') IS NOT NULL AS ignore \gset
SELECT saas.create_api_key('{"name":"all","scopes":["users:read","users:write","audit:read","integrations:read"]}')->>'key' AS k_all \gset
SELECT saas.create_api_key('{"name":"users","scopes":["users:read"]}')->>'key' AS k_users \gset
-- controls: the admin may do what the key below may not
SELECT lives_ok($$SELECT saas.list_invitations()$$, 'control: the admin lists invitations');
SELECT throws_ok($$SELECT saas.get_sso_connection()$$, 'SA404', NULL, 'control: the admin reads the SSO connection (404: none yet)');
SELECT lives_ok($$SELECT saas.integration_calls_json(5)$$, 'control: the admin reads integration calls');
COMMIT;

-- A key with every scope: invitations, the SSO connection, the audit verification of the dashboard.
BEGIN;
SELECT saas.authenticate_api_key(:'k_all') IS NOT NULL AS ignore \gset
SELECT throws_ok($$SELECT saas.create_invitation('{"email":"x@keys-else.test","role":"user"}')$$, 'SA403', NULL,
	'a key cannot invite users (SQL API)');
SELECT throws_ok($$SELECT saas.list_invitations()$$, 'SA403', NULL, 'a key cannot list invitations');
SELECT throws_ok($$SELECT saas.revoke_invitation(gen_random_uuid())$$, 'SA403', NULL, 'a key cannot revoke invitations');
SELECT throws_ok($$SELECT saas.get_sso_connection()$$, 'SA403', NULL, 'a key cannot read the SSO connection');
SELECT throws_ok($$SELECT saas.put_sso_connection('{"issuer":"http://127.0.0.1:1","client_id":"c","client_secret":"secret-123","redirect_uri":"http://127.0.0.1:2/cb","allowed_domains":["keys-else.test"],"default_role":"admin"}')$$,
	'SA403', NULL, 'a key cannot create an SSO connection');
SELECT throws_ok($$SELECT saas.delete_sso_connection()$$, 'SA403', NULL, 'a key cannot remove the SSO connection');
SELECT throws_ok(format($$INSERT INTO saas.sso_connections (org_id, issuer, client_id, redirect_uri, allowed_domains, default_role)
	VALUES (%L, 'http://127.0.0.1:1', 'c', 'http://127.0.0.1:2/cb', '{keys-else.test}', 'admin')$$, :'org'),
	'SA403', NULL, 'plain SQL: a key cannot insert an SSO connection');
SELECT is((SELECT count(*) FROM saas.sso_connections)::int, 0, 'plain SQL: a key sees no SSO connection');
SELECT lives_ok($$SELECT saas.integration_calls_json(5)$$, 'integrations:read reads integration calls');
SELECT lives_ok($$SELECT saas.list_users('{}')$$, 'users:read lists users (scoped operations still work)');
COMMIT;	-- (not ROLLBACK: pgTAP keeps its results in this transaction)

-- A key without integrations:read.
BEGIN;
SELECT saas.authenticate_api_key(:'k_users') IS NOT NULL AS ignore \gset
SELECT throws_ok($$SELECT saas.integration_calls_json(5)$$, 'SA403', NULL,
	'a key without integrations:read cannot read integration calls');
SELECT throws_ok($$SELECT saas.integration_status_json()$$, 'SA403', NULL,
	'a key without integrations:read cannot read the integration status');
COMMIT;

-- The admin's SSO connection stays invisible to a key after it exists.
BEGIN;
SELECT saas.authenticate(:'tok') IS NOT NULL AS ignore \gset
SELECT saas.put_sso_connection('{"issuer":"http://127.0.0.1:1","client_id":"c","client_secret":"secret-123","redirect_uri":"http://127.0.0.1:2/cb","allowed_domains":["keys-else.test"]}') IS NOT NULL AS ignore \gset
COMMIT;
BEGIN;
SELECT saas.authenticate_api_key(:'k_all') IS NOT NULL AS ignore \gset
SELECT is((SELECT count(*) FROM saas.sso_connections)::int, 0, 'plain SQL: a key does not see the existing SSO connection');
COMMIT;
RESET ROLE;

SELECT * FROM finish();
