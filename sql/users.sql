-- Users: CRUD through saas.http with role rules, ETag/If-Match, pagination,
-- the last-admin rule, the employee limit, and 404 across tenants.
SELECT t.register('users-a', 'admin@users-a.test') AS admin_a \gset
SELECT t.register('users-b', 'admin@users-b.test') AS admin_b \gset
SET ROLE regress_app;

-- Admin creates users (with and without password).
SELECT r.status, r.headers->>'ETag' AS etag, r.body->>'email' AS email, r.body->>'role' AS role, r.body->>'status' AS status,
	   r.body ? 'password' OR r.body ? 'password_hash' AS leaks
  FROM t.req('POST', '/users', :'admin_a', '{"email":"Bob@Users-A.test","first_name":"Bob","last_name":"B","role":"user","password":"bobs long password"}') r;
SELECT r.status, r.body->>'email' AS email, r.body->'external_user_ids' AS ext
  FROM t.req('POST', '/users', :'admin_a', '{"email":"carol@users-a.test","first_name":"Carol","last_name":"C","role":"admin","external_user_ids":{"user_service":"ext_1"}}') r;
SELECT t.err('POST', '/users', :'admin_a', '{"email":"bob@users-a.test","first_name":"Bob","last_name":"B","role":"user"}');
SELECT t.err('POST', '/users', :'admin_a', '{"email":"d@users-a.test","first_name":"D","last_name":"D","role":"super_admin","nickname":"x"}');
SELECT t.err('POST', '/users', :'admin_a', '{"email":"d@users-a.test","first_name":"D","last_name":"D","role":"user","password":"123"}');

-- A plain user logs in, reads, may update its own names and password only.
SELECT (saas.login('{"email":"bob@users-a.test","password":"bobs long password"}'))->>'token' AS bob \gset
SELECT status, jsonb_array_length(body->'data') AS n FROM t.req('GET', '/users', :'bob');
SELECT t.err('POST', '/users', :'bob', '{"email":"e@users-a.test","first_name":"E","last_name":"E","role":"user"}');
SELECT r.status, r.body->>'first_name' AS first_name, r.headers->>'ETag' AS etag
  FROM t.req('PUT', '/users/' || t.claim(:'bob', 'sub'), :'bob', '{"first_name":"Robert"}') r;
SELECT t.err('PUT', '/users/' || t.claim(:'bob', 'sub'), :'bob', '{"role":"admin"}');
SELECT t.err('PUT', '/users/' || t.claim(:'admin_a', 'sub'), :'bob', '{"first_name":"Hacked"}');
SELECT t.err('PUT', '/users/' || t.claim(:'bob', 'sub'), :'bob', '{"password":"a new long password"}');
SELECT t.err('PUT', '/users/' || t.claim(:'bob', 'sub'), :'bob', '{"password":"a new long password","current_password":"not it at all"}');
SELECT status FROM t.req('PUT', '/users/' || t.claim(:'bob', 'sub'), :'bob', '{"password":"a new long password","current_password":"bobs long password"}');
SELECT (saas.login('{"email":"bob@users-a.test","password":"a new long password"}'))->'user'->>'first_name' AS relogin;
-- The password change ended bob's sessions: the old token is refused; a new login works.
SELECT t.err('GET', '/users', :'bob');
SELECT (saas.login('{"email":"bob@users-a.test","password":"a new long password"}'))->>'token' AS bob \gset

-- ETag / If-Match: a stale version is 412 and changes nothing.
SELECT t.err('PUT', '/users/' || t.claim(:'bob', 'sub'), :'admin_a', '{"last_name":"Stale"}', '{"if-match":"\"1\""}');
SELECT r.status, r.body->>'last_name' AS last_name,
	   (r.body->>'version')::int = (g.body->>'version')::int + 1 AS version_bumped
  FROM t.req('GET', '/users/' || t.claim(:'bob', 'sub'), :'admin_a') g,
	   LATERAL t.req('PUT', '/users/' || t.claim(:'bob', 'sub'), :'admin_a', '{"last_name":"Fresh"}',
					 jsonb_build_object('if-match', g.headers->>'ETag')) r;
SELECT t.err('PUT', '/users/' || t.claim(:'bob', 'sub'), :'admin_a', '{"last_name":"X"}', '{"if-match":"garbage"}');
SELECT t.err('PUT', '/users/' || t.claim(:'bob', 'sub'), :'admin_a', '{}');
SELECT r.status, r.headers->>'ETag' AS etag FROM t.req('GET', '/users/' || t.claim(:'bob', 'sub'), :'admin_a') r;

-- Another tenant's user is 404 for every verb; so is a malformed id.
SELECT t.err('GET', '/users/' || t.claim(:'bob', 'sub'), :'admin_b');
SELECT t.err('PUT', '/users/' || t.claim(:'bob', 'sub'), :'admin_b', '{"first_name":"X"}');
SELECT t.err('DELETE', '/users/' || t.claim(:'bob', 'sub'), :'admin_b');
SELECT t.err('GET', '/users/not-a-uuid', :'admin_a');
SELECT status, jsonb_array_length(body->'data') AS n_b FROM t.req('GET', '/users', :'admin_b');

-- Pagination to the end, filters, search.
SELECT status, jsonb_array_length(body->'data') AS n, body->>'next_cursor' IS NOT NULL AS more
  FROM t.req('GET', '/users?limit=2', :'admin_a');
SELECT r2.status, jsonb_array_length(r2.body->'data') AS n, r2.body->'next_cursor' AS next
  FROM t.req('GET', '/users?limit=2', :'admin_a') r1,
	   t.req('GET', '/users?limit=2&cursor=' || (r1.body->>'next_cursor'), :'admin_a') r2;
SELECT jsonb_path_query_array(body, '$.data[*].email') AS admins FROM t.req('GET', '/users?role=admin', :'admin_a');
SELECT jsonb_path_query_array(body, '$.data[*].email') AS found FROM t.req('GET', '/users?q=ROB', :'admin_a');
SELECT jsonb_path_query_array(body, '$.data[*].email') AS wildcard_is_literal FROM t.req('GET', '/users?q=%25', :'admin_a');
SELECT t.err('GET', '/users?limit=0', :'admin_a');
SELECT t.err('GET', '/users?limit=abc&status=gone&cursor=!!&bogus=1', :'admin_a');

-- Delete rules: not itself, not the last admin; 204 and gone afterwards.
SELECT t.err('DELETE', '/users/' || t.claim(:'admin_a', 'sub'), :'admin_a');
SELECT t.err('DELETE', '/users/' || t.claim(:'admin_a', 'sub'), :'bob');
SELECT status, body IS NULL AS no_body FROM t.req('DELETE', '/users/' || t.claim(:'bob', 'sub'), :'admin_a');
SELECT t.err('GET', '/users/' || t.claim(:'bob', 'sub'), :'admin_a');
SELECT t.err('PUT', '/users/' || t.claim(:'admin_b', 'sub'), :'admin_b', '{"role":"user"}');
SELECT t.err('PUT', '/users/' || t.claim(:'admin_b', 'sub'), :'admin_b', '{"status":"inactive"}');

-- The employee limit (free tier default 10 active users).
SELECT count(*) FILTER (WHERE status = 201) AS created, count(*) FILTER (WHERE status = 409) AS refused
  FROM generate_series(1, 10) i,
	   LATERAL t.req('POST', '/users', :'admin_b',
					 format('{"email":"u%s@users-b.test","first_name":"U","last_name":"U","role":"user"}', i)) r;
SELECT t.err('POST', '/users', :'admin_b', '{"email":"u99@users-b.test","first_name":"U","last_name":"U","role":"user"}');
SELECT status FROM t.req('POST', '/users', :'admin_b', '{"email":"u98@users-b.test","first_name":"U","last_name":"U","role":"user","status":"inactive"}');

-- The same operations as SQL functions.
BEGIN;
SELECT saas.authenticate(:'admin_a') IS NOT NULL AS authenticated;
SELECT saas.create_user('{"email":"sql@users-a.test","first_name":"S","last_name":"Q","role":"user"}')->>'email' AS created;
SELECT jsonb_array_length(saas.list_users('{"limit":50}')->'data') AS listed;
SELECT saas.update_user(t.claim(:'admin_a', 'sub')::uuid, '{"first_name":"Ada"}')->>'first_name' AS updated;
SELECT saas.update_user(t.claim(:'admin_a', 'sub')::uuid, '{"first_name":"Ada"}', 1);
ROLLBACK;
RESET ROLE;
-- A deactivated user's token stops working (not only at its expiry).
SET ROLE regress_app;
SELECT status FROM t.req('POST', '/users', :'admin_a', '{"email":"leaver@users-a.test","first_name":"L","last_name":"L","role":"user","password":"leavers long password"}');
SELECT (saas.login('{"email":"leaver@users-a.test","password":"leavers long password"}'))->>'token' AS leaver \gset
SELECT status FROM t.req('PUT', '/users/' || t.claim(:'leaver', 'sub'), :'admin_a', '{"status":"suspended"}');
SELECT t.err('GET', '/users', :'leaver');
SELECT saas.authenticate(:'leaver');
RESET ROLE;
