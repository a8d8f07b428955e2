-- Signing-key rotation and retirement, seen from this session and from a
-- second session that is already open (through dblink) and has a token in
-- its saas.context: rotation keeps old tokens verifying and signs new ones
-- with the new kid; retirement stops old tokens at once, in every backend
-- (the key cache is invalidated), and the last active key cannot be retired.
--
-- Key changes must be committed to reach the other session, so this file
-- runs without an enclosing transaction and leaves its keys behind: run it in
-- a database of its own (test/suites/20_pgtap.sh makes one per file).
--
-- Needs: pgtap, pgcrypto, dblink, pg_saas, and the role app (LOGIN, IN ROLE saas_api).
\set ON_ERROR_STOP 1
\ir lib/jwt_forge.sql

SELECT plan(27);

-- A tag that keeps emails and slugs unique if the file is run again.
SELECT substr(md5(random()::text), 1, 8) AS run \gset

-- Start from exactly one active key: a fresh one, the others retired.
SELECT saas.rotate_signing_key() AS k1 \gset
DO $$
DECLARE
	k text;
BEGIN
	FOR k IN SELECT kid FROM saas._signing_keys WHERE retired_at IS NULL
			  ORDER BY created_at DESC, kid DESC OFFSET 1 LOOP
		PERFORM saas.retire_signing_key(k);
	END LOOP;
END
$$;

CREATE FUNCTION pg_temp.active_kids() RETURNS text[] LANGUAGE sql AS $$
	SELECT coalesce(array_agg(kid ORDER BY created_at, kid), '{}') FROM saas._signing_keys WHERE retired_at IS NULL
$$;
-- other(sql): the one value a query returns in the other session, as text.
CREATE FUNCTION pg_temp.other(q text) RETURNS text LANGUAGE sql AS $$
	SELECT v FROM public.dblink('other', q) AS t(v text)
$$;
CREATE FUNCTION pg_temp.conn_quote(v text) RETURNS text LANGUAGE sql IMMUTABLE
	RETURN '''' || replace(replace(v, '\', '\\'), '''', '\''') || '''';

SELECT is(pg_temp.active_kids(), ARRAY[:'k1'], 'setup: exactly one active key');

SELECT r->>'token' AS t1, r->'organization'->>'id' AS org_a
  FROM saas.register(jsonb_build_object(
	'organization', jsonb_build_object('name', 'Rotation ' || :'run', 'slug', 'rotation-' || :'run'),
	'email', 'admin-' || :'run' || '@rotation.test', 'password', 'correct horse battery R',
	'first_name', 'Rita', 'last_name', 'Rotate')) r \gset
SELECT jsonb_build_object('email', 'admin-' || :'run' || '@rotation.test',
						  'password', 'correct horse battery R')::text AS login_body \gset

SELECT is(pg_temp.jwt_header(:'t1')->>'kid', :'k1', 'a token is signed with the active key and names its kid');

-- The other session: the application role, t1 in its session-level context.
SELECT is(public.dblink_connect('other', format('dbname=%s host=%s port=%s user=%s',
	pg_temp.conn_quote(current_database()),
	pg_temp.conn_quote(split_part(current_setting('unix_socket_directories'), ',', 1)),
	pg_temp.conn_quote(current_setting('port')),
	pg_temp.conn_quote(current_user))), 'OK', 'a second session is open');
SELECT is(public.dblink_exec('other', 'SET ROLE app'), 'SET', 'the second session acts as app');
SELECT is(public.dblink_exec('other', format('SET saas.context = %L', :'t1')), 'SET',
	'the second session puts t1 in its saas.context');
SELECT is(pg_temp.other('SELECT saas.current_org_id()'), :'org_a',
	'the open session verifies t1: its organization is the context');

------------------------------------------------------------------------
-- Rotation.
------------------------------------------------------------------------
SELECT saas.rotate_signing_key() AS k2 \gset
SELECT isnt(:'k2'::text, :'k1'::text, 'rotate_signing_key() returns a new kid');
SELECT is(pg_temp.active_kids(), ARRAY[:'k1', :'k2'], 'after rotation both keys are active');
SELECT is((saas.authenticate(:'t1')->>'org_id'), :'org_a', 'after rotation, the old token still verifies here');
SELECT is(pg_temp.other('SELECT saas.current_org_id()'), :'org_a',
	'after rotation, the old token still verifies in the open session');
SELECT saas.login(:'login_body')->>'token' AS t2 \gset
SELECT is(pg_temp.jwt_header(:'t2')->>'kid', :'k2', 'after rotation, new tokens carry the new kid');
SELECT is(pg_temp.jwt_header(pg_temp.other(format('SELECT saas.login(%L)->>''token''', :'login_body')))->>'kid', :'k2',
	'after rotation, the open session signs new tokens with the new key too');

------------------------------------------------------------------------
-- Retirement.
------------------------------------------------------------------------
SELECT lives_ok(format('SELECT saas.retire_signing_key(%L)', :'k1'), 'retire_signing_key(old kid)');
SELECT is(pg_temp.active_kids(), ARRAY[:'k2'], 'after retirement only the new key is active');
SELECT throws_ok(format('SELECT saas.authenticate(%L)', :'t1'), 'SA401',
	'invalid token: token signing key is unknown or retired',
	'after retirement, the old token is refused here');
SELECT is(pg_temp.other('SELECT saas.current_org_id()'), NULL,
	'after retirement, the open session no longer verifies the old token (cache invalidated)');
SELECT is(pg_temp.other('SELECT count(*) FROM saas.organizations'), '0',
	'after retirement, the open session sees no rows with the old token');
SELECT is(public.dblink_exec('other', format('SET saas.context = %L', :'t2')), 'SET',
	'the open session switches to t2');
SELECT is(pg_temp.other('SELECT saas.current_org_id()'), :'org_a',
	'tokens of the remaining key verify in the open session');
SELECT is((saas.authenticate(:'t2')->>'org_id'), :'org_a', 'tokens of the remaining key verify here');

SELECT throws_ok(format('SELECT saas.retire_signing_key(%L)', :'k2'), 'SA409', NULL,
	'retiring the last active key is refused');
SELECT is(pg_temp.active_kids(), ARRAY[:'k2'], '... and the key stays active');
SELECT throws_ok(format('SELECT saas.retire_signing_key(%L)', :'k1'), 'SA404', NULL,
	'retiring an already retired key is refused');
SELECT throws_ok($$SELECT saas.retire_signing_key('no-such-key')$$, 'SA404', NULL,
	'retiring an unknown kid is refused');

------------------------------------------------------------------------
-- Within one transaction: a retirement counts from the next statement.
------------------------------------------------------------------------
BEGIN;
SELECT saas.authenticate(:'t2') IS NOT NULL AS ignore \gset
SELECT saas.rotate_signing_key() AS k3 \gset
SELECT saas.retire_signing_key(:'k2') IS NULL AS ignore \gset
SELECT is(saas.current_org_id(), NULL,
	'a key retired earlier in the same transaction no longer verifies the context');
COMMIT;
SELECT is(pg_temp.other('SELECT saas.current_org_id()'), NULL,
	'once committed, the open session stops verifying t2 as well');
SELECT is(pg_temp.jwt_header(saas.login(:'login_body')->>'token')->>'kid', :'k3',
	'new tokens carry the newest kid');

SELECT public.dblink_disconnect('other') AS ignore \gset
SELECT * FROM finish();
