-- Part 94: single sign-on with OpenID Connect (docs/security.md, "Single sign-on").
--
--   sso_connections  one per organization: the provider (issuer), the client id, the
--                    redirect URI, allowed email domains, the role of users created at
--                    their first sign-in, whether password login stays allowed. Tenant
--                    table: its admins read and write it through RLS.
--   _sso_secrets     the client secret, beside it: private (the extension's owner only;
--                    written and used by the extension's C, never readable back).
--   _sso_requests    the sign-ins under way: SHA-256 of the state, bound to the
--                    organization (the state carries its id), single use, 10 minutes.
--                    The nonce and the PKCE verifier are derived from the state (HMAC),
--                    so the table holds nothing a reader could use.
--   _sso_identities  which user a provider's subject is, per organization (private).
--
-- Every table is keyed org_id first; all four are distributed by org_id on Citus.

CREATE TABLE saas.sso_connections (
	org_id			uuid		NOT NULL,
	id				uuid		NOT NULL,
	issuer			text		NOT NULL,
	client_id		text		NOT NULL,
	redirect_uri	text		NOT NULL,
	allowed_domains	text[]		NOT NULL,
	default_role	text		NOT NULL DEFAULT 'user',
	password_login_allowed boolean NOT NULL DEFAULT true,
	enabled			boolean		NOT NULL DEFAULT true,
	created_at		timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	updated_at		timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT sso_connections_pkey PRIMARY KEY (org_id, id),
	CONSTRAINT sso_connections_org_key UNIQUE (org_id),
	CONSTRAINT sso_connections_org_fkey FOREIGN KEY (org_id)
		REFERENCES saas.organizations (id) ON DELETE CASCADE,
	CONSTRAINT sso_connections_issuer_check CHECK (
		issuer OPERATOR(pg_catalog.~) '^https?://[^[:space:]?#]+$'
		AND pg_catalog.length(issuer) OPERATOR(pg_catalog.<=) 512),
	CONSTRAINT sso_connections_redirect_check CHECK (
		redirect_uri OPERATOR(pg_catalog.~) '^https?://[^[:space:]#]+$'
		AND pg_catalog.length(redirect_uri) OPERATOR(pg_catalog.<=) 1024),
	CONSTRAINT sso_connections_client_check CHECK (
		client_id OPERATOR(pg_catalog.~) '^[!-~]{1,255}$'),
	CONSTRAINT sso_connections_domains_check CHECK (
		pg_catalog.cardinality(allowed_domains) OPERATOR(pg_catalog.>=) 1
		AND pg_catalog.cardinality(allowed_domains) OPERATOR(pg_catalog.<=) 32),
	CONSTRAINT sso_connections_role_check CHECK (default_role IN ('user', 'admin')),
	CONSTRAINT sso_connections_platform_check CHECK (org_id OPERATOR(pg_catalog.<>) saas.platform_org_id())
);
COMMENT ON TABLE saas.sso_connections IS
	'The organization''s OpenID Connect provider (one per organization), managed by its admins. The client secret is kept apart, in a private table.';

CREATE TABLE saas._sso_secrets (
	org_id			uuid		NOT NULL,
	connection_id	uuid		NOT NULL,
	client_secret	text		NOT NULL,
	CONSTRAINT sso_secrets_pkey PRIMARY KEY (org_id, connection_id),
	CONSTRAINT sso_secrets_connection_fkey FOREIGN KEY (org_id, connection_id)
		REFERENCES saas.sso_connections (org_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE saas._sso_secrets IS 'The client secret of each SSO connection (private: used by the extension to call the provider, never readable back).';

CREATE TABLE saas._sso_requests (
	org_id			uuid		NOT NULL,
	state_hash		bytea		NOT NULL,
	connection_id	uuid		NOT NULL,
	expires_at		timestamptz	NOT NULL,
	CONSTRAINT sso_requests_pkey PRIMARY KEY (org_id, state_hash),
	CONSTRAINT sso_requests_connection_fkey FOREIGN KEY (org_id, connection_id)
		REFERENCES saas.sso_connections (org_id, id) ON DELETE CASCADE,
	CONSTRAINT sso_requests_hash_check CHECK (pg_catalog.length(state_hash) OPERATOR(pg_catalog.=) 32)
);
COMMENT ON TABLE saas._sso_requests IS 'Sign-ins under way: the SHA-256 of each state, single use, until it expires (private).';

CREATE TABLE saas._sso_identities (
	org_id			uuid		NOT NULL,
	issuer			text		NOT NULL,
	subject			text		NOT NULL,
	user_id			uuid		NOT NULL,
	created_at		timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT sso_identities_pkey PRIMARY KEY (org_id, issuer, subject),
	CONSTRAINT sso_identities_user_fkey FOREIGN KEY (org_id, user_id)
		REFERENCES saas.users (org_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE saas._sso_identities IS 'The user each provider subject signs in as, per organization (private).';

-- Row-level security: admins of the organization manage its connection; the private
-- tables are the owner's (no grant to saas_api at all).
ALTER TABLE saas.sso_connections ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas.sso_connections FORCE ROW LEVEL SECURITY;
ALTER TABLE saas._sso_secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas._sso_secrets FORCE ROW LEVEL SECURITY;
ALTER TABLE saas._sso_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas._sso_requests FORCE ROW LEVEL SECURITY;
ALTER TABLE saas._sso_identities ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas._sso_identities FORCE ROW LEVEL SECURITY;

CREATE POLICY sso_connections_admin ON saas.sso_connections
	USING (org_id OPERATOR(pg_catalog.=) saas.current_org_id()
		   AND saas.current_role() OPERATOR(pg_catalog.=) ANY (ARRAY['admin', 'super_admin']))
	WITH CHECK (org_id OPERATOR(pg_catalog.=) saas.current_org_id()
				AND saas.current_role() OPERATOR(pg_catalog.=) ANY (ARRAY['admin', 'super_admin']));
CREATE POLICY sso_secrets_owner ON saas._sso_secrets USING (true);
CREATE POLICY sso_requests_owner ON saas._sso_requests USING (true);
CREATE POLICY sso_identities_owner ON saas._sso_identities USING (true);

REVOKE ALL ON saas.sso_connections, saas._sso_secrets, saas._sso_requests, saas._sso_identities FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON saas.sso_connections TO saas_api;

CREATE TRIGGER sso_connections_audit AFTER INSERT OR UPDATE OR DELETE ON saas.sso_connections
	FOR EACH ROW EXECUTE FUNCTION saas._audit('sso_connection', 'org_id');
COMMENT ON TRIGGER sso_connections_audit ON saas.sso_connections IS 'Records every change of an SSO connection in its organization''s audit chain (the secret is not in this table).';

-- The SQL API (the same operations as the routes; docs/api.md, "Single sign-on").
CREATE FUNCTION saas.get_sso_connection() RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_get_sso_connection' LANGUAGE C STABLE;
COMMENT ON FUNCTION saas.get_sso_connection() IS 'The caller''s organization''s SSO connection (admin), without its secret.';
CREATE FUNCTION saas.put_sso_connection(body jsonb) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_put_sso_connection' LANGUAGE C;
COMMENT ON FUNCTION saas.put_sso_connection(jsonb) IS 'Creates or replaces the caller''s organization''s SSO connection (admin); client_secret is required on creation, kept when absent afterwards.';
CREATE FUNCTION saas.delete_sso_connection() RETURNS void
	AS 'MODULE_PATHNAME', 'saas_sql_delete_sso_connection' LANGUAGE C;
COMMENT ON FUNCTION saas.delete_sso_connection() IS 'Removes the caller''s organization''s SSO connection and its secret (admin).';
REVOKE ALL ON FUNCTION saas.get_sso_connection(), saas.put_sso_connection(jsonb),
	saas.delete_sso_connection() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION saas.get_sso_connection(), saas.put_sso_connection(jsonb),
	saas.delete_sso_connection() TO saas_api;

-- Private: the RS256 check alone, for tests of the verifier with keys made there (owner only).
CREATE FUNCTION saas._oidc_verify(token text, jwks jsonb, issuer text, client_id text, nonce text)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_oidc_verify_sql' LANGUAGE C STABLE;
COMMENT ON FUNCTION saas._oidc_verify(text, jsonb, text, text, text) IS
	'Verifies an id_token against a JWK set as the SSO callback does (RS256 only; iss, aud, exp, iat, nonce); the claims, or an error saying why. For tests (private).';
REVOKE ALL ON FUNCTION saas._oidc_verify(text, jsonb, text, text, text) FROM PUBLIC;

-- API keys (part 92) never read or change the SSO connection: a key acts as an
-- admin only within its scopes, and no scope covers sign-in settings.
CREATE TRIGGER sso_connections_api_key_guard BEFORE INSERT OR UPDATE OR DELETE ON saas.sso_connections
	FOR EACH STATEMENT EXECUTE FUNCTION saas._api_key_write_guard();
CREATE POLICY sso_connections_api_key_read ON saas.sso_connections AS RESTRICTIVE FOR SELECT TO saas_api
	USING (saas._context_api_key() IS NULL);

-- Backup and restore (docs/operations.md): the connections, their secrets and the provider
-- accounts' links are dumped with the database; sign-ins under way (_sso_requests) are not.
SELECT pg_catalog.pg_extension_config_dump('saas.sso_connections', '');
SELECT pg_catalog.pg_extension_config_dump('saas._sso_secrets', '');
SELECT pg_catalog.pg_extension_config_dump('saas._sso_identities', '');
