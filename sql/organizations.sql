-- Organizations: members read their own, admins rename, the platform's
-- super_admin manages all; another tenant's organization is 404.
SELECT saas.create_super_admin('root@platform.test', 'platform root password') IS NOT NULL AS super_created;
SELECT (saas.login('{"email":"root@platform.test","password":"platform root password"}'))->>'token' AS root \gset
SELECT t.register('orgs-a', 'admin@orgs-a.test') AS admin_a \gset
SELECT t.register('orgs-b', 'admin@orgs-b.test') AS admin_b \gset
SET ROLE regress_app;

SELECT status, jsonb_path_query_array(body, '$.data[*].slug') AS slugs, body->'next_cursor' AS next
  FROM t.req('GET', '/organizations', :'admin_a');
SELECT r.status, r.headers->>'ETag' AS etag, r.body->>'slug' AS slug, r.body->>'subscription_tier' AS tier,
	   r.body->'employee_limit' AS lim, r.body->'features_enabled' AS features
  FROM t.req('GET', '/organizations/' || t.claim(:'admin_a', 'org_id'), :'admin_a') r;
SELECT t.err('GET', '/organizations/' || t.claim(:'admin_b', 'org_id'), :'admin_a');
SELECT t.err('PUT', '/organizations/' || t.claim(:'admin_b', 'org_id'), :'admin_a', '{"name":"pwned"}');
SELECT t.err('DELETE', '/organizations/' || t.claim(:'admin_b', 'org_id'), :'admin_a');

-- Admin renames its organization; commercial fields are the platform's.
SELECT r.status, r.body->>'name' AS name, r.headers->>'ETag' AS etag
  FROM t.req('PUT', '/organizations/' || t.claim(:'admin_a', 'org_id'), :'admin_a', '{"name":"Orgs A Renamed"}') r;
SELECT t.err('PUT', '/organizations/' || t.claim(:'admin_a', 'org_id'), :'admin_a', '{"employee_limit":100000}');
SELECT t.err('PUT', '/organizations/' || t.claim(:'admin_a', 'org_id'), :'admin_a', '{"slug":"orgs-b"}');
SELECT t.err('PUT', '/organizations/' || t.claim(:'admin_a', 'org_id'), :'admin_a', '{"slug":"Bad Slug!"}');
SELECT t.err('PUT', '/organizations/' || t.claim(:'admin_a', 'org_id'), :'admin_a', '{"name":"x"}', '{"if-match":"\"1\""}');
SELECT t.err('POST', '/organizations', :'admin_a', '{"name":"Nope","admin_user":{"email":"n@n.test","password":"correct horse battery","first_name":"N","last_name":"N"}}');

-- super_admin: sees all, creates an organization with its admin in one
-- transaction, changes commercial fields, deletes.
SELECT status, jsonb_array_length(body->'data') >= 3 AS sees_all FROM t.req('GET', '/organizations', :'root');
SELECT r.status, r.body->'organization'->>'slug' AS slug, r.body->'organization'->>'subscription_tier' AS tier,
	   r.body->'organization'->'features_enabled' AS features, r.body->'admin_user'->>'role' AS admin_role,
	   r.body->'admin_user'->>'email' AS admin_email
  FROM t.req('POST', '/organizations', :'root', '{"name":"Made By Root","subscription_tier":"enterprise","employee_limit":500,"features_enabled":["sso","audit_logs"],"admin_user":{"email":"boss@made.test","password":"correct horse battery","first_name":"B","last_name":"B"}}') r;
SELECT (saas.login('{"email":"boss@made.test","password":"correct horse battery"}'))->'user'->>'role' AS new_admin_can_login;
-- one transaction: a bad admin password stores neither organization nor admin
SELECT t.err('POST', '/organizations', :'root', '{"name":"Half","slug":"half","admin_user":{"email":"h@half.test","password":"short","first_name":"H","last_name":"H"}}');
SELECT t.err('POST', '/organizations', :'root', '{"name":"Dup","slug":"orgs-a","admin_user":{"email":"d@dup.test","password":"correct horse battery","first_name":"D","last_name":"D"}}');
SELECT t.err('POST', '/organizations', :'root', '{"name":"Types","employee_limit":"ten","features_enabled":[1],"subscription_tier":"gold","admin_user":{}}');
SELECT r.status, r.body->>'subscription_tier' AS tier, r.body->'external_ids' AS ext
  FROM t.req('PUT', '/organizations/' || t.claim(:'admin_b', 'org_id'), :'root', '{"subscription_tier":"professional","external_ids":{"payment_service":"cust_1"}}') r;
SELECT status FROM t.req('DELETE', '/organizations/' || t.claim(:'admin_b', 'org_id'), :'root');
SELECT t.err('GET', '/organizations/' || t.claim(:'admin_b', 'org_id'), :'root');
SELECT t.err('DELETE', '/organizations/' || t.claim(:'root', 'org_id'), :'root');
-- The deleted organization's tokens stop working: their user is gone.
SELECT t.err('GET', '/users/' || t.claim(:'admin_b', 'sub'), :'admin_b');
RESET ROLE;
SELECT count(*) AS half_not_stored FROM saas.organizations WHERE slug = 'half';
SELECT count(*) AS b_users_gone FROM saas.users WHERE email LIKE '%orgs-b.test';
