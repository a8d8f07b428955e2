-- Part 90: privileges. Least privilege: saas_api reaches tenant tables only
-- through RLS and never sees private (_-prefixed) objects. Functions are not
-- executable by PUBLIC; saas_api gets the public API.

REVOKE ALL ON ALL TABLES IN SCHEMA saas FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA saas FROM PUBLIC;

GRANT SELECT, INSERT, UPDATE, DELETE ON saas.organizations, saas.users TO saas_api;

DO $$
DECLARE
	f regprocedure;
BEGIN
	-- Every public function (name not starting with _) is granted to saas_api,
	-- except the key-management ones, which stay with the owner.
	FOR f IN
		SELECT p.oid::regprocedure
		  FROM pg_catalog.pg_proc p
		 WHERE p.pronamespace = 'saas'::regnamespace
		   AND p.proname !~ '^_'
		   AND p.proname NOT IN ('rotate_signing_key', 'retire_signing_key', 'create_super_admin', 'rate_limit_check')
		   AND p.prokind = 'f'
	LOOP
		EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO saas_api', f);
	END LOOP;
	-- Private functions that policies and triggers call as the invoker.
	GRANT EXECUTE ON FUNCTION saas._context_trusted() TO saas_api;
	-- The CHECK on external ids runs as whoever writes the row.
	GRANT EXECUTE ON FUNCTION saas._external_ids_valid(jsonb) TO saas_api;
END
$$;

-- The first signing key, so tokens can be issued right away.
SELECT saas.rotate_signing_key();

-- Passwords are written as the caller (saas._credentials_rules says who
-- may): a hash can be inserted, never read, and only under the extension's
-- trusted context. No SELECT or UPDATE: a trigger turns an insert for a
-- user who has a password into the update. Table-level: Citus gives the
-- shards a table's privileges, and refuses column privileges.
GRANT INSERT ON saas._credentials TO saas_api;
