-- 20_rls, RLS side (role app): the users_select policy picks the tenant's rows.
BEGIN;
SELECT saas.authenticate(:tok) IS NOT NULL;
SELECT id, org_id, email, first_name, last_name, role, status, external_user_ids, created_at, updated_at, last_login, version FROM saas.users ORDER BY org_id, id LIMIT 50;
COMMIT;
