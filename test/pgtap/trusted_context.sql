-- The extension's own short-lived "trusted" contexts act only where they
-- cannot have been replayed (src/auth/context.c, ctx_trusted_here): in the
-- backend that minted one while its push lasts, or in a session whose login
-- role is a superuser or no member of saas_api (the extension's own
-- connections). On Citus such a token travels to the worker nodes as the
-- text of a SET LOCAL that other sessions of the same role can read in
-- pg_stat_activity; here a token signed with the real key and marked
-- trusted, put in saas.context by a session that logged in as "app", must
-- give no context at all (no rows, no trusted rights), while the API's own
-- trusted steps (login, a password set by an admin) still work for "app".
--
-- The other sessions are real logins (dblink), so the fixtures are committed:
-- run in a database of its own (test/suites/20_pgtap.sh makes one per file).
--
-- Needs: pgtap, pgcrypto, dblink, pg_saas, and the role app (LOGIN, IN ROLE saas_api).
\set ON_ERROR_STOP 1
\ir lib/jwt_forge.sql

SELECT plan(16);

SELECT substr(md5(random()::text), 1, 8) AS run \gset

-- Fixtures, committed: an organization, its admin, and a plain user.
SELECT r->>'token' AS tok_a, r->'organization'->>'id' AS org_a, r->'user'->>'id' AS admin_a
  FROM saas.register(jsonb_build_object(
	'organization', jsonb_build_object('name', 'Trust ' || :'run', 'slug', 'trust-' || :'run'),
	'email', 'admin-' || :'run' || '@trust.test', 'password', 'correct horse battery T',
	'first_name', 'Tia', 'last_name', 'Admin')) r \gset
BEGIN;
SELECT saas.authenticate(:'tok_a') IS NOT NULL AS ignore \gset
SELECT saas.create_user(jsonb_build_object('email', 'user-' || :'run' || '@trust.test',
	'first_name', 'Ugo', 'last_name', 'User', 'role', 'user',
	'password', 'correct horse battery U'))->>'id' AS user_u \gset
COMMIT;
SELECT kid AS key_kid, secret AS key_secret FROM saas._signing_keys
 WHERE retired_at IS NULL ORDER BY created_at DESC, kid DESC LIMIT 1 \gset

-- A trusted token for the plain user, as admin of its organization, signed
-- with the active key: what a replay of the extension's internal token gives.
SELECT pg_temp.jwt_forge(jsonb_build_object('alg', 'HS256', 'typ', 'JWT', 'kid', :'key_kid'),
		pg_temp.jwt_claims_for(:'user_u', :'org_a', 'admin') || '{"trusted":true}', :'key_secret') AS tok_trusted
\gset

CREATE FUNCTION pg_temp.conn_quote(v text) RETURNS text LANGUAGE sql IMMUTABLE
	RETURN '''' || replace(replace(v, '\', '\\'), '''', '\''') || '''';
CREATE FUNCTION pg_temp.conninfo(usr text) RETURNS text LANGUAGE sql STABLE
	RETURN format('dbname=%s host=%s port=%s user=%s',
		pg_temp.conn_quote(current_database()),
		pg_temp.conn_quote(split_part(current_setting('unix_socket_directories'), ',', 1)),
		pg_temp.conn_quote(current_setting('port')), pg_temp.conn_quote(usr));
-- on(conn, sql): the one value a query returns in that session, as text.
CREATE FUNCTION pg_temp.on_(conn text, q text) RETURNS text LANGUAGE sql AS $$
	SELECT v FROM public.dblink(conn, q) AS t(v text)
$$;

SELECT is(public.dblink_connect('app', pg_temp.conninfo('app')), 'OK', 'a session logged in as app');
SELECT is(public.dblink_connect('owner', pg_temp.conninfo(current_user)), 'OK', 'a session of the owner (a superuser)');

-- 1. The application role with the replayed trusted token: no context.
SELECT is(public.dblink_exec('app', format('SET saas.context = %L', :'tok_trusted')), 'SET',
	'app puts the trusted token in its saas.context');
SELECT is(pg_temp.on_('app', 'SELECT coalesce(saas.current_org_id()::text, ''null'') || '' ''
	|| coalesce(saas.current_role(), ''null'') || '' '' || saas._context_trusted()'), 'null null false',
	'app: the trusted token gives no context (no organization, no role, not trusted)');
SELECT is(pg_temp.on_('app', 'SELECT count(*) FROM saas.users'), '0',
	'app: the trusted token shows no rows');
SELECT is(public.dblink_exec('app', format($$UPDATE saas.users SET role = 'admin' WHERE id = %L$$, :'user_u')),
	'UPDATE 0', 'app: with it, the plain user cannot make itself admin (no row)');
SELECT throws_ok(format('SELECT public.dblink_exec(%L, %L)', 'app',
	format($$INSERT INTO saas._credentials (org_id, user_id, password_hash) VALUES (%L, %L, 'x')$$, :'org_a', :'user_u')),
	'SA401', NULL, 'app: with it, writing a password hash is refused (no context)');
SELECT is((SELECT role FROM saas.users WHERE id = :'user_u'), 'user', '... and the user is still a plain user');
SELECT throws_ok($$SELECT public.dblink_exec('app', 'SET saas._trusted = ''a.b.c''')$$, '42501', NULL,
	'app cannot set saas._trusted, the minting backend''s own setting');

-- 1b. A member of saas_api without INHERIT (it gets the rights by SET ROLE saas_api) is a
-- member all the same: no trusted rights either.
SELECT format('trust_noinherit_%s', :'run') AS noinh \gset
CREATE ROLE :"noinh" LOGIN NOINHERIT IN ROLE saas_api;
SELECT is(public.dblink_connect('noinh', pg_temp.conninfo(:'noinh')), 'OK', 'a session of a NOINHERIT member of saas_api');
SELECT public.dblink_exec('noinh', format('SET ROLE saas_api; SET saas.context = %L', :'tok_trusted')) AS ignore \gset
SELECT is(pg_temp.on_('noinh', 'SELECT (saas._context_trusted() IS FALSE AND saas.current_org_id() IS NULL)::text'), 'true',
	'a NOINHERIT member that sets role saas_api: the trusted token gives no context');
SELECT public.dblink_disconnect('noinh') AS ignore \gset
DROP ROLE :"noinh";

-- 2. Controls: the token itself is valid (a superuser's session honours it),
-- and the app session verifies ordinary tokens.
SELECT is(pg_temp.on_('owner', format('SELECT set_config(''saas.context'', %L, false) IS NOT NULL
	AND saas._context_trusted() AND saas.current_org_id() = %L', :'tok_trusted', :'org_a')), 't',
	'(control) the owner''s session honours the same trusted token');
SELECT is(pg_temp.on_('app', format('SELECT set_config(''saas.context'', %L, false) IS NOT NULL
	AND saas.current_org_id() = %L', :'tok_a', :'org_a')), 't',
	'(control) app with the admin''s login token has its organization');

-- 3. The API's own trusted steps still work as app, in the backend that mints them.
SELECT is(pg_temp.on_('app', format($$SELECT saas.create_user(jsonb_build_object('email', 'new-%s@trust.test',
	'first_name', 'N', 'last_name', 'U', 'role', 'user', 'password', 'correct horse battery N'))->>'status'$$, :'run')),
	'active', 'app: an admin creates a user with a password (trusted step in its own backend)');
SELECT is(pg_temp.on_('app', format($$SELECT set_config('saas.context', '', false) || (saas.login(jsonb_build_object(
	'email', 'new-%s@trust.test', 'password', 'correct horse battery N'))->>'token' IS NOT NULL)::text$$, :'run')),
	'true', 'app: the new user logs in (login''s trusted step)');
SELECT is(pg_temp.on_('app', 'SELECT coalesce(saas.current_org_id()::text, ''null'') || '' '' || saas._context_trusted()'),
	'null false', 'app: after those, no trusted context is left in the session');

SELECT public.dblink_disconnect('app') || public.dblink_disconnect('owner') AS ignore \gset
SELECT * FROM finish();
