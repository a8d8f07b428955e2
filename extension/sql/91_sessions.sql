-- Part 91: sessions with refresh tokens (docs/api.md "Sessions", docs/security.md).
--
-- A login (or registration, or anything that answers like login) starts a
-- session: a family of refresh tokens. Each refresh token is opaque
-- ("rt_" + base64url of org id, token id and a 256-bit secret), stored as the
-- SHA-256 of its secret, and used once: POST /auth/refresh (saas.refresh)
-- marks it used and issues the next one of the family with a new access token.
-- Presenting a used one again is reuse (a copy was stolen, or the client is
-- broken): the whole family is revoked, with the access tokens it issued.
-- A refresh token carries the user's session generation (saas._sessions) at
-- issue, so whatever ends the user's access tokens (logout-all, a password
-- change, demotion, deactivation) ends its refresh tokens too.
--
-- Private table, the extension owner's only (like saas._sessions): saas_api
-- reaches it only through the API's C operations. Runs after part 90, so it
-- grants and revokes for itself.

CREATE TABLE saas._refresh_tokens (
	org_id				uuid		NOT NULL,
	id					uuid		NOT NULL,
	user_id				uuid		NOT NULL,
	family_id			uuid		NOT NULL,
	parent_id			uuid,
	token_hash			bytea		NOT NULL,
	generation			bigint		NOT NULL,
	access_jti			text		NOT NULL,
	access_expires_at	timestamptz	NOT NULL,
	created_at			timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	used_at				timestamptz,
	expires_at			timestamptz	NOT NULL,
	revoked_at			timestamptz,
	revoked_reason		text,
	CONSTRAINT refresh_tokens_pkey PRIMARY KEY (org_id, id),
	CONSTRAINT refresh_tokens_user_fkey FOREIGN KEY (org_id, user_id)
		REFERENCES saas.users (org_id, id) ON DELETE CASCADE,
	CONSTRAINT refresh_tokens_hash_check CHECK (pg_catalog.octet_length(token_hash) = 32),
	CONSTRAINT refresh_tokens_reason_check CHECK (revoked_reason IN ('logout', 'logout_all', 'reuse'))
);
CREATE INDEX refresh_tokens_user_idx ON saas._refresh_tokens (org_id, user_id, family_id);
COMMENT ON TABLE saas._refresh_tokens IS
	'Refresh tokens by family (one per login): SHA-256 of the secret, single use, rotated on use; reuse revokes the family. Private.';
ALTER TABLE saas._refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas._refresh_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY refresh_tokens_owner ON saas._refresh_tokens USING (true);
REVOKE ALL ON saas._refresh_tokens FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('saas._refresh_tokens', '');

-- The refresh route's own rate limit scope (per client address and per token). ON CONFLICT:
-- on a distributed installation each node's update writes the same rows into the reference
-- table (docs/operations.md, "Upgrade of a Citus cluster").
INSERT INTO saas.rate_limits (tier, scope, requests_per_minute, burst) VALUES
	('*', 'auth_refresh', 30, 10)
ON CONFLICT (tier, scope) DO NOTHING;

CREATE FUNCTION saas.refresh(refresh_token text) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_refresh' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.refresh(text) IS
	'POST /auth/refresh: a refresh token for a new access token and the next refresh token. Reuse of a used one revokes its family and answers {"error":...} (not raised, so that the revocation commits).';
CREATE FUNCTION saas.me() RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_me' LANGUAGE C STABLE;
COMMENT ON FUNCTION saas.me() IS 'GET /auth/me: the context''s user, organization (id, name, slug, tier) and role.';
REVOKE ALL ON FUNCTION saas.refresh(text), saas.me() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION saas.refresh(text), saas.me() TO saas_api;

-- The facts a user's token depends on (active user and organization, role, session generation,
-- revoked token ids), read where they live: on Citus the coordinator evaluates this on the node of
-- the organization's shards over the caller's own connection (src/auth/session.c), since reading
-- them there as the owner is refused once the caller has written those placements. The token is
-- checked first: a holder gets its own user's facts only, and NULL for anything else.
CREATE FUNCTION saas._context_facts(token text, OUT user_active boolean, OUT org_active boolean,
		OUT role text, OUT generation bigint, OUT revoked text[]) RETURNS record
	AS 'MODULE_PATHNAME', 'saas_context_facts' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION saas._context_facts(text) IS
	'The facts of a token''s own user on this node (session checks over the caller''s connection on Citus). Private.';
REVOKE ALL ON FUNCTION saas._context_facts(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION saas._context_facts(text) TO saas_api;

-- Logout and logout-all where the session rows live: on Citus the coordinator evaluates this on
-- the node of the organization's shards over the caller's own connection (src/api/auth_ops.c),
-- since writing them there as the owner is refused once the caller has written those placements.
-- It ends the token of the context in force there, of that organization only: no more than
-- saas.logout() and saas.logout_all() let the caller do.
CREATE FUNCTION saas._logout_here(org_id uuid, everything boolean) RETURNS boolean
	AS 'MODULE_PATHNAME', 'saas_logout_here' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas._logout_here(uuid, boolean) IS
	'The logout (everything: logout-all) of the context in force, on this node (on Citus, over the caller''s connection). Private.';
REVOKE ALL ON FUNCTION saas._logout_here(uuid, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION saas._logout_here(uuid, boolean) TO saas_api;
