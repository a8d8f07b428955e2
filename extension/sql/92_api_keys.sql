-- Part 92: API keys for machine clients (docs/api.md "API keys",
-- docs/security.md "API keys").
--
-- A key belongs to an organization and acts there as a principal of its own:
-- the context's user id is the key's id, its role is admin, and its scopes
-- (users:read, users:write, audit:read, integrations:read) cap what it may
-- do. It works only while it is not revoked or expired and its creator is
-- still an active admin (or super_admin) of the organization (api_keys.c).
-- The secret is shown once; only its SHA-256 is stored, in a private table
-- saas_api may insert into but never read (like saas._credentials).
--
-- The scopes hold in the database: statement triggers refuse (403) a key's
-- writes it has no scope for, restrictive policies hide rows it may not read
-- (they bound saas_api, the callers' role: the owner's own steps inside the
-- rule triggers are not narrowed, so that no rule check reads fewer rows),
-- and the operations answer 403 for a scope a key lacks.

CREATE TABLE saas.api_keys (
	org_id			uuid		NOT NULL,
	id				uuid		NOT NULL,
	name			text		NOT NULL,
	scopes			text[]		NOT NULL,
	created_by		uuid		NOT NULL,
	created_at		timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	expires_at		timestamptz,
	last_used_at	timestamptz,
	revoked_at		timestamptz,
	CONSTRAINT api_keys_pkey PRIMARY KEY (org_id, id),
	CONSTRAINT api_keys_org_fkey FOREIGN KEY (org_id) REFERENCES saas.organizations (id) ON DELETE CASCADE,
	CONSTRAINT api_keys_creator_fkey FOREIGN KEY (org_id, created_by)
		REFERENCES saas.users (org_id, id) ON DELETE CASCADE,
	CONSTRAINT api_keys_name_check CHECK (pg_catalog.length(name) BETWEEN 1 AND 100),
	CONSTRAINT api_keys_scopes_check CHECK (pg_catalog.cardinality(scopes) BETWEEN 1 AND 4
		AND scopes OPERATOR(pg_catalog.<@) ARRAY['users:read', 'users:write', 'audit:read', 'integrations:read']::text[])
);
COMMENT ON TABLE saas.api_keys IS
	'API keys of machine clients: name, scopes, creator, expiry, last use, revocation. The secret''s hash is in saas._api_key_secrets.';
COMMENT ON COLUMN saas.api_keys.scopes IS 'What the key may do: users:read, users:write, audit:read, integrations:read.';
COMMENT ON COLUMN saas.api_keys.last_used_at IS 'Last authentication with the key, written at most once a minute per key.';
COMMENT ON COLUMN saas.api_keys.revoked_at IS 'When the key was revoked; a revoked key authenticates nothing from then on.';

CREATE TABLE saas._api_key_secrets (
	org_id		uuid	NOT NULL,
	key_id		uuid	NOT NULL,
	secret_hash	bytea	NOT NULL,
	CONSTRAINT api_key_secrets_pkey PRIMARY KEY (org_id, key_id),
	CONSTRAINT api_key_secrets_key_fkey FOREIGN KEY (org_id, key_id)
		REFERENCES saas.api_keys (org_id, id) ON DELETE CASCADE,
	CONSTRAINT api_key_secrets_hash_check CHECK (pg_catalog.length(secret_hash) = 32)
);
COMMENT ON TABLE saas._api_key_secrets IS 'SHA-256 of each API key''s secret. saas_api may insert, never read. Private.';

-- The context's key and scopes, for policies and triggers.
CREATE FUNCTION saas._context_api_key() RETURNS uuid
	AS 'MODULE_PATHNAME', 'saas_context_api_key' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION saas._context_api_key() IS 'The id of the API key acting in this context, NULL when no key acts (private).';
CREATE FUNCTION saas._scope_allows(scope text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'saas_scope_allows' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION saas._scope_allows(text) IS
	'True unless an API key acts in this context without the given scope (private; policies call it).';

CREATE FUNCTION saas.authenticate_api_key(key text) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_authenticate_api_key' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.authenticate_api_key(text) IS
	'Verifies an API key (sk_...) and makes it this transaction''s context, like saas.authenticate(token); returns {api_key_id, org_id, scopes}.';
CREATE FUNCTION saas.create_api_key(body jsonb) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_create_api_key' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.create_api_key(jsonb) IS 'POST /api-keys (admin): {name, scopes, expires_at?}; the answer carries the secret, once.';
CREATE FUNCTION saas.list_api_keys(params jsonb DEFAULT '{}') RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_list_api_keys' LANGUAGE C STABLE;
COMMENT ON FUNCTION saas.list_api_keys(jsonb) IS 'GET /api-keys (admin): {limit, cursor}; never the secrets.';
CREATE FUNCTION saas.get_api_key(id uuid) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_get_api_key' LANGUAGE C STABLE;
COMMENT ON FUNCTION saas.get_api_key(uuid) IS 'GET /api-keys/:id (admin).';
CREATE FUNCTION saas.revoke_api_key(id uuid) RETURNS void
	AS 'MODULE_PATHNAME', 'saas_sql_revoke_api_key' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.revoke_api_key(uuid) IS 'DELETE /api-keys/:id (admin): the key stops working at once, in every session.';

-- The rules on keys, for every path.
CREATE FUNCTION saas._api_keys_rules() RETURNS trigger LANGUAGE plpgsql
	SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	actor_role text := saas.current_role();
	key_actor uuid := saas._context_api_key();
BEGIN
	IF actor_role IS NULL THEN
		IF saas._invoker_privileged() THEN
			RETURN NEW;
		END IF;
		PERFORM saas._rule_refuse('401', 'a verified tenant context is required');
	END IF;
	IF TG_OP = 'INSERT' THEN
		IF key_actor IS NOT NULL THEN
			PERFORM saas._rule_refuse('403', 'an API key cannot create API keys');
		END IF;
		IF actor_role NOT IN ('admin', 'super_admin') THEN
			PERFORM saas._rule_refuse('403', 'only an admin may create API keys');
		END IF;
		IF NEW.expires_at IS NOT NULL AND NEW.expires_at <= pg_catalog.now() THEN
			PERFORM saas._rule_refuse('400', 'must be in the future', 'expires_at');
		END IF;
		NEW.created_by := saas.current_user_id();
		NEW.created_at := pg_catalog.now();
		NEW.last_used_at := NULL;
		NEW.revoked_at := NULL;
		RETURN NEW;
	END IF;
	IF (NEW.org_id, NEW.id, NEW.name, NEW.scopes, NEW.created_by, NEW.created_at, NEW.expires_at)
	   IS DISTINCT FROM (OLD.org_id, OLD.id, OLD.name, OLD.scopes, OLD.created_by, OLD.created_at, OLD.expires_at) THEN
		PERFORM saas._rule_refuse('403', 'an API key cannot be changed; create a new one and revoke this one');
	END IF;
	IF key_actor IS NOT NULL THEN
		-- A key records its own use, and nothing else.
		IF key_actor IS DISTINCT FROM OLD.id OR NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
			PERFORM saas._rule_refuse('403', 'an API key cannot manage API keys');
		END IF;
		NEW.last_used_at := pg_catalog.now();
		RETURN NEW;
	END IF;
	IF actor_role NOT IN ('admin', 'super_admin') THEN
		PERFORM saas._rule_refuse('403', 'only an admin may revoke API keys');
	END IF;
	IF NEW.last_used_at IS DISTINCT FROM OLD.last_used_at THEN
		PERFORM saas._rule_refuse('403', 'last_used_at is set by the key''s use only', 'last_used_at');
	END IF;
	IF OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
		PERFORM saas._rule_refuse('409', 'the API key is already revoked');
	END IF;
	IF NEW.revoked_at IS NOT NULL THEN
		NEW.revoked_at := pg_catalog.now();
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION saas._api_keys_rules() IS
	'Who may create or revoke API keys (admins, never a key), what never changes, and that a key only records its own use (private).';
CREATE TRIGGER api_keys_rules BEFORE INSERT OR UPDATE ON saas.api_keys
	FOR EACH ROW EXECUTE FUNCTION saas._api_keys_rules();

-- Creation and revocation go to the organization's audit chain (not the
-- use itself: last_used_at).
CREATE FUNCTION saas._api_keys_audit() RETURNS trigger LANGUAGE plpgsql
	SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		PERFORM saas._audit_event(NEW.org_id, 'api_key', NEW.id, 'create',
			pg_catalog.jsonb_build_object('name', NEW.name, 'scopes', pg_catalog.to_jsonb(NEW.scopes),
										  'expires_at', NEW.expires_at));
	ELSIF NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL THEN
		PERFORM saas._audit_event(NEW.org_id, 'api_key', NEW.id, 'revoke',
			pg_catalog.jsonb_build_object('name', NEW.name));
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION saas._api_keys_audit() IS 'Records the creation and revocation of API keys in the audit chain (private).';
CREATE TRIGGER api_keys_audit AFTER INSERT OR UPDATE ON saas.api_keys
	FOR EACH ROW EXECUTE FUNCTION saas._api_keys_audit();

-- A change to keys drops this backend's cached key states at once (other
-- backends re-read them in every transaction, api_keys.c).
CREATE FUNCTION saas._api_key_state_changed() RETURNS trigger
	AS 'MODULE_PATHNAME', 'saas_api_key_state_changed' LANGUAGE C;
COMMENT ON FUNCTION saas._api_key_state_changed() IS 'Statement trigger: forgets this backend''s cached API key states (private).';
CREATE TRIGGER api_keys_state AFTER UPDATE OR DELETE ON saas.api_keys
	FOR EACH STATEMENT EXECUTE FUNCTION saas._api_key_state_changed();

-- A key's writes are refused before any row is touched, with the scope in
-- the message: 403 even where row-level security would leave nothing to do.
CREATE FUNCTION saas._api_key_write_guard() RETURNS trigger LANGUAGE plpgsql
	SET search_path = pg_catalog, saas, pg_temp
AS $$
BEGIN
	IF saas._context_api_key() IS NULL THEN
		RETURN NULL;
	END IF;
	IF TG_ARGV[0] IS NULL OR NOT saas._scope_allows(TG_ARGV[0]) THEN
		RAISE EXCEPTION '%', CASE WHEN TG_ARGV[0] IS NULL
				THEN pg_catalog.format('an API key cannot change %s', TG_TABLE_NAME)
				ELSE pg_catalog.format('this API key lacks the scope %s', TG_ARGV[0]) END
			USING ERRCODE = 'SA403';
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION saas._api_key_write_guard() IS
	'Statement trigger: refuses (403) an API key''s write without the scope named by the trigger argument (none: never) (private).';
CREATE TRIGGER users_api_key_guard BEFORE INSERT OR UPDATE OR DELETE ON saas.users
	FOR EACH STATEMENT EXECUTE FUNCTION saas._api_key_write_guard('users:write');
CREATE TRIGGER organizations_api_key_guard BEFORE INSERT OR UPDATE OR DELETE ON saas.organizations
	FOR EACH STATEMENT EXECUTE FUNCTION saas._api_key_write_guard();
-- Jobs: a key's user changes enqueue them (INSERT); retrying is an admin's.
CREATE TRIGGER jobs_api_key_guard BEFORE UPDATE OR DELETE ON saas.jobs
	FOR EACH STATEMENT EXECUTE FUNCTION saas._api_key_write_guard();
-- Passwords: never set by a key (a user a key deletes takes its hash along).
CREATE TRIGGER credentials_api_key_guard BEFORE INSERT OR UPDATE ON saas._credentials
	FOR EACH STATEMENT EXECUTE FUNCTION saas._api_key_write_guard();

-- A key changes no role: it creates users, and changes them, as "user" only.
CREATE FUNCTION saas._users_api_key_rules() RETURNS trigger LANGUAGE plpgsql
	SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
BEGIN
	IF saas._context_api_key() IS NULL THEN
		RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
	END IF;
	IF TG_OP = 'INSERT' AND NEW.role <> 'user' THEN
		PERFORM saas._rule_refuse('403', 'an API key cannot create an admin', 'role');
	END IF;
	IF TG_OP = 'UPDATE' AND NEW.role IS DISTINCT FROM OLD.role THEN
		PERFORM saas._rule_refuse('403', 'an API key cannot change roles', 'role');
	END IF;
	IF TG_OP <> 'INSERT' AND OLD.role <> 'user' THEN
		PERFORM saas._rule_refuse('403', 'an API key cannot change or remove an admin');
	END IF;
	RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
COMMENT ON FUNCTION saas._users_api_key_rules() IS
	'An API key creates, changes and removes plain users only, and changes no role (private).';
CREATE TRIGGER users_api_key_rules BEFORE INSERT OR UPDATE OR DELETE ON saas.users
	FOR EACH ROW EXECUTE FUNCTION saas._users_api_key_rules();

-- Row-level security.
ALTER TABLE saas.api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas.api_keys FORCE ROW LEVEL SECURITY;
ALTER TABLE saas._api_key_secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas._api_key_secrets FORCE ROW LEVEL SECURITY;

-- Admins see and manage their organization's keys; a key sees only itself
-- (to record its use).
CREATE POLICY api_keys_select ON saas.api_keys FOR SELECT
	USING (org_id OPERATOR(pg_catalog.=) saas.current_org_id()
		   AND ((saas._context_api_key() IS NULL
				 AND saas.current_role() OPERATOR(pg_catalog.=) ANY (ARRAY['admin', 'super_admin']))
				OR id OPERATOR(pg_catalog.=) saas._context_api_key()));
CREATE POLICY api_keys_insert ON saas.api_keys FOR INSERT
	WITH CHECK (org_id OPERATOR(pg_catalog.=) saas.current_org_id() AND saas._context_api_key() IS NULL
				AND saas.current_role() OPERATOR(pg_catalog.=) ANY (ARRAY['admin', 'super_admin']));
CREATE POLICY api_keys_update ON saas.api_keys FOR UPDATE
	USING (org_id OPERATOR(pg_catalog.=) saas.current_org_id()
		   AND ((saas._context_api_key() IS NULL
				 AND saas.current_role() OPERATOR(pg_catalog.=) ANY (ARRAY['admin', 'super_admin']))
				OR id OPERATOR(pg_catalog.=) saas._context_api_key()))
	WITH CHECK (org_id OPERATOR(pg_catalog.=) saas.current_org_id());
CREATE POLICY api_key_secrets_insert ON saas._api_key_secrets FOR INSERT
	WITH CHECK (org_id OPERATOR(pg_catalog.=) saas.current_org_id() AND saas._context_api_key() IS NULL
				AND saas.current_role() OPERATOR(pg_catalog.=) ANY (ARRAY['admin', 'super_admin']));
CREATE POLICY api_key_secrets_owner ON saas._api_key_secrets FOR SELECT USING (true);

-- What a key may read, for the callers' role (see the top).
CREATE POLICY users_api_key_read ON saas.users AS RESTRICTIVE FOR SELECT TO saas_api
	USING (saas._scope_allows('users:read') OR saas._scope_allows('users:write'));
CREATE POLICY users_api_key_write ON saas.users AS RESTRICTIVE FOR UPDATE TO saas_api
	USING (saas._scope_allows('users:write')) WITH CHECK (saas._scope_allows('users:write'));
CREATE POLICY users_api_key_insert ON saas.users AS RESTRICTIVE FOR INSERT TO saas_api
	WITH CHECK (saas._scope_allows('users:write'));
CREATE POLICY users_api_key_delete ON saas.users AS RESTRICTIVE FOR DELETE TO saas_api
	USING (saas._scope_allows('users:write'));
CREATE POLICY audit_log_api_key_read ON saas.audit_log AS RESTRICTIVE FOR SELECT TO saas_api
	USING (saas._scope_allows('audit:read'));
DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['webhook_events', 'subscriptions', 'notifications', 'entity_versions', 'jobs', 'sync_state'] LOOP
		EXECUTE pg_catalog.format(
			'CREATE POLICY %I ON saas.%I AS RESTRICTIVE FOR SELECT TO saas_api USING (saas._scope_allows(''integrations:read''))',
			t || '_api_key_read', t);
	END LOOP;
END
$$;

-- Privileges: admins list, create and revoke through row-level security; a
-- hash can be inserted, never read (table-level: Citus refuses column
-- privileges).
GRANT SELECT, INSERT, UPDATE ON saas.api_keys TO saas_api;
GRANT INSERT ON saas._api_key_secrets TO saas_api;
REVOKE ALL ON FUNCTION saas._context_api_key(), saas._scope_allows(text), saas._api_keys_rules(),
	saas._api_keys_audit(), saas._api_key_state_changed(), saas._api_key_write_guard(),
	saas._users_api_key_rules() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION saas._context_api_key(), saas._scope_allows(text), saas._api_key_write_guard() TO saas_api;
REVOKE ALL ON FUNCTION saas.authenticate_api_key(text), saas.create_api_key(jsonb), saas.list_api_keys(jsonb),
	saas.get_api_key(uuid), saas.revoke_api_key(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION saas.authenticate_api_key(text), saas.create_api_key(jsonb), saas.list_api_keys(jsonb),
	saas.get_api_key(uuid), saas.revoke_api_key(uuid) TO saas_api;

-- The per-key rate limit: a scope of its own (checked per key id, by the
-- organization's tier; the scope is listed in part 35's check). ON CONFLICT: on a
-- distributed installation each node's update writes the same rows into the reference table.
INSERT INTO saas.rate_limits (tier, scope, requests_per_minute, burst) VALUES
	('free', 'api_key', 600, 60),
	('starter', 'api_key', 1200, 120),
	('professional', 'api_key', 3000, 300),
	('enterprise', 'api_key', 12000, 1000)
ON CONFLICT (tier, scope) DO NOTHING;

SELECT pg_catalog.pg_extension_config_dump('saas.api_keys', '');
SELECT pg_catalog.pg_extension_config_dump('saas._api_key_secrets', '');

-- A key's state read where it lives (src/auth/api_keys.c): on Citus over the caller's own
-- connection, on the node of the organization's shards, for the same reason as
-- saas._context_facts. NULL unless the caller proves its right: a context token of that key, or
-- the SHA-256 of its secret (nothing comes back unless it is the stored one).
CREATE FUNCTION saas._api_key_facts(token text, org_id uuid, key_id uuid, presented_hash bytea,
		OUT scopes text[], OUT valid boolean, OUT secret_hash bytea, OUT recent boolean) RETURNS record
	AS 'MODULE_PATHNAME', 'saas_api_key_facts' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas._api_key_facts(text, uuid, uuid, bytea) IS
	'An API key''s state on this node, for the caller''s proven key (key checks over the caller''s connection on Citus). Private.';
REVOKE ALL ON FUNCTION saas._api_key_facts(text, uuid, uuid, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION saas._api_key_facts(text, uuid, uuid, bytea) TO saas_api;
