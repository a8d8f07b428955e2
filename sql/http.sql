-- saas.http: the router's answers to odd requests. Every error has the
-- API's shape; nothing is a 500; refused requests store nothing.
SELECT t.register('http-a', 'admin@http-a.test') AS tok \gset
SET ROLE regress_app;
-- Shape of an error, and request ids (client's kept when sane).
SELECT r.status, r.headers->>'X-Request-Id' AS rid, r.body->'error'->>'request_id' AS body_rid,
	   r.body->'error'->>'code' AS code, jsonb_typeof(r.body->'error'->'details') AS details
  FROM t.req('GET', '/nowhere', NULL, NULL, '{"x-request-id":"req-123"}') r;
SELECT length(r.headers->>'X-Request-Id') AS generated_len
  FROM t.req('GET', '/nowhere', NULL, NULL, '{"x-request-id":"bad id with spaces\n"}') r;
-- Methods, paths, query strings.
SELECT t.err('PATCH', '/users', :'tok');
SELECT t.err('GET', '/users/a/b', :'tok');
SELECT t.err('GET', '', :'tok');
SELECT t.err('GET', 'users', :'tok');
SELECT t.err('GET', '/users?%zz=1', :'tok');
SELECT t.err('GET', '/users/' || t.claim(:'tok', 'sub') || '?x=1', :'tok');
SELECT t.err('VERYLONGMETHOD', '/users', :'tok');
SELECT status FROM t.req('GET', '//users//', :'tok');
SELECT status FROM t.req('get', '/users', :'tok');
-- Authorization header variants.
SELECT t.err('GET', '/users', NULL, NULL, '{"authorization":"Basic abc"}');
SELECT t.err('GET', '/users', NULL, NULL, '{"authorization":"Bearer "}');
SELECT t.err('GET', '/users', NULL, NULL, '{"authorization":"Bearer x.y.z"}');
SELECT status FROM t.req('GET', '/users', NULL, NULL, jsonb_build_object('Authorization', 'bearer ' || :'tok'));
-- Bodies: content type, malformed JSON, nesting, size, encoding.
SELECT t.err('POST', '/users', :'tok', '{"email":', '{"content-type":"application/json"}');
SELECT t.err('POST', '/users', :'tok', '{"a":1,"a":2}');
SELECT t.err('POST', '/users', :'tok', 'email=x', '{"content-type":"application/x-www-form-urlencoded"}');
SELECT t.err('POST', '/users', :'tok', '{}', '{"content-type":"text/plain"}');
SELECT t.err('POST', '/users', :'tok', repeat('[', 100) || repeat(']', 100));
SELECT t.err('POST', '/users', :'tok', repeat('x', 2 * 1024 * 1024));
SELECT t.err('POST', '/users', :'tok', '"just a string"');
SELECT t.err('POST', '/users', :'tok', '{"email":"a@b.test","first_name":"' || repeat('n', 500) || '","last_name":"L","role":"user"}');
SELECT t.err('POST', '/users', :'tok', '{"email":"a@b.test","first_name":"tab\u0001","last_name":"L","role":"user"}');
SELECT t.err('POST', '/users', :'tok', '{"email":"a@b.test","first_name":"N","last_name":"L","role":"user","external_user_ids":{"k":{"deep":1}}}');
SELECT t.err('POST', '/users', :'tok', '{"email":"a@b.test","first_name":"N","last_name":"L","role":"user","external_user_ids":[]}');
SELECT t.err('POST', '/users', :'tok', '{"email":"a@b.test","first_name":null,"last_name":"L","role":"user"}');
SELECT t.err('POST', '/users', :'tok', '{"email":"a@b.test","first_name":"N","last_name":"L","role":"user","status":1e999}');
SELECT t.err('POST', '/users', :'tok');
SELECT t.err(NULL, '/users', :'tok');
-- Health.
SELECT status, body->>'database' AS database FROM t.req('GET', '/healthz');
SELECT t.err('POST', '/healthz');
-- saas.http leaves no context behind in the caller's transaction.
BEGIN;
SELECT status FROM t.req('GET', '/users', :'tok');
SELECT saas.current_org_id() IS NULL AS no_context_left, current_setting('search_path') AS search_path;
COMMIT;
RESET ROLE;
SELECT count(*) AS nothing_stored FROM saas.users WHERE email = 'a@b.test';
