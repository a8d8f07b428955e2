-- Sessions with refresh tokens: issued with login's answer, rotated on use,
-- reuse of a rotated one revokes the family (and its access tokens); ended
-- by logout, logout-all, a password change and deactivation; GET /auth/me.
SELECT t.register('sess-a', 'admin@sess-a.test') AS tok_a \gset
SELECT t.register('sess-b', 'admin@sess-b.test') AS tok_b \gset
-- t.sess_login: the whole answer of a login of the sess-a admin.
CREATE FUNCTION t.sess_login() RETURNS jsonb LANGUAGE sql AS $$
	SELECT saas.login('{"email":"admin@sess-a.test","password":"correct horse battery"}')
$$;
-- t.refresh: POST /auth/refresh as saas.http answers it.
CREATE FUNCTION t.refresh(rt text) RETURNS TABLE (status int, body jsonb) LANGUAGE sql AS $$
	SELECT r.status, r.body FROM t.req('POST', '/auth/refresh', NULL,
		jsonb_build_object('refresh_token', rt)::text) r
$$;
-- t.me_status: GET /auth/me's status with a token.
CREATE FUNCTION t.me_status(tok text) RETURNS int LANGUAGE sql AS $$
	SELECT r.status FROM t.req('GET', '/auth/me', tok) r
$$;

CREATE FUNCTION t.rt_raw(rt text) RETURNS bytea LANGUAGE sql AS $$
	SELECT decode(rpad(translate(substr(rt, 4), '-_', '+/'), (length(rt) - 3 + 3) / 4 * 4, '='), 'base64')
$$;
CREATE FUNCTION t.rt_text(raw bytea) RETURNS text LANGUAGE sql AS $$
	SELECT 'rt_' || rtrim(translate(replace(encode(raw, 'base64'), E'\n', ''), '+/', '-_'), '=')
$$;
SET ROLE regress_app;

-- Login and register answer a refresh token: opaque, rt_ + 86 base64url characters (64 bytes: org id, token id, 256-bit secret).
SELECT t.sess_login() AS l \gset
SELECT ((:'l'::jsonb) ->> 'refresh_token') ~ '^rt_[A-Za-z0-9_-]{86}$' AS login_refresh_shape,
	   substr((:'l'::jsonb) ->> 'refresh_token', 4, 21) = left(translate(encode(uuid_send(t.claim((:'l'::jsonb) ->> 'token', 'org_id')::uuid), 'base64'), '+/', '-_'), 21)
	   AS starts_with_org_id,
	   ((:'l'::jsonb) ->> 'refresh_expires_in')::int AS refresh_expires_in;
SELECT saas.register('{"organization":{"name":"Sess C"},"email":"admin@sess-c.test",
	"password":"correct horse battery","first_name":"C","last_name":"C"}') ? 'refresh_token' AS register_has_refresh;
SELECT (:'l'::jsonb) ->> 'refresh_token' AS rt1, (:'l'::jsonb) ->> 'token' AS at1 \gset

-- GET /auth/me: user, organization (id, name, slug, tier), role.
SELECT r.status, r.body -> 'user' ->> 'email' AS email, r.body -> 'organization' ->> 'slug' AS slug,
	   r.body -> 'organization' ->> 'subscription_tier' AS tier, r.body ->> 'role' AS role,
	   (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(r.body -> 'organization') k) AS org_keys
  FROM t.req('GET', '/auth/me', :'at1') r;
SELECT t.err('GET', '/auth/me');
SELECT t.err('POST', '/auth/me', :'at1');
SELECT t.err('GET', '/auth/me?x=1', :'at1');
BEGIN;
SELECT saas.authenticate(:'tok_b') IS NOT NULL AS as_b;
SELECT saas.me() -> 'organization' ->> 'slug' AS me_sql;
COMMIT;
SELECT saas.me();

-- Rotation: a refresh answers a new access token and a new refresh token;
-- the new access token works, and the old access token still does (it ends
-- at its expiry, or with the session).
SELECT status AS r2_status, body AS r2 FROM t.refresh(:'rt1') \gset
SELECT :r2_status AS status, (:'r2'::jsonb) ? 'token' AS has_token, (:'r2'::jsonb) ->> 'token_type' AS token_type,
	   (:'r2'::jsonb) ->> 'refresh_token' <> :'rt1' AS new_refresh, (:'r2'::jsonb) ->> 'token' <> :'at1' AS new_access;
SELECT (:'r2'::jsonb) ->> 'refresh_token' AS rt2, (:'r2'::jsonb) ->> 'token' AS at2 \gset
SELECT t.me_status(:'at2') AS me_new_access, t.me_status(:'at1') AS me_old_access;
SELECT t.claim(:'at2', 'role') AS role, t.claim(:'at2', 'sub') = t.claim(:'at1', 'sub') AS same_user;
-- and once more: rt2 -> rt3
SELECT body ->> 'refresh_token' AS rt3, body ->> 'token' AS at3 FROM t.refresh(:'rt2') \gset

-- Reuse: rt1 (rotated) presented again: 401, the whole family is revoked
-- (rt3, the newest, too) and so are the family's access tokens.
SELECT status, body -> 'error' ->> 'code' AS code, body -> 'error' ->> 'message' AS message FROM t.refresh(:'rt1');
SELECT t.err('POST', '/auth/refresh', NULL, jsonb_build_object('refresh_token', :'rt3')::text) AS newest_after_reuse;
SELECT t.me_status(:'at1') AS at1, t.me_status(:'at2') AS at2, t.me_status(:'at3') AS at3;
RESET ROLE;
SELECT count(*) AS family_rows, count(*) FILTER (WHERE revoked_reason = 'reuse') AS revoked_for_reuse,
	   count(*) FILTER (WHERE used_at IS NOT NULL) AS used
  FROM saas._refresh_tokens WHERE family_id = (SELECT family_id FROM saas._refresh_tokens
  WHERE access_jti = t.claim(:'at1', 'jti'));
SELECT action, changes ? 'family_id' AS names_family FROM saas.audit_log WHERE action = 'refresh_reuse';
SET ROLE regress_app;
-- Another login (another session) is not touched.
SELECT t.sess_login() AS l2 \gset
SELECT (r).status FROM (SELECT t.refresh((:'l2'::jsonb) ->> 'refresh_token') r) x;

-- Refused, changing nothing: forged secret, other tenant's id, garbage, wrong shapes.
SELECT t.sess_login() ->> 'refresh_token' AS rt_f \gset
-- the same ids with another secret
SELECT t.err('POST', '/auth/refresh', NULL, jsonb_build_object('refresh_token',
	t.rt_text(substring(t.rt_raw(:'rt_f') FROM 1 FOR 32) || decode(repeat('00', 32), 'hex')))::text) AS forged_secret;
-- sess-b's organization id with sess-a's token id and secret
SELECT t.err('POST', '/auth/refresh', NULL, jsonb_build_object('refresh_token',
	t.rt_text(uuid_send(t.claim(:'tok_b', 'org_id')::uuid) || substring(t.rt_raw(:'rt_f') FROM 17)))::text) AS other_tenant;
SELECT t.err('POST', '/auth/refresh', NULL, '{"refresh_token":"rt_abc"}');
SELECT t.err('POST', '/auth/refresh', NULL, jsonb_build_object('refresh_token', :'rt_f' || '=')::text) AS padded;
SELECT t.err('POST', '/auth/refresh', NULL, jsonb_build_object('refresh_token', :'tok_a')::text) AS access_token_as_refresh;
SELECT t.err('POST', '/auth/refresh', NULL, '{}');
SELECT t.err('POST', '/auth/refresh', NULL, '{"refresh_token":"x","extra":1}');
SELECT t.err('POST', '/auth/refresh', NULL, '[1]');
SELECT t.err('GET', '/auth/refresh');
SELECT t.err('POST', '/auth/refresh', NULL, jsonb_build_object('refresh_token', repeat('a', 300))::text) AS too_long;
-- after all that, the real one still works (nothing was marked)
SELECT (t.refresh(:'rt_f')).status AS real_one_after_attacks;

-- SQL API: saas.refresh rotates; a bad token raises SA401; reuse answers the error object.
SELECT t.sess_login() ->> 'refresh_token' AS rt_s \gset
SELECT saas.refresh(:'rt_s') ? 'refresh_token' AS sql_rotates;
SELECT saas.refresh('rt_nope');
SELECT saas.refresh(:'rt_s') -> 'error' ->> 'code' AS sql_reuse;
SELECT saas.refresh(NULL);

-- Logout ends the current session's refresh family, not the others.
SELECT t.sess_login() AS la \gset
SELECT t.sess_login() AS lb \gset
SELECT status FROM t.req('POST', '/auth/logout', (:'la'::jsonb) ->> 'token');
SELECT t.err('POST', '/auth/refresh', NULL, jsonb_build_object('refresh_token', (:'la'::jsonb) ->> 'refresh_token')::text) AS after_logout;
SELECT (t.refresh((:'lb'::jsonb) ->> 'refresh_token')).status AS other_session;
-- Logout of a token issued by a refresh ends that family too.
SELECT t.sess_login() ->> 'refresh_token' AS rt_l \gset
SELECT body AS rl FROM t.refresh(:'rt_l') \gset
SELECT status FROM t.req('POST', '/auth/logout', (:'rl'::jsonb) ->> 'token');
SELECT t.err('POST', '/auth/refresh', NULL, jsonb_build_object('refresh_token', (:'rl'::jsonb) ->> 'refresh_token')::text) AS after_logout_of_refreshed;

-- Logout-all ends every family of the user.
SELECT t.sess_login() AS lc \gset
SELECT t.sess_login() AS ld \gset
SELECT status FROM t.req('POST', '/auth/logout-all', (:'lc'::jsonb) ->> 'token');
SELECT (t.refresh((:'lc'::jsonb) ->> 'refresh_token')).status AS c_after_all,
	   (t.refresh((:'ld'::jsonb) ->> 'refresh_token')).status AS d_after_all;

-- A password change ends them (the user's generation moves on).
SELECT t.sess_login() AS le \gset
SELECT status FROM t.req('PUT', '/users/' || t.claim((:'le'::jsonb) ->> 'token', 'sub'), (:'le'::jsonb) ->> 'token',
	'{"password":"another long passphrase","current_password":"correct horse battery"}');
SELECT (t.refresh((:'le'::jsonb) ->> 'refresh_token')).status AS after_password_change;

-- Deactivation ends them: a second admin deactivates a user who had a session.
SELECT saas.login('{"email":"admin@sess-a.test","password":"another long passphrase"}') ->> 'token' AS adm \gset
SELECT body ->> 'id' AS uid FROM t.req('POST', '/users', :'adm',
	'{"email":"u@sess-a.test","first_name":"U","last_name":"U","role":"user","password":"user long passphrase"}') \gset
SELECT saas.login('{"email":"u@sess-a.test","password":"user long passphrase"}') AS lu \gset
SELECT status FROM t.req('PUT', '/users/' || :'uid', :'adm', '{"status":"inactive"}');
SELECT t.err('POST', '/auth/refresh', NULL, jsonb_build_object('refresh_token', (:'lu'::jsonb) ->> 'refresh_token')::text) AS after_deactivation;

-- The table is private: saas_api reads nothing and writes nothing.
SELECT t.sql('SELECT * FROM saas._refresh_tokens');
SELECT t.sql('UPDATE saas._refresh_tokens SET revoked_at = NULL');
RESET ROLE;
-- Only hashes are stored: no row holds the token text or its secret.
SELECT count(*) FILTER (WHERE octet_length(token_hash) = 32) = count(*) AS all_hashed FROM saas._refresh_tokens;
SELECT count(*) AS rows_holding_secret FROM saas._refresh_tokens
 WHERE position(substring(t.rt_raw(:'rt_f') FROM 33) IN token_hash) > 0;

-- The refresh route has a rate limit of its own (scope auth_refresh, burst 10), per client
-- address: of 12 quick refreshes from one address the last 2 are 429 with Retry-After.
-- (x-attempt makes each row a distinct call: constant calls would be evaluated once)
SELECT count(*) FILTER (WHERE r.status = 401) AS answered,
	   count(*) FILTER (WHERE r.status = 429 AND r.headers ? 'Retry-After') AS refused
  FROM generate_series(1, 12) i,
	   LATERAL t.req('POST', '/auth/refresh', NULL, '{"refresh_token":"rt_x"}',
					 jsonb_build_object('x-client-addr', '203.0.113.77', 'x-attempt', i)) r;
-- another address is not affected
SELECT status FROM t.req('POST', '/auth/refresh', NULL, '{"refresh_token":"rt_x"}', '{"x-client-addr":"203.0.113.78"}');
-- the scope is a known one; an unknown scope is still refused
SELECT t.sql($$INSERT INTO saas.rate_limits VALUES ('*', 'auth_nonsense', 1, 1)$$);
