-- Least privilege, read from the catalogs and then tried for real: what the
-- role saas_api is and may do, what PUBLIC may do, and the hygiene rules every
-- object in schema saas follows (RLS enabled and forced, SECURITY DEFINER
-- functions with a pinned search_path, comments).
--
-- The catalog checks range over every object in schema saas, so objects added
-- later are held to the same rules without editing this file.
--
-- Needs: pgtap, pg_saas, and the role app (LOGIN, IN ROLE saas_api).
\set ON_ERROR_STOP 1

BEGIN;
SELECT plan(51);

------------------------------------------------------------------------
-- The role saas_api.
------------------------------------------------------------------------
SELECT has_role('saas_api', 'role saas_api exists');
SELECT is((SELECT rolcanlogin FROM pg_roles WHERE rolname = 'saas_api'), false, 'saas_api is NOLOGIN');
SELECT is((SELECT rolbypassrls FROM pg_roles WHERE rolname = 'saas_api'), false, 'saas_api does not have BYPASSRLS');
SELECT isnt_superuser('saas_api', 'saas_api is not a superuser');
SELECT is((SELECT rolcreaterole OR rolcreatedb OR rolreplication FROM pg_roles WHERE rolname = 'saas_api'), false,
	'saas_api has no CREATEROLE, CREATEDB or REPLICATION');
SELECT is_empty($$
	SELECT r.rolname FROM pg_auth_members m
	  JOIN pg_roles r ON r.oid = m.roleid
	 WHERE m.member = 'saas_api'::regrole
	   AND (r.rolsuper OR r.rolbypassrls OR r.rolname LIKE 'pg\_%')$$,
	'saas_api is not a member of a privileged or predefined role');
SELECT is_empty($$
	SELECT 'schema saas' WHERE (SELECT nspowner FROM pg_namespace WHERE nspname = 'saas') = 'saas_api'::regrole
	UNION ALL
	SELECT c.oid::regclass::text FROM pg_class c
	 WHERE c.relnamespace = 'saas'::regnamespace AND c.relowner = 'saas_api'::regrole
	UNION ALL
	SELECT p.oid::regprocedure::text FROM pg_proc p
	 WHERE p.pronamespace = 'saas'::regnamespace AND p.proowner = 'saas_api'::regrole
	UNION ALL
	SELECT t.oid::regtype::text FROM pg_type t
	 WHERE t.typnamespace = 'saas'::regnamespace AND t.typowner = 'saas_api'::regrole$$,
	'saas_api owns nothing in schema saas');
SELECT is_empty($$
	SELECT c.oid::regclass::text FROM pg_class c
	 WHERE c.relnamespace = 'saas'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
	   AND c.relowner <> (SELECT extowner FROM pg_extension WHERE extname = 'pg_saas')$$,
	'every table and view in saas is owned by the extension''s owner');

------------------------------------------------------------------------
-- Private tables: no privilege at all for saas_api or PUBLIC.
------------------------------------------------------------------------
SELECT table_privs_are('saas', '_credentials', 'saas_api', ARRAY['INSERT'],
	'saas_api may only insert into saas._credentials (the API writes a hash as the caller; never read)');
SELECT table_privs_are('saas', '_signing_keys', 'saas_api', ARRAY[]::text[],
	'saas_api has no privileges on saas._signing_keys');
SELECT ok(NOT has_any_column_privilege('saas_api', 'saas._credentials', 'SELECT, UPDATE, REFERENCES'),
	'saas_api can neither read nor update any column of saas._credentials');
SELECT ok(NOT has_any_column_privilege('saas_api', 'saas._signing_keys', 'SELECT, INSERT, UPDATE, REFERENCES'),
	'saas_api has no column privileges on saas._signing_keys');
SELECT is_empty($$
	SELECT c.relname, p.priv FROM pg_class c,
		   unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p(priv)
	 WHERE c.relnamespace = 'saas'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
	   AND c.relname LIKE '\_%' AND has_table_privilege('saas_api', c.oid, p.priv)
	UNION ALL
	SELECT c.relname, 'column ' || p.priv FROM pg_class c,
		   unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) p(priv)
	 WHERE c.relnamespace = 'saas'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
	   AND c.relname LIKE '\_%' AND has_any_column_privilege('saas_api', c.oid, p.priv)
	EXCEPT VALUES ('_credentials', 'INSERT'), ('_credentials', 'column INSERT'),
		('_api_key_secrets', 'INSERT'), ('_api_key_secrets', 'column INSERT')$$,
	'saas_api has no privilege on any private (_-prefixed) table of saas (but inserting a password or API key hash)');
SELECT is_empty($$
	SELECT c.oid::regclass::text FROM pg_class c, aclexplode(c.relacl) a
	 WHERE c.relnamespace = 'saas'::regnamespace AND a.grantee = 0$$,
	'PUBLIC has no privilege on any table, view or sequence of saas');
SELECT ok(NOT has_schema_privilege('public', 'saas', 'USAGE') AND NOT has_schema_privilege('public', 'saas', 'CREATE'),
	'PUBLIC has neither USAGE nor CREATE on schema saas');
SELECT ok(has_schema_privilege('saas_api', 'saas', 'USAGE') AND NOT has_schema_privilege('saas_api', 'saas', 'CREATE'),
	'saas_api has USAGE but not CREATE on schema saas');
SELECT table_privs_are('saas', 'organizations', 'saas_api', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
	'saas_api has SELECT, INSERT, UPDATE, DELETE on saas.organizations (through RLS), nothing more');
SELECT table_privs_are('saas', 'users', 'saas_api', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
	'saas_api has SELECT, INSERT, UPDATE, DELETE on saas.users (through RLS), nothing more');

------------------------------------------------------------------------
-- Row-level security: enabled and forced on every table.
------------------------------------------------------------------------
SELECT set_has($$SELECT relname::text FROM pg_class WHERE relnamespace = 'saas'::regnamespace AND relkind IN ('r', 'p')$$,
	$$VALUES ('organizations'), ('users'), ('_credentials'), ('_signing_keys')$$,
	'schema saas has the core tables (the checks below are not vacuous)');
SELECT is_empty($$
	SELECT relname FROM pg_class
	 WHERE relnamespace = 'saas'::regnamespace AND relkind IN ('r', 'p') AND NOT relrowsecurity$$,
	'every table in saas has ROW LEVEL SECURITY enabled');
SELECT is_empty($$
	SELECT relname FROM pg_class
	 WHERE relnamespace = 'saas'::regnamespace AND relkind IN ('r', 'p') AND NOT relforcerowsecurity$$,
	'every table in saas has ROW LEVEL SECURITY forced');
SELECT is_empty($$
	SELECT c.relname FROM pg_class c
	 WHERE c.relnamespace = 'saas'::regnamespace AND c.relkind = 'v'
	   AND has_table_privilege('saas_api', c.oid, 'SELECT')
	   AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)$$,
	'every view saas_api can read is security_invoker (a definer view would bypass RLS)');

------------------------------------------------------------------------
-- Functions.
------------------------------------------------------------------------
SELECT is_empty($$
	SELECT p.oid::regprocedure::text FROM pg_proc p
	 WHERE p.pronamespace = 'saas'::regnamespace
	   AND (p.proacl IS NULL
			OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'))$$,
	'no function in saas is executable by PUBLIC');
SELECT cmp_ok((SELECT count(*) FROM pg_proc WHERE pronamespace = 'saas'::regnamespace AND prosecdef), '>', 0::bigint,
	'schema saas has SECURITY DEFINER functions (the check below is not vacuous)');
SELECT is_empty($$
	SELECT p.oid::regprocedure::text, p.proconfig FROM pg_proc p
	 WHERE p.pronamespace = 'saas'::regnamespace AND p.prosecdef
	   AND NOT EXISTS (
			SELECT 1 FROM unnest(p.proconfig) c
			 WHERE c LIKE 'search\_path=%'
			   AND ARRAY(SELECT btrim(e, ' "') FROM unnest(string_to_array(substr(c, 13), ',')) e)
				   = ARRAY['pg_catalog', 'saas', 'pg_temp'])$$,
	'every SECURITY DEFINER function in saas pins search_path to pg_catalog, saas, pg_temp (pg_temp last)');
SELECT is_empty($$
	SELECT p.oid::regprocedure::text FROM pg_proc p
	 WHERE p.pronamespace = 'saas'::regnamespace
	   AND p.proname IN ('current_org_id', 'current_user_id', 'current_role')
	   AND NOT (p.provolatile = 's' AND p.proparallel = 's')$$,
	'current_org_id, current_user_id, current_role are STABLE and PARALLEL SAFE');
SELECT is_empty($$
	SELECT p.oid::regprocedure::text FROM pg_proc p
	 WHERE p.pronamespace = 'saas'::regnamespace AND p.proname = 'jwt_verify' AND p.provolatile = 'i'$$,
	'jwt_verify (which reads the clock) is not IMMUTABLE');

SELECT function_privs_are('saas', 'http', ARRAY['text', 'text', 'jsonb', 'text'], 'saas_api', ARRAY['EXECUTE'],
	'saas_api can execute saas.http');
SELECT function_privs_are('saas', 'authenticate', ARRAY['text'], 'saas_api', ARRAY['EXECUTE'],
	'saas_api can execute saas.authenticate');
SELECT function_privs_are('saas', 'current_org_id', ARRAY[]::text[], 'saas_api', ARRAY['EXECUTE'],
	'saas_api can execute saas.current_org_id');
SELECT function_privs_are('saas', 'current_user_id', ARRAY[]::text[], 'saas_api', ARRAY['EXECUTE'],
	'saas_api can execute saas.current_user_id');
SELECT function_privs_are('saas', 'current_role', ARRAY[]::text[], 'saas_api', ARRAY['EXECUTE'],
	'saas_api can execute saas.current_role');
SELECT function_privs_are('saas', 'register', ARRAY['jsonb'], 'saas_api', ARRAY['EXECUTE'],
	'saas_api can execute saas.register');
SELECT function_privs_are('saas', 'login', ARRAY['jsonb'], 'saas_api', ARRAY['EXECUTE'],
	'saas_api can execute saas.login');
SELECT function_privs_are('saas', 'rotate_signing_key', ARRAY[]::text[], 'saas_api', ARRAY[]::text[],
	'saas_api cannot execute saas.rotate_signing_key');
SELECT function_privs_are('saas', 'retire_signing_key', ARRAY['text'], 'saas_api', ARRAY[]::text[],
	'saas_api cannot execute saas.retire_signing_key');
SELECT function_privs_are('saas', 'create_super_admin', ARRAY['text', 'text', 'text', 'text'], 'saas_api', ARRAY[]::text[],
	'saas_api cannot execute saas.create_super_admin');

------------------------------------------------------------------------
-- Comments on every table, view and public function.
------------------------------------------------------------------------
SELECT is_empty($$
	SELECT c.oid::regclass::text FROM pg_class c
	 WHERE c.relnamespace = 'saas'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
	   AND coalesce(obj_description(c.oid, 'pg_class'), '') = ''$$,
	'every table and view in saas has a COMMENT');
SELECT is_empty($$
	SELECT p.oid::regprocedure::text FROM pg_proc p
	 WHERE p.pronamespace = 'saas'::regnamespace AND p.proname !~ '^_'
	   AND coalesce(obj_description(p.oid, 'pg_proc'), '') = ''$$,
	'every public function in saas has a COMMENT');

------------------------------------------------------------------------
-- The same, tried for real as an application login role.
------------------------------------------------------------------------
SET LOCAL ROLE app;
SELECT throws_ok('SELECT * FROM saas._credentials', '42501', NULL, 'app cannot read saas._credentials');
SELECT throws_ok('SELECT * FROM saas._signing_keys', '42501', NULL, 'app cannot read saas._signing_keys');
SELECT throws_ok($$UPDATE saas._signing_keys SET retired_at = now()$$, '42501', NULL, 'app cannot retire keys by hand');
SELECT throws_ok('SELECT saas.rotate_signing_key()', '42501', NULL, 'app cannot call saas.rotate_signing_key()');
SELECT throws_ok($$SELECT saas.retire_signing_key('any')$$, '42501', NULL, 'app cannot call saas.retire_signing_key()');
SELECT throws_ok($$SELECT saas.create_super_admin('x@y.test', 'correct horse battery')$$, '42501', NULL,
	'app cannot call saas.create_super_admin()');
SELECT throws_ok('CREATE TABLE saas.mine (x int)', '42501', NULL, 'app cannot create objects in schema saas');
-- Password hashes: app may insert one (the API writes it as the caller), but only the
-- extension's trusted context passes the rules; never read, never updated by hand.
SELECT throws_ok($q$INSERT INTO saas._credentials (org_id, user_id, password_hash)
	VALUES (gen_random_uuid(), gen_random_uuid(), '$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA')$q$,
	'SA401', NULL, 'app without a context cannot write a password hash');
SELECT saas.register(jsonb_build_object(
	'organization', jsonb_build_object('name', 'Creds Co', 'slug', 'creds-co'), 'email', 'admin@creds-co.test',
	'password', 'correct horse battery staple', 'first_name', 'A', 'last_name', 'B'))->>'token' AS creds_tok \gset
SELECT ok(saas.authenticate(:'creds_tok') IS NOT NULL, 'app registers an organization and acts as its admin');
SELECT throws_ok($q$INSERT INTO saas._credentials (org_id, user_id, password_hash)
	VALUES (saas.current_org_id(), saas.current_user_id(), '$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA')$q$,
	'SA403', 'passwords are set through the API only', 'an admin cannot write a hash by hand, even its own');
SELECT throws_ok($q$INSERT INTO saas._credentials (org_id, user_id, password_hash)
	VALUES (gen_random_uuid(), saas.current_user_id(), '$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA')$q$,
	'SA404', NULL, 'nor one for another organization');
SELECT throws_ok($q$UPDATE saas._credentials SET password_hash = '$argon2id$x'$q$, '42501', NULL,
	'app cannot update password hashes');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
