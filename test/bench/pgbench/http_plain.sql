-- 30_http, plain side (role bench_bypass): the rows GET /users?limit=50 reads, same columns,
-- one statement, no authentication, no JSON.
SELECT id, org_id, email, first_name, last_name, role, status, external_user_ids, created_at, updated_at, last_login, version FROM saas.users WHERE org_id = :org ORDER BY org_id, id LIMIT 50;
