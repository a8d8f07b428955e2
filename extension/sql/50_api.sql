-- Part 50: the API. saas.http is the REST entry point; the same operations
-- are plain SQL functions returning the same JSON. All run as the caller, so
-- row-level security applies; a transaction needs saas.authenticate(token)
-- first for everything but register and login.

CREATE FUNCTION saas.http(method text, path text, headers jsonb DEFAULT '{}', body text DEFAULT NULL)
	RETURNS TABLE (status integer, headers jsonb, body text)
	AS 'MODULE_PATHNAME', 'saas_http' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.http(text, text, jsonb, text) IS
	'The REST API: routes a request (method, path with query, headers, body) and returns status, headers and body.';

CREATE FUNCTION saas.register(body jsonb) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_register' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.register(jsonb) IS
	'POST /auth/register: creates an organization with the caller as its admin; returns a token, the user and the organization.';
CREATE FUNCTION saas.login(body jsonb) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_login' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.login(jsonb) IS 'POST /auth/login: {email, password, organization?} for a token.';

CREATE FUNCTION saas.list_organizations(params jsonb DEFAULT '{}') RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_list_organizations' LANGUAGE C STABLE;
COMMENT ON FUNCTION saas.list_organizations(jsonb) IS 'GET /organizations: the own organization, or all for super_admin; {limit, cursor}.';
CREATE FUNCTION saas.create_organization(body jsonb) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_create_organization' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.create_organization(jsonb) IS 'POST /organizations (super_admin): an organization and its first admin, in one transaction.';
CREATE FUNCTION saas.get_organization(id uuid) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_get_organization' LANGUAGE C STABLE;
COMMENT ON FUNCTION saas.get_organization(uuid) IS 'GET /organizations/:id.';
CREATE FUNCTION saas.update_organization(id uuid, changes jsonb, if_version bigint DEFAULT NULL) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_update_organization' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.update_organization(uuid, jsonb, bigint) IS 'PUT /organizations/:id (partial update; if_version as If-Match).';
CREATE FUNCTION saas.delete_organization(id uuid) RETURNS void
	AS 'MODULE_PATHNAME', 'saas_sql_delete_organization' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.delete_organization(uuid) IS 'DELETE /organizations/:id (super_admin).';

CREATE FUNCTION saas.list_users(params jsonb DEFAULT '{}') RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_list_users' LANGUAGE C STABLE;
COMMENT ON FUNCTION saas.list_users(jsonb) IS 'GET /users: {limit, cursor, status, role, q} over the caller''s organization.';
CREATE FUNCTION saas.create_user(body jsonb) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_create_user' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.create_user(jsonb) IS 'POST /users (admin).';
CREATE FUNCTION saas.get_user(id uuid) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_get_user' LANGUAGE C STABLE;
COMMENT ON FUNCTION saas.get_user(uuid) IS 'GET /users/:id.';
CREATE FUNCTION saas.update_user(id uuid, changes jsonb, if_version bigint DEFAULT NULL) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_update_user' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.update_user(uuid, jsonb, bigint) IS 'PUT /users/:id (partial update; if_version as If-Match).';
CREATE FUNCTION saas.delete_user(id uuid) RETURNS void
	AS 'MODULE_PATHNAME', 'saas_sql_delete_user' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.delete_user(uuid) IS 'DELETE /users/:id (admin; not itself, not the last admin).';

CREATE FUNCTION saas.logout() RETURNS void
	AS 'MODULE_PATHNAME', 'saas_sql_logout' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.logout() IS 'POST /auth/logout: ends the token of this transaction''s context.';
CREATE FUNCTION saas.logout_all() RETURNS void
	AS 'MODULE_PATHNAME', 'saas_sql_logout_all' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.logout_all() IS 'POST /auth/logout-all: ends every session of the context''s user.';

-- The platform operator: a super_admin in the "platform" organization.
-- Owner only: run once after installation.
CREATE FUNCTION saas.create_super_admin(email text, password text, first_name text DEFAULT 'Platform', last_name text DEFAULT 'Admin')
	RETURNS uuid LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
	-- The operator's bootstrap: whatever tenant context the session holds does not apply.
	SET saas.context = ''
AS $$
DECLARE
	org uuid;
	uid uuid := saas.uuid_generate_v7();
BEGIN
	-- The platform organization has a fixed id and the reserved slug: never a tenant's.
	org := saas.platform_org_id();
	INSERT INTO saas.organizations (id, name, slug, subscription_tier, employee_limit)
		VALUES (org, 'Platform', 'platform', 'enterprise', 1000) ON CONFLICT (id) DO NOTHING;
	PERFORM saas._dir_set(org, uid, email, '{}');		-- on Citus, before the user (23_directory.sql)
	INSERT INTO saas.users (org_id, id, email, first_name, last_name, role)
		VALUES (org, uid, pg_catalog.lower(email), first_name, last_name, 'super_admin');
	INSERT INTO saas._credentials (org_id, user_id, password_hash)
		VALUES (org, uid, saas.hash_password(password));
	RETURN uid;
END
$$;
COMMENT ON FUNCTION saas.create_super_admin(text, text, text, text) IS
	'Creates a super_admin (platform operator) in the "platform" organization; owner only.';
