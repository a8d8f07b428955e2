-- Part 93: invitations and password reset (docs/api.md, "Invitations and
-- password reset"; docs/security.md, "Invitation and reset tokens").
--
-- Tokens are 'inv_' or 'rst_' followed by base64url(org id | row id |
-- 32 random bytes): the organization routes the lookup (on Citus to one
-- shard), the row id finds the row, and only SHA-256 of the random part is
-- stored. The plaintext travels once, in the body of the communication
-- service job that delivers it; saas._jobs_scrub_secrets removes it from the
-- job when the job is finished (delivered or dead). Every table here is
-- private: saas_api reaches it only through the API's C operations.

CREATE TABLE saas._invitations (
	org_id		uuid		NOT NULL REFERENCES saas.organizations (id) ON DELETE CASCADE,
	id			uuid		NOT NULL,
	email		text		NOT NULL,
	role		text		NOT NULL,
	first_name	text,
	last_name	text,
	token_hash	bytea		NOT NULL,
	invited_by	uuid		NOT NULL,
	status		text		NOT NULL DEFAULT 'pending',
	expires_at	timestamptz	NOT NULL,
	created_at	timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	updated_at	timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	user_id		uuid,
	CONSTRAINT invitations_pkey PRIMARY KEY (org_id, id),
	CONSTRAINT invitations_email_check CHECK (email OPERATOR(pg_catalog.=) pg_catalog.lower(email)
											  AND pg_catalog.length(email) BETWEEN 3 AND 254),
	CONSTRAINT invitations_role_check CHECK (role IN ('admin', 'user')),
	CONSTRAINT invitations_status_check CHECK (status IN ('pending', 'accepted', 'revoked', 'expired')),
	CONSTRAINT invitations_hash_check CHECK (pg_catalog.length(token_hash) OPERATOR(pg_catalog.=) 32),
	CONSTRAINT invitations_names_check CHECK (pg_catalog.length(first_name) <= 100 AND pg_catalog.length(last_name) <= 100)
);
-- One open invitation per email and organization.
CREATE UNIQUE INDEX invitations_pending_key ON saas._invitations (org_id, email) WHERE status = 'pending';
COMMENT ON TABLE saas._invitations IS
	'Invitations to join an organization (private): the email, the role, who invited, SHA-256 of the token''s secret, status and expiry (7 days).';
COMMENT ON COLUMN saas._invitations.token_hash IS 'SHA-256 of the token''s 32 random bytes; the token itself is never stored.';
COMMENT ON COLUMN saas._invitations.status IS 'pending, accepted (user_id is the new user), revoked, expired (found expired when the email was invited again).';

CREATE TABLE saas._password_resets (
	org_id		uuid		NOT NULL REFERENCES saas.organizations (id) ON DELETE CASCADE,
	id			uuid		NOT NULL,
	user_id		uuid		NOT NULL,
	token_hash	bytea		NOT NULL,
	expires_at	timestamptz	NOT NULL,
	used_at		timestamptz,
	created_at	timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT password_resets_pkey PRIMARY KEY (org_id, id),
	CONSTRAINT password_resets_user_fkey FOREIGN KEY (org_id, user_id)
		REFERENCES saas.users (org_id, id) ON DELETE CASCADE,
	CONSTRAINT password_resets_hash_check CHECK (pg_catalog.length(token_hash) OPERATOR(pg_catalog.=) 32)
);
CREATE INDEX password_resets_user_idx ON saas._password_resets (org_id, user_id);
COMMENT ON TABLE saas._password_resets IS
	'Password reset tokens (private): SHA-256 of the secret, the user, a 30-minute expiry, single use (used_at).';

-- Row-level security: the verified context's organization; the owner, which
-- the API's token steps act as before any context exists, sees all.
ALTER TABLE saas._invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas._invitations FORCE ROW LEVEL SECURITY;
ALTER TABLE saas._password_resets ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas._password_resets FORCE ROW LEVEL SECURITY;
CREATE POLICY invitations_tenant ON saas._invitations
	USING (org_id OPERATOR(pg_catalog.=) saas.current_org_id()
		   AND saas.current_role() OPERATOR(pg_catalog.=) ANY (ARRAY['admin', 'super_admin']));
CREATE POLICY password_resets_tenant ON saas._password_resets
	USING (org_id OPERATOR(pg_catalog.=) saas.current_org_id());
DO $$
BEGIN
	EXECUTE pg_catalog.format('CREATE POLICY invitations_owner ON saas._invitations TO %I USING (true)', current_user);
	EXECUTE pg_catalog.format('CREATE POLICY password_resets_owner ON saas._password_resets TO %I USING (true)', current_user);
END
$$;
REVOKE ALL ON saas._invitations, saas._password_resets FROM PUBLIC;

-- Every change of an invitation is audited (token_hash is never recorded:
-- the audit trigger leaves out *_hash columns).
CREATE TRIGGER invitations_audit AFTER INSERT OR UPDATE OR DELETE ON saas._invitations
	FOR EACH ROW EXECUTE FUNCTION saas._audit('invitation', 'org_id');
COMMENT ON TRIGGER invitations_audit ON saas._invitations IS 'Records every change of an invitation in its organization''s audit chain.';

-- The delivery jobs carry the token once: when such a job is finished
-- (delivered, or dead), the message text is replaced.
CREATE FUNCTION saas._jobs_scrub_secrets() RETURNS trigger LANGUAGE plpgsql
	SET search_path = pg_catalog, saas, pg_temp
AS $$
BEGIN
	IF NEW.payload -> 'body' ? 'body' THEN
		NEW.payload := pg_catalog.jsonb_set(NEW.payload, '{body,body}',
			pg_catalog.to_jsonb(CASE WHEN NEW.state = 'succeeded'
									 THEN '[removed after delivery]'
									 ELSE '[removed: not delivered; ask for a new one]' END));
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION saas._jobs_scrub_secrets() IS
	'Removes the token from an invitation or password reset message once its job is finished (private).';
CREATE TRIGGER jobs_scrub_secrets BEFORE UPDATE ON saas.jobs
	FOR EACH ROW WHEN (NEW.state IN ('succeeded', 'dead') AND NEW.kind IN ('message.invitation', 'message.password_reset'))
	EXECUTE FUNCTION saas._jobs_scrub_secrets();

-- Until then the job holds the token, and saas_api may read saas.jobs (admins, their
-- organization's rows, policy jobs_admin_read): an admin reading a pending password reset
-- of another user of its organization could set that user's password as the user (a
-- platform admin, a super_admin's). So these jobs are nobody's to read while they carry a
-- token, but the extension owner's (the worker, the API's C operations): a restrictive
-- policy, AND-ed with every other one. Once finished (succeeded or dead) the text is gone.
DO $$
BEGIN
	EXECUTE pg_catalog.format(
		'CREATE POLICY jobs_hide_tokens ON saas.jobs AS RESTRICTIVE FOR SELECT USING ('
		'kind OPERATOR(pg_catalog.<>) ALL (ARRAY[%L, %L]) OR state OPERATOR(pg_catalog.=) ANY (ARRAY[%L, %L])'
		' OR current_user OPERATOR(pg_catalog.=) %L)',
		'message.invitation', 'message.password_reset', 'succeeded', 'dead', current_user);
END
$$;
COMMENT ON POLICY jobs_hide_tokens ON saas.jobs IS
	'Invitation and password reset messages are read by the extension owner only until they are finished (their token is then removed).';

-- Rate limits of their own: asking for a reset per email and per client
-- address, using a token (accept, confirm) per client address and per token,
-- sending invitations per organization (scopes listed in 35_rate_limits.sql's check).
INSERT INTO saas.rate_limits (tier, scope, requests_per_minute, burst) VALUES
	('*', 'reset_email', 2, 3),
	('*', 'reset_ip', 20, 10),
	('*', 'token_ip', 30, 10),
	('*', 'token_id', 10, 5),
	('*', 'invite_org', 60, 30)
ON CONFLICT (tier, scope) DO NOTHING;

-- The SQL API (after saas.authenticate for the admin's operations).
CREATE FUNCTION saas.create_invitation(body jsonb) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_create_invitation' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.create_invitation(jsonb) IS
	'POST /invitations (admin): {email, role, first_name?, last_name?}; the token goes to the email through the communication service.';
CREATE FUNCTION saas.list_invitations(params jsonb DEFAULT '{}') RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_list_invitations' LANGUAGE C STABLE;
COMMENT ON FUNCTION saas.list_invitations(jsonb) IS 'GET /invitations (admin): {limit, cursor, status}.';
CREATE FUNCTION saas.revoke_invitation(id uuid) RETURNS void
	AS 'MODULE_PATHNAME', 'saas_sql_revoke_invitation' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.revoke_invitation(uuid) IS 'DELETE /invitations/:id (admin): a pending invitation can no longer be accepted.';
CREATE FUNCTION saas.accept_invitation(body jsonb) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_accept_invitation' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.accept_invitation(jsonb) IS
	'POST /auth/accept-invite: {token, password, first_name?, last_name?}; creates the user and answers like login.';
CREATE FUNCTION saas.request_password_reset(body jsonb) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_request_password_reset' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.request_password_reset(jsonb) IS
	'POST /auth/password-reset: {email}; the same answer whether or not the email exists.';
CREATE FUNCTION saas.confirm_password_reset(body jsonb) RETURNS void
	AS 'MODULE_PATHNAME', 'saas_sql_confirm_password_reset' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.confirm_password_reset(jsonb) IS
	'POST /auth/password-reset/confirm: {token, password}; sets the password, ends the user''s sessions, uses up the token.';

REVOKE ALL ON FUNCTION saas.create_invitation(jsonb), saas.list_invitations(jsonb), saas.revoke_invitation(uuid),
	saas.accept_invitation(jsonb), saas.request_password_reset(jsonb), saas.confirm_password_reset(jsonb),
	saas._jobs_scrub_secrets() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION saas.create_invitation(jsonb), saas.list_invitations(jsonb), saas.revoke_invitation(uuid),
	saas.accept_invitation(jsonb), saas.request_password_reset(jsonb), saas.confirm_password_reset(jsonb) TO saas_api;

SELECT pg_catalog.pg_extension_config_dump('saas._invitations', '');
SELECT pg_catalog.pg_extension_config_dump('saas._password_resets', '');
