-- pg_saas install script, part 00: roles and schema defaults.
--
-- saas_api is the role applications and the HTTP relay act as: NOLOGIN, no
-- BYPASSRLS, owns nothing. Login roles are granted saas_api. Roles are
-- cluster-wide, so an existing saas_api (another database) is reused.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'saas_api') THEN
		CREATE ROLE saas_api NOLOGIN NOINHERIT NOBYPASSRLS;
	END IF;
END
$$;

REVOKE ALL ON SCHEMA saas FROM PUBLIC;
GRANT USAGE ON SCHEMA saas TO saas_api;
COMMENT ON SCHEMA saas IS 'pg_saas: multi-tenant SaaS backend (tenancy by row-level security, JWT auth, audit, integrations)';
