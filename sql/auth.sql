-- Registration and login, through saas.http and the SQL functions.
SET ROLE regress_app;
SELECT r.status, r.body->'user'->>'email' AS email, r.body->'user'->>'role' AS role,
	   r.body->'organization'->>'slug' AS slug, r.body->>'token_type' AS token_type,
	   (r.body->>'expires_in')::int AS expires_in, r.body ? 'token' AS has_token,
	   r.body::text LIKE '%argon2%' OR r.body::text LIKE '%password%' AS leaks_hash
  FROM t.req('POST', '/auth/register', NULL,
			 '{"organization":{"name":"Auth Corp"},"email":"Owner@Auth.test","password":"correct horse battery","first_name":"Olive","last_name":"Owner"}') r;
-- The same email again, a taken slug, a derived slug that collides.
SELECT t.err('POST', '/auth/register', NULL, '{"organization":{"name":"Other"},"email":"owner@auth.test","password":"correct horse battery","first_name":"O","last_name":"O"}');
SELECT t.err('POST', '/auth/register', NULL, '{"organization":{"name":"X","slug":"auth-corp"},"email":"x@auth2.test","password":"correct horse battery","first_name":"O","last_name":"O"}');
SELECT r.status, r.body->'organization'->>'slug' LIKE 'auth-corp-%' AS suffixed
  FROM t.req('POST', '/auth/register', NULL, '{"organization":{"name":"Auth Corp"},"email":"y@auth3.test","password":"correct horse battery","first_name":"O","last_name":"O"}') r;
-- Validation: every problem at once, unknown fields, types, password policy.
SELECT t.err('POST', '/auth/register', NULL, '{"organization":{"name":""},"email":"nope","password":"short","first_name":7,"extra":true}');
SELECT t.err('POST', '/auth/register', NULL, '{"organization":{"name":"P"},"email":"p@p.test","password":"aaaaaaaaaaaa","first_name":"P","last_name":"P"}');
SELECT t.err('POST', '/auth/register', NULL, '{"organization":{"name":"P"},"email":"p@p.test","password":"password123","first_name":"P","last_name":"P"}');
SELECT t.err('POST', '/auth/register', NULL, '{"organization":"P","email":"p@p.test","password":"correct horse battery","first_name":"P","last_name":"P"}');
SELECT t.err('POST', '/auth/register', NULL, '[1,2,3]');

-- Login: success, wrong password and unknown email answer alike.
SELECT r.status, r.body->'user'->>'email' AS email, r.body->'user'->>'last_login' IS NOT NULL AS login_recorded
  FROM t.req('POST', '/auth/login', NULL, '{"email":"OWNER@auth.test","password":"correct horse battery"}') r;
SELECT t.err('POST', '/auth/login', NULL, '{"email":"owner@auth.test","password":"wrong horse battery"}');
SELECT t.err('POST', '/auth/login', NULL, '{"email":"ghost@auth.test","password":"correct horse battery"}');
SELECT t.err('POST', '/auth/login', NULL, '{"email":"owner@auth.test"}');
SELECT t.err('POST', '/auth/login', NULL, '{"email":"owner@auth.test","password":"correct horse battery","organization":"nope"}');

-- A token from login is a working context.
SELECT (saas.login('{"email":"owner@auth.test","password":"correct horse battery"}'))->>'token' AS tok \gset
BEGIN;
SELECT saas.authenticate(:'tok')->>'role' AS role, t.claim(:'tok', 'iss') AS iss, t.claim(:'tok', 'aud') AS aud;
SELECT count(*) AS users FROM saas.users;
COMMIT;
-- SQL callers get SQLSTATEs; class SA carries the HTTP status.
\set VERBOSITY default
SELECT saas.login('{"email":"owner@auth.test","password":"nope nope nope"}');
\set VERBOSITY terse
DO $$
BEGIN
	PERFORM saas.login('{"email":"owner@auth.test","password":"nope nope nope"}');
EXCEPTION WHEN OTHERS THEN
	RAISE NOTICE 'sqlstate %', SQLSTATE;
END
$$;
RESET ROLE;
-- Refused registrations stored nothing.
SELECT count(*) AS nothing_stored FROM saas.users WHERE email IN ('p@p.test', 'x@auth2.test', 'nope');
-- Password hashes are argon2id PHC strings with at least OWASP parameters.
SELECT password_hash LIKE '$argon2id$v=19$m=19456,t=2,p=1$%' AS owasp_argon2id
  FROM saas._credentials c JOIN saas.users u ON u.org_id = c.org_id AND u.id = c.user_id
 WHERE u.email = 'owner@auth.test';
-- The password may not be the email address.
SELECT t.err('POST', '/auth/register', NULL, '{"organization":{"name":"Same"},"email":"pass@word.test","password":"Pass@Word.test","first_name":"P","last_name":"P"}');
