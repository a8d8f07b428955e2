-- 20_rls, plain side (role bench_bypass, BYPASSRLS): the same page by an explicit WHERE.
-- The same authenticate call as the RLS side, so that the two differ only by the policy.
BEGIN;
SELECT saas.authenticate(:tok) IS NOT NULL;
SELECT id, org_id, email, first_name, last_name, role, status, external_user_ids, created_at, updated_at, last_login, version FROM saas.users WHERE org_id = :org ORDER BY org_id, id LIMIT 50;
COMMIT;
