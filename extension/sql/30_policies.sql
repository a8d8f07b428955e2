-- Part 30: row-level security. ENABLE and FORCE on every table, so even the
-- owner (when it is not a superuser) sees only the verified context's rows.
-- Without a verified context every policy is false: zero rows, never an error.
-- Policies compare org_id to a STABLE function, so they use the (org_id, ...)
-- indexes: the planner evaluates saas.current_org_id() once per scan.

ALTER TABLE saas.organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas.organizations FORCE ROW LEVEL SECURITY;
ALTER TABLE saas.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas.users FORCE ROW LEVEL SECURITY;
ALTER TABLE saas._credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas._credentials FORCE ROW LEVEL SECURITY;
ALTER TABLE saas._signing_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas._signing_keys FORCE ROW LEVEL SECURITY;

-- Organizations: members see their own; super_admin sees and manages all;
-- an admin updates its own; the extension's trusted context creates the
-- organization it registers.
CREATE POLICY organizations_select ON saas.organizations FOR SELECT
	USING (id OPERATOR(pg_catalog.=) saas.current_org_id()
		   OR saas.current_role() OPERATOR(pg_catalog.=) 'super_admin');
CREATE POLICY organizations_insert ON saas.organizations FOR INSERT
	WITH CHECK (saas.current_role() OPERATOR(pg_catalog.=) 'super_admin'
				OR (saas._context_trusted() AND id OPERATOR(pg_catalog.=) saas.current_org_id()));
CREATE POLICY organizations_update ON saas.organizations FOR UPDATE
	USING ((id OPERATOR(pg_catalog.=) saas.current_org_id()
			AND saas.current_role() OPERATOR(pg_catalog.=) 'admin')
		   OR saas.current_role() OPERATOR(pg_catalog.=) 'super_admin');
CREATE POLICY organizations_delete ON saas.organizations FOR DELETE
	USING (saas.current_role() OPERATOR(pg_catalog.=) 'super_admin');

-- Users: one organization's rows only. Admins write; a user updates itself
-- (which fields, the users_guard trigger decides).
CREATE POLICY users_select ON saas.users FOR SELECT
	USING (org_id OPERATOR(pg_catalog.=) saas.current_org_id());
CREATE POLICY users_insert ON saas.users FOR INSERT
	WITH CHECK (org_id OPERATOR(pg_catalog.=) saas.current_org_id()
				AND saas.current_role() OPERATOR(pg_catalog.=) ANY (ARRAY['admin', 'super_admin']));
CREATE POLICY users_update ON saas.users FOR UPDATE
	USING (org_id OPERATOR(pg_catalog.=) saas.current_org_id()
		   AND (saas.current_role() OPERATOR(pg_catalog.=) ANY (ARRAY['admin', 'super_admin'])
				OR id OPERATOR(pg_catalog.=) saas.current_user_id()))
	WITH CHECK (org_id OPERATOR(pg_catalog.=) saas.current_org_id());
CREATE POLICY users_delete ON saas.users FOR DELETE
	USING (org_id OPERATOR(pg_catalog.=) saas.current_org_id()
		   AND saas.current_role() OPERATOR(pg_catalog.=) ANY (ARRAY['admin', 'super_admin']));

-- Private tables: the same tenant rule, for when the owner is not a superuser.
CREATE POLICY credentials_tenant ON saas._credentials
	USING (org_id OPERATOR(pg_catalog.=) saas.current_org_id());
CREATE POLICY signing_keys_owner ON saas._signing_keys USING (true);
