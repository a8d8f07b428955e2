-- Row-level security as an application sees it: the login role "app" (a
-- member of saas_api) running arbitrary SQL. Without a verified context it
-- sees nothing and writes nothing; with a token it sees exactly its own
-- organization; writes into another tenant affect zero rows or fail; a plain
-- "user" cannot raise its own privileges; and no forged, tampered, expired or
-- wrongly signed context, nor any other setting, makes a row visible.
--
-- Needs: pgtap, pgcrypto, pg_saas, and the role app (LOGIN, IN ROLE saas_api).
-- Everything happens in one transaction that is rolled back.
\set ON_ERROR_STOP 1
\ir lib/jwt_forge.sql

BEGIN;
SELECT plan(63);

-- Fixtures, as the owner: organizations A and B (each with its admin), a
-- plain user in A, a super_admin, and the current signing key for forging.
SELECT r->>'token' AS tok_a, r->'organization'->>'id' AS org_a, r->'user'->>'id' AS admin_a
  FROM saas.register('{"organization":{"name":"Policy A","slug":"policy-a"},"email":"admin@policy-a.test",
	"password":"correct horse battery A","first_name":"Ada","last_name":"Admin"}') r \gset
SELECT r->>'token' AS tok_b, r->'organization'->>'id' AS org_b, r->'user'->>'id' AS admin_b
  FROM saas.register('{"organization":{"name":"Policy B","slug":"policy-b"},"email":"admin@policy-b.test",
	"password":"correct horse battery B","first_name":"Bob","last_name":"Admin"}') r \gset
SELECT saas.authenticate(:'tok_a') IS NOT NULL AS ignore \gset
SELECT saas.create_user('{"email":"user@policy-a.test","first_name":"Uma","last_name":"User","role":"user",
	"password":"correct horse battery U"}')->>'id' AS user_a \gset
SELECT saas.login('{"email":"user@policy-a.test","password":"correct horse battery U"}')->>'token' AS tok_u \gset
SELECT saas.create_super_admin('root@policy-platform.test', 'correct horse battery S') AS super_id \gset
SELECT saas.login('{"email":"root@policy-platform.test","password":"correct horse battery S"}')->>'token' AS tok_s \gset
-- B is full: one active user, employee_limit 1 (the owner's maintenance: no context).
SELECT set_config('saas.context', '', true) AS ignore \gset
UPDATE saas.organizations SET employee_limit = 1 WHERE id = :'org_b';
SELECT kid AS key_kid, secret AS key_secret FROM saas._signing_keys
 WHERE retired_at IS NULL ORDER BY created_at DESC, kid DESC LIMIT 1 \gset

-- Forged contexts, built by hand (see lib/jwt_forge.sql).
SELECT
	-- A's own token with its claims rewritten to B; A's signature kept.
	split_part(:'tok_a', '.', 1) || '.'
		|| pg_temp.b64url(convert_to((pg_temp.jwt_claims(:'tok_a') || jsonb_build_object('org_id', :'org_b'))::text, 'UTF8'))
		|| '.' || split_part(:'tok_a', '.', 3) AS tok_tampered,
	-- The real kid, signed with another secret.
	pg_temp.jwt_forge(jsonb_build_object('alg', 'HS256', 'typ', 'JWT', 'kid', :'key_kid'),
					  pg_temp.jwt_claims_for(:'admin_b', :'org_b', 'admin'), gen_random_bytes(64)) AS tok_wrong_key,
	-- alg none, no signature.
	pg_temp.jwt_forge(jsonb_build_object('alg', 'none', 'typ', 'JWT', 'kid', :'key_kid'),
					  pg_temp.jwt_claims_for(:'admin_b', :'org_b', 'admin'), NULL) AS tok_alg_none,
	-- Real key, expired an hour ago (well past the leeway).
	pg_temp.jwt_forge(jsonb_build_object('alg', 'HS256', 'typ', 'JWT', 'kid', :'key_kid'),
					  pg_temp.jwt_claims_for(:'admin_b', :'org_b', 'admin', -7200, -3600), :'key_secret') AS tok_expired,
	-- Real key, valid only from an hour from now.
	pg_temp.jwt_forge(jsonb_build_object('alg', 'HS256', 'typ', 'JWT', 'kid', :'key_kid'),
					  pg_temp.jwt_claims_for(:'admin_b', :'org_b', 'admin', 3600, 7200), :'key_secret') AS tok_not_yet,
	-- Real secret, but a kid that names no key.
	pg_temp.jwt_forge(jsonb_build_object('alg', 'HS256', 'typ', 'JWT', 'kid', 'no-such-key'),
					  pg_temp.jwt_claims_for(:'admin_b', :'org_b', 'admin'), :'key_secret') AS tok_unknown_kid,
	-- Real key, another audience.
	pg_temp.jwt_forge(jsonb_build_object('alg', 'HS256', 'typ', 'JWT', 'kid', :'key_kid'),
					  pg_temp.jwt_claims_for(:'admin_b', :'org_b', 'admin') || '{"aud":"someone-else"}', :'key_secret') AS tok_wrong_aud,
	-- Real key, a role the platform does not have.
	pg_temp.jwt_forge(jsonb_build_object('alg', 'HS256', 'typ', 'JWT', 'kid', :'key_kid'),
					  pg_temp.jwt_claims_for(:'admin_b', :'org_b', 'root'), :'key_secret') AS tok_bad_role,
	-- Real key, the "trusted" marker of the extension's internal tokens.
	pg_temp.jwt_forge(jsonb_build_object('alg', 'HS256', 'typ', 'JWT', 'kid', :'key_kid'),
					  pg_temp.jwt_claims_for(:'admin_b', :'org_b', 'admin') || '{"trusted":true}', :'key_secret') AS tok_trusted,
	-- Control: real key, proper claims. Whoever holds the key is B's admin.
	pg_temp.jwt_forge(jsonb_build_object('alg', 'HS256', 'typ', 'JWT', 'kid', :'key_kid'),
					  pg_temp.jwt_claims_for(:'admin_b', :'org_b', 'admin'), :'key_secret') AS tok_control
\gset

-- affected(sql): rows changed by one statement, run as the caller.
CREATE FUNCTION pg_temp.affected(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	EXECUTE q;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
-- seen(): what the caller can see, in one line.
CREATE FUNCTION pg_temp.seen() RETURNS text LANGUAGE sql AS $$
	SELECT format('orgs=%s users=%s org_id=%s',
				  (SELECT count(*) FROM saas.organizations),
				  (SELECT count(*) FROM saas.users),
				  coalesce(saas.current_org_id()::text, 'null'))
$$;
-- try_set(name, value): set a setting for the transaction, ignoring refusal.
CREATE FUNCTION pg_temp.try_set(name text, value text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config(name, value, true);
EXCEPTION WHEN OTHERS THEN
	NULL;
END
$$;
-- no_context(): back to "no context" for the transaction.
CREATE FUNCTION pg_temp.no_context() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('saas.context', '', true);
END
$$;

SELECT pg_temp.no_context();
SET LOCAL ROLE app;

------------------------------------------------------------------------
-- 1. No context: fail closed.
------------------------------------------------------------------------
SELECT is(saas.current_org_id(), NULL, 'no context: current_org_id() is NULL');
SELECT is(saas.current_role(), NULL, 'no context: current_role() is NULL');
SELECT is_empty('SELECT * FROM saas.organizations', 'no context: organizations shows zero rows');
SELECT is_empty('SELECT * FROM saas.users', 'no context: users shows zero rows');
SELECT throws_ok($$INSERT INTO saas.organizations (name, slug) VALUES ('Evil', 'evil')$$,
	'SA401', NULL, 'no context: inserting an organization is refused');
SELECT throws_ok(format($$INSERT INTO saas.users (org_id, email, first_name, last_name)
	VALUES (%L, 'evil@policy-a.test', 'E', 'Vil')$$, :'org_a'),
	'SA401', NULL, 'no context: inserting a user is refused');
SELECT is(pg_temp.affected($$UPDATE saas.organizations SET name = 'Hacked'$$), 0::bigint,
	'no context: updating organizations affects zero rows');
SELECT is(pg_temp.affected($$DELETE FROM saas.users$$), 0::bigint,
	'no context: deleting users affects zero rows');

------------------------------------------------------------------------
-- 2. Admin of A.
------------------------------------------------------------------------
SELECT is((saas.authenticate(:'tok_a')->>'org_id')::uuid, :'org_a'::uuid,
	'authenticate(A''s admin token) returns its claims');
SELECT is(saas.current_org_id(), :'org_a'::uuid, 'A: current_org_id() is A');
SELECT is(saas.current_user_id(), :'admin_a'::uuid, 'A: current_user_id() is A''s admin');
SELECT is(saas.current_role(), 'admin', 'A: current_role() is admin');
SELECT results_eq('SELECT id FROM saas.organizations', ARRAY[:'org_a'::uuid],
	'A: organizations shows A only');
SELECT set_eq('SELECT email FROM saas.users', ARRAY['admin@policy-a.test', 'user@policy-a.test'],
	'A: users shows A''s users only');
SELECT is_empty(format('SELECT * FROM saas.users WHERE org_id = %L OR id = %L', :'org_b', :'admin_b'),
	'A: B''s users are invisible even when asked for by id');
SELECT is(pg_temp.affected(format($$UPDATE saas.organizations SET name = 'Hacked' WHERE id = %L$$, :'org_b')),
	0::bigint, 'A: updating B''s organization affects zero rows');
SELECT is(pg_temp.affected(format($$DELETE FROM saas.organizations WHERE id = %L$$, :'org_b')),
	0::bigint, 'A: deleting B''s organization affects zero rows');
SELECT is(pg_temp.affected(format($$UPDATE saas.users SET first_name = 'Hacked' WHERE org_id = %L$$, :'org_b')),
	0::bigint, 'A: updating B''s users affects zero rows');
SELECT is(pg_temp.affected(format($$DELETE FROM saas.users WHERE org_id = %L$$, :'org_b')),
	0::bigint, 'A: deleting B''s users affects zero rows');
SELECT throws_ok(format($$INSERT INTO saas.users (org_id, email, first_name, last_name, role, status)
	VALUES (%L, 'mole@policy-b.test', 'Mo', 'Le', 'admin', 'inactive')$$, :'org_b'),
	'42501', NULL, 'A: inserting a user into B is refused');
-- B is at its employee limit: the refusal must still be the RLS one, not a
-- message that reveals B's existence and its limit.
SELECT throws_ok(format($$INSERT INTO saas.users (org_id, email, first_name, last_name, role)
	VALUES (%L, 'mole@policy-b.test', 'Mo', 'Le', 'admin')$$, :'org_b'),
	'42501', NULL, 'A: inserting an active user into a full B is refused by RLS, B''s limit not revealed');
SELECT throws_ok(format($$UPDATE saas.users SET org_id = %L WHERE id = %L$$, :'org_b', :'user_a'),
	'42501', NULL, 'A: moving one of A''s users into B is refused');
SELECT is(pg_temp.affected(format($$UPDATE saas.organizations SET name = 'Policy A2' WHERE id = %L$$, :'org_a')),
	1::bigint, 'A: (control) its admin updates its own organization');
SELECT lives_ok(format($$INSERT INTO saas.users (org_id, email, first_name, last_name)
	VALUES (%L, 'new@policy-a.test', 'New', 'User')$$, :'org_a'),
	'A: (control) its admin inserts a user into A');

------------------------------------------------------------------------
-- 3. A plain user of A.
------------------------------------------------------------------------
SELECT lives_ok(format('SELECT saas.authenticate(%L)', :'tok_u'), 'authenticate(A''s user token)');
SELECT is(saas.current_role(), 'user', 'user: current_role() is user');
SELECT results_eq('SELECT id FROM saas.organizations', ARRAY[:'org_a'::uuid],
	'user: organizations shows A only');
SELECT is((SELECT count(*) FROM saas.users WHERE org_id <> :'org_a'), 0::bigint,
	'user: sees no user outside A');
SELECT throws_ok(format($$UPDATE saas.users SET role = 'admin' WHERE id = %L$$, :'user_a'),
	'SA403', NULL, 'user: cannot make itself admin');
SELECT throws_ok(format($$UPDATE saas.users SET email = 'boss@policy-a.test' WHERE id = %L$$, :'user_a'),
	'SA403', NULL, 'user: cannot change its own email');
SELECT throws_ok(format($$UPDATE saas.users SET status = 'active', external_user_ids = '{"user_service":"x"}' WHERE id = %L$$, :'user_a'),
	'SA403', NULL, 'user: cannot change its own external ids');
SELECT throws_ok(format($$INSERT INTO saas.users (org_id, email, first_name, last_name)
	VALUES (%L, 'friend@policy-a.test', 'Fr', 'Iend')$$, :'org_a'),
	'SA403', NULL, 'user: cannot insert users');
SELECT is(pg_temp.affected(format($$UPDATE saas.users SET first_name = 'Hacked' WHERE id = %L$$, :'admin_a')),
	0::bigint, 'user: updating another user of A affects zero rows');
SELECT is(pg_temp.affected($$DELETE FROM saas.users$$), 0::bigint, 'user: deleting users affects zero rows');
SELECT is(pg_temp.affected($$UPDATE saas.organizations SET name = 'Mine'$$), 0::bigint,
	'user: updating its organization affects zero rows');
SELECT is(pg_temp.affected(format($$UPDATE saas.users SET first_name = 'Umberta' WHERE id = %L$$, :'user_a')),
	1::bigint, 'user: (control) updates its own first name');

------------------------------------------------------------------------
-- 4. super_admin: every organization.
------------------------------------------------------------------------
SELECT lives_ok(format('SELECT saas.authenticate(%L)', :'tok_s'), 'authenticate(super_admin token)');
SELECT set_has('SELECT id FROM saas.organizations', format('VALUES (%L::uuid), (%L::uuid)', :'org_a', :'org_b'),
	'super_admin: sees A and B');
SELECT is(pg_temp.affected(format($$UPDATE saas.organizations SET employee_limit = 5 WHERE id = %L$$, :'org_b')),
	1::bigint, 'super_admin: updates B');

------------------------------------------------------------------------
-- 5. Spoofing: nothing but a valid signed token changes what is visible.
------------------------------------------------------------------------
SELECT pg_temp.no_context();
SELECT pg_temp.try_set('saas.context', :'tok_tampered');
SELECT is(pg_temp.seen(), 'orgs=0 users=0 org_id=null', 'saas.context = A''s token with org_id rewritten to B: nothing visible');

SELECT pg_temp.no_context();
SELECT pg_temp.try_set('saas.context', :'tok_wrong_key');
SELECT is(pg_temp.seen(), 'orgs=0 users=0 org_id=null', 'saas.context = token with the real kid but another secret: nothing visible');

SELECT pg_temp.no_context();
SELECT pg_temp.try_set('saas.context', :'tok_alg_none');
SELECT is(pg_temp.seen(), 'orgs=0 users=0 org_id=null', 'saas.context = alg none token: nothing visible');

SELECT pg_temp.no_context();
SELECT pg_temp.try_set('saas.context', :'tok_expired');
SELECT is(pg_temp.seen(), 'orgs=0 users=0 org_id=null', 'saas.context = expired token signed with the real key: nothing visible');

SELECT pg_temp.no_context();
SELECT pg_temp.try_set('saas.context', :'tok_not_yet');
SELECT is(pg_temp.seen(), 'orgs=0 users=0 org_id=null', 'saas.context = token not valid yet: nothing visible');

SELECT pg_temp.no_context();
SELECT pg_temp.try_set('saas.context', :'tok_unknown_kid');
SELECT is(pg_temp.seen(), 'orgs=0 users=0 org_id=null', 'saas.context = token with an unknown kid: nothing visible');

SELECT pg_temp.no_context();
SELECT pg_temp.try_set('saas.context', :'tok_wrong_aud');
SELECT is(pg_temp.seen(), 'orgs=0 users=0 org_id=null', 'saas.context = token for another audience: nothing visible');

SELECT pg_temp.no_context();
SELECT pg_temp.try_set('saas.context', :'tok_bad_role');
SELECT is(pg_temp.seen(), 'orgs=0 users=0 org_id=null', 'saas.context = token with an unknown role: nothing visible');

SELECT pg_temp.no_context();
SET LOCAL saas.context = 'x.y.z';
SELECT is(pg_temp.seen(), 'orgs=0 users=0 org_id=null', 'SET saas.context = ''x.y.z'': nothing visible');

SELECT pg_temp.no_context();
SELECT pg_temp.try_set('saas.context', 'eyJhbGciOiJub25lIn0.eyJvcmdfaWQiOiIxIn0.');
SELECT is(pg_temp.seen(), 'orgs=0 users=0 org_id=null', 'saas.context = unsigned junk token: nothing visible');

SELECT pg_temp.no_context();
SELECT pg_temp.try_set('request.jwt.claims',
	json_build_object('org_id', :'org_b', 'sub', :'admin_b', 'role', 'super_admin')::text);
SELECT pg_temp.try_set('request.jwt.claim.org_id', :'org_b');
SELECT is(pg_temp.seen(), 'orgs=0 users=0 org_id=null', 'request.jwt.claims (PostgREST style): nothing visible');

SELECT pg_temp.no_context();
SELECT pg_temp.try_set('saas.org_id', :'org_b');
SELECT pg_temp.try_set('saas.role', 'super_admin');
SELECT pg_temp.try_set('saas.user_id', :'admin_b');
SELECT is(pg_temp.seen(), 'orgs=0 users=0 org_id=null', 'saas.org_id / saas.role / saas.user_id settings: nothing visible');

SELECT throws_ok(format('SELECT saas.authenticate(%L)', :'tok_trusted'), 'SA401', NULL,
	'authenticate refuses a token carrying the internal "trusted" marker');

-- authenticate says 401 for each bad token.
SELECT throws_ok(format('SELECT saas.authenticate(%L)', :'tok_tampered'), 'SA401', NULL,
	'authenticate(tampered token) is a 401');
SELECT throws_ok(format('SELECT saas.authenticate(%L)', :'tok_wrong_key'), 'SA401', NULL,
	'authenticate(token signed with another secret) is a 401');
SELECT throws_ok(format('SELECT saas.authenticate(%L)', :'tok_alg_none'), 'SA401', NULL,
	'authenticate(alg none token) is a 401');
SELECT throws_ok(format('SELECT saas.authenticate(%L)', :'tok_expired'), 'SA401', NULL,
	'authenticate(expired token) is a 401');
SELECT throws_ok(format('SELECT saas.authenticate(%L)', :'tok_unknown_kid'), 'SA401', NULL,
	'authenticate(token with unknown kid) is a 401');
SELECT throws_ok('SELECT saas.authenticate(NULL)', 'SA401', NULL, 'authenticate(NULL) is a 401');

-- A failed authenticate leaves the context it found (here: none).
SELECT pg_temp.no_context();
SELECT throws_ok(format('SELECT saas.authenticate(%L)', :'tok_wrong_key'), 'SA401', NULL,
	'authenticate(bad token) with no context before');
SELECT is(pg_temp.seen(), 'orgs=0 users=0 org_id=null', '... and still nothing visible after it');

-- Controls: a well-signed token does work, whether through authenticate or
-- put in the setting directly; so the zeros above are the verifier's doing.
SELECT pg_temp.no_context();
SELECT pg_temp.try_set('saas.context', :'tok_control');
SELECT is(pg_temp.seen(), format('orgs=1 users=1 org_id=%s', :'org_b'),
	'(control) saas.context = token signed with the real key: B visible');
SELECT pg_temp.no_context();
SELECT is((saas.authenticate(:'tok_b')->>'org_id')::uuid, :'org_b'::uuid,
	'(control) authenticate(B''s admin token)');
SELECT is(pg_temp.seen(), format('orgs=1 users=1 org_id=%s', :'org_b'),
	'(control) with B''s token, B and its one user visible');

RESET ROLE;
SELECT * FROM finish();
ROLLBACK;
