-- fill.sql: tenant data made through the API (saas.http, as an application role), the same
-- calls in every version since 0.1.0: two organizations, users created, changed and deleted,
-- a password change, a logout. Suite 68_upgrade runs it before the upgrade; the
-- dump/restore TAP test (test/tap/220_dump_restore.pl) does the same over its own calls.
-- psql variables: none. Leaves the tokens in the table upgrade_fill.tokens (owner only).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE SCHEMA upgrade_fill;
CREATE TABLE upgrade_fill.tokens (name text PRIMARY KEY, token text NOT NULL, user_id uuid);
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'upgrade_app') THEN
		CREATE ROLE upgrade_app LOGIN IN ROLE saas_api;
	END IF;
END
$$;
GRANT USAGE ON SCHEMA upgrade_fill TO upgrade_app;
GRANT ALL ON upgrade_fill.tokens TO upgrade_app;

SET ROLE upgrade_app;
CREATE FUNCTION pg_temp.call(method text, path text, tok text, body jsonb, want int)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	r record;
BEGIN
	SELECT * INTO r FROM saas.http(method, path,
		jsonb_strip_nulls(jsonb_build_object('authorization', 'Bearer ' || tok,
											 'content-type', 'application/json')),
		body::text);
	IF r.status <> want THEN
		RAISE EXCEPTION 'fill: % % answered % (expected %): %', method, path, r.status, want, r.body;
	END IF;
	RETURN coalesce(r.body::jsonb, '{}');
END
$$;

DO $$
DECLARE
	a jsonb;
	b jsonb;
	u jsonb;
	v jsonb;
	t text;
BEGIN
	a := pg_temp.call('POST', '/auth/register', NULL, '{"organization":{"name":"Upgrade Alpha","slug":"upgrade-alpha"},
		"email":"ada@alpha.test","password":"correct horse battery","first_name":"Ada","last_name":"Alpha"}', 201);
	INSERT INTO upgrade_fill.tokens VALUES ('ada', a->>'token', (a->'user'->>'id')::uuid);
	b := pg_temp.call('POST', '/auth/register', NULL, '{"organization":{"name":"Upgrade Beta","slug":"upgrade-beta"},
		"email":"bo@beta.test","password":"correct horse battery","first_name":"Bo","last_name":"Beta"}', 201);
	INSERT INTO upgrade_fill.tokens VALUES ('bo', b->>'token', (b->'user'->>'id')::uuid);
	u := pg_temp.call('POST', '/users', a->>'token', '{"email":"cy@alpha.test","first_name":"Cy","last_name":"Alpha",
		"role":"user","password":"cy password one"}', 201);
	INSERT INTO upgrade_fill.tokens VALUES ('cy', '', (u->>'id')::uuid);
	PERFORM pg_temp.call('PUT', '/users/' || (u->>'id'), a->>'token', '{"last_name":"Alphason"}', 200);
	v := pg_temp.call('POST', '/users', a->>'token', '{"email":"dee@alpha.test","first_name":"Dee","last_name":"Gone",
		"role":"user"}', 201);
	PERFORM pg_temp.call('DELETE', '/users/' || (v->>'id'), a->>'token', NULL, 204);
	PERFORM pg_temp.call('PUT', '/organizations/' || (a->'organization'->>'id'), a->>'token', '{"name":"Upgrade Alpha Inc"}', 200);
	-- a password change (the old one stops working) and a token ended by logout
	t := pg_temp.call('POST', '/auth/login', NULL, '{"email":"cy@alpha.test","password":"cy password one"}', 200)->>'token';
	PERFORM pg_temp.call('PUT', '/users/' || (u->>'id'), t, '{"password":"cy password two","current_password":"cy password one"}', 200);
	t := pg_temp.call('POST', '/auth/login', NULL, '{"email":"cy@alpha.test","password":"cy password two"}', 200)->>'token';
	UPDATE upgrade_fill.tokens SET token = t WHERE name = 'cy';
	t := pg_temp.call('POST', '/auth/login', NULL, '{"email":"bo@beta.test","password":"correct horse battery"}', 200)->>'token';
	PERFORM pg_temp.call('POST', '/auth/logout', t, NULL, 204);
	INSERT INTO upgrade_fill.tokens VALUES ('bo_logged_out', t, (b->'user'->>'id')::uuid);
	PERFORM pg_temp.call('POST', '/users', b->>'token', '{"email":"eve@beta.test","first_name":"Eve","last_name":"Beta","role":"admin"}', 201);
END
$$;
RESET ROLE;
