-- pg_saas 0.1.0, released: the install script as built from extension/sql/ at commit 8d8e4b6.
-- Frozen: never edited (a database made from it is upgraded by pg_saas--0.1.0--0.2.0.sql).
\echo Use "CREATE EXTENSION pg_saas" to load this file. \quit
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
-- Part 10: the C functions everything else stands on: ids, tenant context, JWT, passwords.

CREATE FUNCTION saas.uuid_generate_v7() RETURNS uuid
	AS 'MODULE_PATHNAME', 'saas_uuid_generate_v7' LANGUAGE C VOLATILE PARALLEL SAFE STRICT;
COMMENT ON FUNCTION saas.uuid_generate_v7() IS 'A new time-ordered UUID (version 7, RFC 9562).';

CREATE FUNCTION saas._random_bytes(integer) RETURNS bytea
	AS 'MODULE_PATHNAME', 'saas_random_bytes_sql' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION saas._random_bytes(integer) IS 'Cryptographically strong random bytes (private).';

-- Tenant context: verified, cached per transaction, read by every policy.
CREATE FUNCTION saas.authenticate(token text) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_authenticate' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.authenticate(text) IS
	'Verifies a JWT and makes it the tenant context of the current transaction; returns its claims.';

CREATE FUNCTION saas.current_org_id() RETURNS uuid
	AS 'MODULE_PATHNAME', 'saas_current_org_id' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION saas.current_org_id() IS 'Organization of the verified tenant context, or NULL.';

CREATE FUNCTION saas.current_user_id() RETURNS uuid
	AS 'MODULE_PATHNAME', 'saas_current_user_id' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION saas.current_user_id() IS 'User of the verified tenant context, or NULL.';

CREATE FUNCTION saas.current_role() RETURNS text
	AS 'MODULE_PATHNAME', 'saas_current_role' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION saas.current_role() IS 'Application role (super_admin, admin, user) of the verified tenant context, or NULL.';

CREATE FUNCTION saas._context_trusted() RETURNS boolean
	AS 'MODULE_PATHNAME', 'saas_context_trusted' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION saas._context_trusted() IS 'True while the extension''s own C code acts (registration, the worker).';

-- pgjwt-style helpers. STABLE, not IMMUTABLE: verification reads the clock.
CREATE FUNCTION saas.jwt_sign(claims jsonb, secret bytea, alg text DEFAULT 'HS256') RETURNS text
	AS 'MODULE_PATHNAME', 'saas_jwt_sign' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION saas.jwt_sign(jsonb, bytea, text) IS 'Signs claims as a compact HS256 JWT with the given secret.';
CREATE FUNCTION saas.jwt_sign(claims jsonb, secret text, alg text DEFAULT 'HS256') RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN saas.jwt_sign(claims, pg_catalog.convert_to(secret, 'UTF8'), alg);
COMMENT ON FUNCTION saas.jwt_sign(jsonb, text, text) IS 'Signs claims as a compact HS256 JWT with the given text secret.';

CREATE FUNCTION saas.jwt_verify(token text, secret bytea, alg text DEFAULT 'HS256') RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_jwt_verify' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION saas.jwt_verify(text, bytea, text) IS
	'Verifies a compact JWT (signature, alg, exp, nbf) and returns its claims, or raises an error that says why.';
CREATE FUNCTION saas.jwt_verify(token text, secret text, alg text DEFAULT 'HS256') RETURNS jsonb
	LANGUAGE sql STABLE STRICT PARALLEL SAFE
	RETURN saas.jwt_verify(token, pg_catalog.convert_to(secret, 'UTF8'), alg);
COMMENT ON FUNCTION saas.jwt_verify(text, text, text) IS 'jwt_verify with a text secret.';

-- Passwords: argon2id, PHC strings.
CREATE FUNCTION saas.hash_password(password text) RETURNS text
	AS 'MODULE_PATHNAME', 'saas_hash_password' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION saas.hash_password(text) IS 'argon2id hash of a password in PHC string format (checks the password policy).';
CREATE FUNCTION saas.verify_password(password text, phc text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'saas_verify_password' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION saas.verify_password(text, text) IS 'True when password matches the argon2id PHC string.';

CREATE FUNCTION saas._signing_keys_changed() RETURNS trigger
	AS 'MODULE_PATHNAME', 'saas_signing_keys_changed' LANGUAGE C;
COMMENT ON FUNCTION saas._signing_keys_changed() IS 'Statement trigger: tells every backend to reload a cached configuration table (signing keys, rate limits) (private).';

-- The platform organization (the operators', home of every super_admin) has a
-- fixed id and the slug "platform", which no tenant can take.
CREATE FUNCTION saas.platform_org_id() RETURNS uuid
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN '00000000-0000-0000-0000-000000000001'::uuid;
COMMENT ON FUNCTION saas.platform_org_id() IS 'Id of the platform organization (the operators'', home of every super_admin).';

-- External ids: the keys of the services, each a plain token. Anything else
-- (slashes, dots first, spaces, query characters) would end up in an
-- outbound URL or spoof a mapping, so it is refused where it is written.
CREATE FUNCTION saas._external_ids_valid(ids jsonb) RETURNS boolean
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN pg_catalog.jsonb_typeof(ids) = 'object'
		AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_each(ids) AS e(k, v)
						 WHERE e.k NOT IN ('user_service', 'payment_service', 'communication_service', 'payment_customer')
							OR pg_catalog.jsonb_typeof(e.v) <> 'string'
							OR NOT (e.v OPERATOR(pg_catalog.#>>) '{}') OPERATOR(pg_catalog.~) '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$');
COMMENT ON FUNCTION saas._external_ids_valid(jsonb) IS
	'True when every key names a service and every value is a plain token (letters, digits, _ . : -; 1 to 128) (private).';

CREATE FUNCTION saas._invoker_privileged() RETURNS boolean
	AS 'MODULE_PATHNAME', 'saas_invoker_privileged_sql' LANGUAGE C STABLE;
COMMENT ON FUNCTION saas._invoker_privileged() IS
	'True when the statement''s invoker (outside any SECURITY DEFINER step) is a superuser or the extension owner: only they change rows without a tenant context (private).';
-- Part 20: tables. Every tenant table carries org_id first in its primary key
-- and in every unique and foreign key, so uniqueness checks (which ignore
-- RLS) cannot leak across tenants, and Citus can distribute by org_id.
-- saas.organizations is the tenant root: its id is the org_id (a reference
-- table under Citus, so that slugs stay globally unique).

CREATE TABLE saas.organizations (
	id					uuid		NOT NULL DEFAULT saas.uuid_generate_v7(),
	name				text		NOT NULL,
	slug				text		NOT NULL,
	subscription_tier	text		NOT NULL DEFAULT 'free',
	employee_limit		integer		NOT NULL DEFAULT 10,
	features_enabled	text[]		NOT NULL DEFAULT '{}',
	external_ids		jsonb		NOT NULL DEFAULT '{}',
	status				text		NOT NULL DEFAULT 'active',
	created_at			timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	updated_at			timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	version				bigint		NOT NULL DEFAULT 1,
	CONSTRAINT organizations_pkey PRIMARY KEY (id),
	CONSTRAINT organizations_slug_key UNIQUE (slug),
	CONSTRAINT organizations_name_check CHECK (pg_catalog.length(name) BETWEEN 1 AND 200),
	CONSTRAINT organizations_slug_check CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
	CONSTRAINT organizations_tier_check CHECK (subscription_tier IN ('free', 'starter', 'professional', 'enterprise')),
	CONSTRAINT organizations_limit_check CHECK (employee_limit BETWEEN 1 AND 1000000),
	CONSTRAINT organizations_status_check CHECK (status IN ('active', 'suspended')),
	CONSTRAINT organizations_external_ids_check CHECK (saas._external_ids_valid(external_ids)),
	-- The platform organization (the operators') has a fixed id and the reserved slug.
	CONSTRAINT organizations_platform_check CHECK ((slug = 'platform') = (id = saas.platform_org_id()))
);
COMMENT ON TABLE saas.organizations IS 'Tenants. id is the org_id every tenant row carries.';
COMMENT ON COLUMN saas.organizations.external_ids IS 'The organization''s references at external services, keyed user_service, payment_service, communication_service.';
COMMENT ON COLUMN saas.organizations.version IS 'Row version: bumped by every update that changes a client-visible field, served as the ETag.';

CREATE TABLE saas.users (
	org_id				uuid		NOT NULL,
	id					uuid		NOT NULL DEFAULT saas.uuid_generate_v7(),
	email				text		NOT NULL,
	first_name			text		NOT NULL,
	last_name			text		NOT NULL,
	role				text		NOT NULL DEFAULT 'user',
	status				text		NOT NULL DEFAULT 'active',
	external_user_ids	jsonb		NOT NULL DEFAULT '{}',
	created_at			timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	updated_at			timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	last_login			timestamptz,
	version				bigint		NOT NULL DEFAULT 1,
	CONSTRAINT users_pkey PRIMARY KEY (org_id, id),
	CONSTRAINT users_org_email_key UNIQUE (org_id, email),
	CONSTRAINT users_org_fkey FOREIGN KEY (org_id) REFERENCES saas.organizations (id) ON DELETE CASCADE,
	CONSTRAINT users_email_check CHECK (email = pg_catalog.lower(email) AND email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' AND pg_catalog.length(email) <= 254),
	CONSTRAINT users_first_name_check CHECK (pg_catalog.length(first_name) BETWEEN 1 AND 100),
	CONSTRAINT users_last_name_check CHECK (pg_catalog.length(last_name) BETWEEN 1 AND 100),
	CONSTRAINT users_role_check CHECK (role IN ('super_admin', 'admin', 'user')),
	CONSTRAINT users_status_check CHECK (status IN ('active', 'inactive', 'suspended')),
	CONSTRAINT users_external_ids_check CHECK (saas._external_ids_valid(external_user_ids)),
	-- super_admins live in the platform organization.
	CONSTRAINT users_platform_check CHECK (role <> 'super_admin' OR org_id = saas.platform_org_id())
);
-- Login looks an email up across organizations.
CREATE INDEX users_email_idx ON saas.users (email);
COMMENT ON TABLE saas.users IS 'Users of each organization. Password hashes live in saas._credentials, never here.';
COMMENT ON COLUMN saas.users.external_user_ids IS 'The user''s ids at external services, keyed like organizations.external_ids.';

CREATE TABLE saas._credentials (
	org_id			uuid		NOT NULL,
	user_id			uuid		NOT NULL,
	password_hash	text		NOT NULL,
	updated_at		timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT credentials_pkey PRIMARY KEY (org_id, user_id),
	CONSTRAINT credentials_user_fkey FOREIGN KEY (org_id, user_id)
		REFERENCES saas.users (org_id, id) ON DELETE CASCADE,
	CONSTRAINT credentials_phc_check CHECK (password_hash LIKE '$argon2id$%')
);
COMMENT ON TABLE saas._credentials IS 'argon2id password hashes (PHC strings). Private: readable by the extension owner only.';

CREATE TABLE saas._signing_keys (
	kid			text		NOT NULL,
	alg			text		NOT NULL DEFAULT 'HS256',
	secret		bytea		NOT NULL,
	created_at	timestamptz	NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	retired_at	timestamptz,
	CONSTRAINT signing_keys_pkey PRIMARY KEY (kid),
	CONSTRAINT signing_keys_kid_check CHECK (kid ~ '^[A-Za-z0-9_-]{1,64}$'),
	CONSTRAINT signing_keys_alg_check CHECK (alg = 'HS256'),
	CONSTRAINT signing_keys_secret_check CHECK (pg_catalog.length(secret) BETWEEN 32 AND 256)
);
COMMENT ON TABLE saas._signing_keys IS 'JWT signing keys by kid. Private. The newest non-retired key signs; every non-retired key verifies.';

CREATE TRIGGER signing_keys_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON saas._signing_keys
	FOR EACH STATEMENT EXECUTE FUNCTION saas._signing_keys_changed();

-- Row bookkeeping: version (the ETag) and updated_at move only when a field a
-- client sees changes. A login (last_login) or an update that writes the
-- same values (a webhook echo, a sync page) leaves both as they were, so an
-- ETag a client holds stays valid. The comparison covers every column but
-- the bookkeeping ones, so a column added later counts without an edit here.
-- (It runs last among the BEFORE triggers: "touch" sorts after "rules".)
CREATE FUNCTION saas._touch_row() RETURNS trigger LANGUAGE plpgsql
	SET search_path = pg_catalog, saas, pg_temp
AS $$
BEGIN
	IF (pg_catalog.to_jsonb(NEW) OPERATOR(pg_catalog.-) '{version,updated_at,last_login}'::text[])
	   IS NOT DISTINCT FROM
	   (pg_catalog.to_jsonb(OLD) OPERATOR(pg_catalog.-) '{version,updated_at,last_login}'::text[]) THEN
		NEW.version := OLD.version;
		NEW.updated_at := OLD.updated_at;
	ELSE
		NEW.version := OLD.version + 1;
		NEW.updated_at := pg_catalog.now();
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION saas._touch_row() IS
	'Bumps version and updated_at on an update that changes a client-visible field; a login or a no-op update keeps both (private).';
CREATE TRIGGER organizations_touch BEFORE UPDATE ON saas.organizations
	FOR EACH ROW EXECUTE FUNCTION saas._touch_row();
CREATE TRIGGER users_touch BEFORE UPDATE ON saas.users
	FOR EACH ROW EXECUTE FUNCTION saas._touch_row();

-- Extension tables are dumped by pg_dump only when registered.
SELECT pg_catalog.pg_extension_config_dump('saas.organizations', '');
SELECT pg_catalog.pg_extension_config_dump('saas.users', '');
SELECT pg_catalog.pg_extension_config_dump('saas._credentials', '');
SELECT pg_catalog.pg_extension_config_dump('saas._signing_keys', '');
-- Part 22: the rulebook. Every rule of the role table (docs/security.md,
-- "Rules and where they hold") is enforced here, on the rows, so it holds for
-- every path: SQL as saas_api with a context, the SQL API functions,
-- saas.http, the webhook appliers and the worker. The C operations check the
-- same rules earlier only to answer with a nicer error.
--
-- Who acts is read from the verified context: saas.current_role() (never
-- more than the user's role now, see context.c), saas.current_user_id(),
-- saas._context_trusted() for the extension's own work. Without any context
-- only a superuser or the extension owner (as the statement's invoker, see
-- saas._invoker_privileged()) passes, for maintenance; anyone else is
-- refused, even when row-level security let the row through earlier in the
-- same statement under a context that a function then cleared or replaced.
-- The structural rules are CHECK constraints that hold for everyone
-- (20_tables.sql). Creation times and versions are the database's.
--
-- The last-admin rule is concurrency-safe: every change that could remove an
-- organization's last active admin first locks the organization
-- (saas._org_lock), then locks the other active admins' rows. Two admins
-- demoting each other at once therefore run one after the other; under READ COMMITTED the second sees the
-- first's change, under REPEATABLE READ it fails to lock the changed row and
-- gets a serialization error. Either way the organization keeps an admin.

-- Sessions: a per-user generation carried in tokens as "gen" (logout-all,
-- password change, demotion and deactivation move it on), and single tokens
-- revoked by jti until they would have expired anyway.
CREATE TABLE saas._sessions (
	org_id		uuid		NOT NULL,
	user_id		uuid		NOT NULL,
	generation	bigint		NOT NULL DEFAULT 0,
	changed_at	timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT sessions_pkey PRIMARY KEY (org_id, user_id),
	CONSTRAINT sessions_user_fkey FOREIGN KEY (org_id, user_id)
		REFERENCES saas.users (org_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE saas._sessions IS 'Token generation per user: tokens carrying an older "gen" are void. Private.';

CREATE TABLE saas._revoked_tokens (
	org_id		uuid		NOT NULL,
	user_id		uuid		NOT NULL,
	jti			text		NOT NULL,
	expires_at	timestamptz	NOT NULL,
	CONSTRAINT revoked_tokens_pkey PRIMARY KEY (org_id, user_id, jti),
	CONSTRAINT revoked_tokens_user_fkey FOREIGN KEY (org_id, user_id)
		REFERENCES saas.users (org_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE saas._revoked_tokens IS 'Tokens ended one by one (POST /auth/logout), kept until their expiry. Private.';

-- External user ids are unique per service across the platform (a reference
-- table under Citus): two tenants can never claim the same remote user.
CREATE TABLE saas._user_refs (
	service_key	text		NOT NULL,
	ref			text		NOT NULL,
	org_id		uuid		NOT NULL,
	user_id		uuid		NOT NULL,
	CONSTRAINT user_refs_pkey PRIMARY KEY (service_key, ref)
);
CREATE INDEX user_refs_user_idx ON saas._user_refs (org_id, user_id);
COMMENT ON TABLE saas._user_refs IS 'Owner of each external user id, per service: keeps them unique across organizations. Private.';

ALTER TABLE saas._sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas._sessions FORCE ROW LEVEL SECURITY;
ALTER TABLE saas._revoked_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas._revoked_tokens FORCE ROW LEVEL SECURITY;
ALTER TABLE saas._user_refs ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas._user_refs FORCE ROW LEVEL SECURITY;
CREATE POLICY sessions_owner ON saas._sessions USING (true);
CREATE POLICY revoked_tokens_owner ON saas._revoked_tokens USING (true);
CREATE POLICY user_refs_owner ON saas._user_refs USING (true);

-- An organization's references are unique per service across the platform.
CREATE UNIQUE INDEX organizations_ref_user_key ON saas.organizations ((external_ids ->> 'user_service'));
CREATE UNIQUE INDEX organizations_ref_payment_key ON saas.organizations ((external_ids ->> 'payment_service'));
CREATE UNIQUE INDEX organizations_ref_comm_key ON saas.organizations ((external_ids ->> 'communication_service'));
CREATE UNIQUE INDEX organizations_ref_customer_key ON saas.organizations ((external_ids ->> 'payment_customer'));

-- saas._rule_refuse: one way to say no, with the HTTP status in the SQLSTATE.
CREATE FUNCTION saas._rule_refuse(status text, message text, field text DEFAULT NULL) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, saas, pg_temp
AS $$
BEGIN
	IF field IS NULL THEN
		RAISE EXCEPTION '%', message USING ERRCODE = 'SA' || status;
	END IF;
	RAISE EXCEPTION '%', message USING ERRCODE = 'SA' || status,
		DETAIL = pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('field', field, 'message', message))::text;
END
$$;
COMMENT ON FUNCTION saas._rule_refuse(text, text, text) IS 'Raises a rule violation with its HTTP status (SQLSTATE SAnnn) (private).';

-- saas._org_lock: the organization's lock for changes to its users (the
-- last-admin rule, the employee limit); false when the organization is gone.
-- A transaction-scoped advisory lock keyed by org_id, taken where the users
-- triggers run: on a single node that node, on Citus the node of the
-- organization's shards (every user row of it is there). The organization
-- row is locked too where it is a plain table; on Citus it is a reference
-- table, whose row lock from a shard's trigger is taken on every node's copy
-- over new connections, which wait for the coordinator's own uncommitted
-- writes (a distributed deadlock), so there the advisory lock alone serves.
CREATE FUNCTION saas._org_lock(p_org uuid) RETURNS boolean
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	citus boolean := false;
BEGIN
	PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('saas.org:' || p_org::text, 0));
	IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
		EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition'
				' WHERE logicalrelid OPERATOR(pg_catalog.=) ''saas.organizations''::pg_catalog.regclass)'
		   INTO citus;
	END IF;
	IF citus THEN
		RETURN EXISTS (SELECT 1 FROM saas.organizations WHERE id = p_org);
	END IF;
	PERFORM 1 FROM saas.organizations WHERE id = p_org FOR NO KEY UPDATE;
	RETURN FOUND;
END
$$;
COMMENT ON FUNCTION saas._org_lock(uuid) IS
	'Locks an organization for changes to its users (advisory, and its row where that is a plain table); false when it is gone (private).';

-- saas._org_keep_admin: the organization must keep an active admin without
-- the given user. Locks as described at the top.
CREATE FUNCTION saas._org_keep_admin(p_org uuid, p_user uuid, p_what text) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	n bigint;
BEGIN
	IF NOT saas._org_lock(p_org) THEN
		RETURN;					-- the organization itself is being deleted
	END IF;
	SELECT pg_catalog.count(*) INTO n FROM (
		SELECT 1 FROM saas.users
		 WHERE org_id = p_org AND id <> p_user AND role = 'admin' AND status = 'active'
		   FOR UPDATE) AS others;
	IF n = 0 THEN
		PERFORM saas._rule_refuse('409', pg_catalog.format('the last active admin of an organization cannot be %s', p_what));
	END IF;
END
$$;
COMMENT ON FUNCTION saas._org_keep_admin(uuid, uuid, text) IS 'Refuses (409) a change that would leave an organization without an active admin (private).';

-- saas._session_bump: void the user's existing tokens.
CREATE FUNCTION saas._session_bump(p_org uuid, p_user uuid) RETURNS void
	LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
	INSERT INTO saas._sessions (org_id, user_id, generation) VALUES (p_org, p_user, 1)
	ON CONFLICT (org_id, user_id) DO UPDATE
	   -- EXCLUDED.changed_at is the column's default, now(): Citus refuses a function here.
	   SET generation = saas._sessions.generation + 1, changed_at = EXCLUDED.changed_at;
	DELETE FROM saas._revoked_tokens WHERE org_id = p_org AND user_id = p_user;
$$;
COMMENT ON FUNCTION saas._session_bump(uuid, uuid) IS 'Ends every existing token of a user (private).';

-- Users.
CREATE FUNCTION saas._users_rules() RETURNS trigger LANGUAGE plpgsql
	SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	actor_role text := saas.current_role();
	actor uuid := saas.current_user_id();
	trusted boolean := saas._context_trusted();
	is_admin boolean := actor_role IN ('admin', 'super_admin');
	lim integer;
	n bigint;
	tgt saas.users;
BEGIN
	IF TG_OP <> 'DELETE' THEN
		NEW.email := pg_catalog.lower(NEW.email);
	END IF;
	tgt := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
	-- No context: the owner's maintenance, nobody else's.
	IF actor_role IS NULL THEN
		IF saas._invoker_privileged() THEN
			RETURN tgt;
		END IF;
		PERFORM saas._rule_refuse('401', 'a verified tenant context is required');
	END IF;
	-- A row outside the caller's organization: for an insert or update, row
	-- level security refuses it (checking here first would reveal the other
	-- tenant's state). A delete was let through under another context that
	-- changed during the statement: refused.
	IF tgt.org_id IS DISTINCT FROM saas.current_org_id() THEN
		-- (Deleting an organization cascades to its users: the organization
		-- is gone by then, and that is no change of context.)
		IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM saas.organizations WHERE id = OLD.org_id) THEN
			PERFORM saas._rule_refuse('403', 'the tenant context changed during the statement');
		END IF;
		RETURN tgt;
	END IF;

	IF TG_OP = 'DELETE' THEN
		IF OLD.id = actor THEN
			PERFORM saas._rule_refuse('403', 'a user cannot delete itself');
		END IF;
		IF OLD.role = 'super_admin' AND actor_role <> 'super_admin' THEN
			PERFORM saas._rule_refuse('403', 'only a super_admin may remove a super_admin');
		END IF;
		IF OLD.role = 'admin' AND OLD.status = 'active' THEN
			PERFORM saas._org_keep_admin(OLD.org_id, OLD.id, 'deleted');
		END IF;
		RETURN OLD;
	END IF;

	IF TG_OP = 'INSERT' THEN
		IF NOT (is_admin OR trusted) THEN
			PERFORM saas._rule_refuse('403', 'only an admin may create users');
		END IF;
		IF NEW.role = 'super_admin' AND actor_role <> 'super_admin' THEN
			PERFORM saas._rule_refuse('403', 'only a super_admin may create a super_admin', 'role');
		END IF;
		IF NEW.last_login IS NOT NULL AND NOT trusted THEN
			PERFORM saas._rule_refuse('403', 'last_login is set by login only', 'last_login');
		END IF;
		-- The row's history is the database's (login picks the oldest accounts).
		NEW.created_at := pg_catalog.now();
		NEW.updated_at := pg_catalog.now();
		NEW.version := 1;
	ELSE
		IF NEW.org_id IS DISTINCT FROM OLD.org_id OR NEW.id IS DISTINCT FROM OLD.id
		   OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
			PERFORM saas._rule_refuse('403', 'a user''s organization, id and creation time cannot change');
		END IF;
		IF NEW.last_login IS DISTINCT FROM OLD.last_login AND NOT trusted THEN
			PERFORM saas._rule_refuse('403', 'last_login is set by login only', 'last_login');
		END IF;
		IF (OLD.role = 'super_admin' OR NEW.role = 'super_admin') AND actor_role <> 'super_admin'
		   AND (NEW.role, NEW.status, NEW.email, NEW.first_name, NEW.last_name, NEW.external_user_ids)
			   IS DISTINCT FROM (OLD.role, OLD.status, OLD.email, OLD.first_name, OLD.last_name, OLD.external_user_ids) THEN
			PERFORM saas._rule_refuse('403', 'only a super_admin may change a super_admin', 'role');
		END IF;
		IF NOT is_admin
		   AND (NEW.role, NEW.status, NEW.email, NEW.external_user_ids)
			   IS DISTINCT FROM (OLD.role, OLD.status, OLD.email, OLD.external_user_ids) THEN
			PERFORM saas._rule_refuse('403', 'only an admin may change role, status, email or external ids');
		END IF;
		IF NOT is_admin AND OLD.id IS DISTINCT FROM actor AND NOT trusted THEN
			PERFORM saas._rule_refuse('403', 'a user may update only its own profile');
		END IF;
		IF OLD.id = actor AND NEW.status <> 'active' AND OLD.status = 'active' THEN
			PERFORM saas._rule_refuse('403', 'a user cannot suspend or deactivate itself', 'status');
		END IF;
		IF OLD.role = 'admin' AND OLD.status = 'active'
		   AND (NEW.role <> 'admin' OR NEW.status <> 'active') THEN
			PERFORM saas._org_keep_admin(OLD.org_id, OLD.id,
				CASE WHEN NEW.role <> 'admin' THEN 'demoted' ELSE 'deactivated' END);
		END IF;
		IF NOT (NEW.status = 'active' AND OLD.status <> 'active') THEN
			RETURN NEW;
		END IF;
	END IF;

	-- employee_limit: lock the organization so concurrent changes count each other.
	IF NEW.status <> 'active' THEN
		RETURN NEW;
	END IF;
	PERFORM saas._org_lock(NEW.org_id);
	SELECT employee_limit INTO lim FROM saas.organizations WHERE id = NEW.org_id;
	SELECT pg_catalog.count(*) INTO n FROM saas.users
	 WHERE org_id = NEW.org_id AND status = 'active' AND id <> NEW.id;
	IF lim IS NOT NULL AND n >= lim THEN
		RAISE EXCEPTION 'organization has reached its employee limit of % active users', lim
			USING ERRCODE = 'SA409', HINT = 'Raise employee_limit or deactivate a user.';
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION saas._users_rules() IS
	'The rules on users for every path: who may create, change or remove whom, which fields, the last admin, self-suspension, employee_limit (private).';
CREATE TRIGGER users_rules BEFORE INSERT OR UPDATE OR DELETE ON saas.users
	FOR EACH ROW EXECUTE FUNCTION saas._users_rules();

-- After a change: end the tokens of users who lost rights, and keep the
-- directories of emails and external user ids (23_directory.sql).
CREATE FUNCTION saas._users_after() RETURNS trigger LANGUAGE plpgsql
	SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
BEGIN
	IF TG_OP = 'UPDATE' AND (NEW.status <> 'active' AND OLD.status = 'active'
							 OR (OLD.role = 'admin' AND NEW.role = 'user')
							 OR NEW.email IS DISTINCT FROM OLD.email) THEN
		PERFORM saas._session_bump(NEW.org_id, NEW.id);
	END IF;
	-- On Citus this runs on a shard (named users_<shardid>), which checks the
	-- entries instead of writing them.
	IF TG_OP = 'DELETE' THEN
		PERFORM saas._dir_keep(TG_OP, TG_TABLE_NAME = 'users', OLD.org_id, OLD.id, OLD.email, OLD.external_user_ids, NULL, NULL);
		RETURN OLD;
	END IF;
	PERFORM saas._dir_keep(TG_OP, TG_TABLE_NAME = 'users', NEW.org_id, NEW.id,
						   OLD.email, OLD.external_user_ids, NEW.email, NEW.external_user_ids);
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION saas._users_after() IS 'Ends tokens of users who lost rights; keeps the email and external id directories exact (private).';
CREATE TRIGGER users_after AFTER INSERT OR UPDATE OR DELETE ON saas.users
	FOR EACH ROW EXECUTE FUNCTION saas._users_after();

-- Organizations.
CREATE FUNCTION saas._organizations_rules() RETURNS trigger LANGUAGE plpgsql
	SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	actor_role text := saas.current_role();
	trusted boolean := saas._context_trusted();
	is_super boolean := actor_role = 'super_admin';
	k text;
	v text;
BEGIN
	IF actor_role IS NULL THEN
		IF saas._invoker_privileged() THEN
			RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
		END IF;
		PERFORM saas._rule_refuse('401', 'a verified tenant context is required');
	END IF;
	IF TG_OP = 'DELETE' THEN
		IF OLD.id = saas.platform_org_id() THEN
			PERFORM saas._rule_refuse('409', 'the platform organization cannot be deleted');
		END IF;
		IF NOT is_super THEN
			PERFORM saas._rule_refuse('403', 'only a super_admin may delete organizations');
		END IF;
		RETURN OLD;
	END IF;
	IF TG_OP = 'INSERT' THEN
		IF NOT (is_super OR trusted) THEN
			PERFORM saas._rule_refuse('403', 'only a super_admin may create organizations');
		END IF;
		IF NOT is_super AND (NEW.subscription_tier <> 'free' OR NEW.employee_limit <> 10
							 OR NEW.features_enabled <> '{}' OR NEW.external_ids <> '{}' OR NEW.status <> 'active') THEN
			PERFORM saas._rule_refuse('403', 'only a super_admin may set an organization''s commercial fields, status or external ids');
		END IF;
		NEW.created_at := pg_catalog.now();
		NEW.updated_at := pg_catalog.now();
		NEW.version := 1;
	ELSE
		IF NEW.id IS DISTINCT FROM OLD.id OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
			PERFORM saas._rule_refuse('403', 'an organization''s id and creation time cannot change');
		END IF;
		IF OLD.id = saas.platform_org_id() AND NEW.status <> 'active' THEN
			PERFORM saas._rule_refuse('409', 'the platform organization cannot be suspended', 'status');
		END IF;
		-- Services report plan changes (the worker, trusted); people need super_admin.
		IF NOT is_super AND NOT trusted
		   AND (NEW.subscription_tier, NEW.employee_limit, NEW.features_enabled, NEW.status)
			   IS DISTINCT FROM (OLD.subscription_tier, OLD.employee_limit, OLD.features_enabled, OLD.status) THEN
			PERFORM saas._rule_refuse('403', 'only a super_admin may change subscription_tier, employee_limit, features_enabled or status');
		END IF;
		IF NOT is_super AND NOT trusted AND NEW.external_ids IS DISTINCT FROM OLD.external_ids THEN
			PERFORM saas._rule_refuse('403', 'only a super_admin may change external_ids', 'external_ids');
		END IF;
	END IF;
	IF NEW.slug = 'platform' AND NEW.id <> saas.platform_org_id() THEN
		PERFORM saas._rule_refuse('409', 'organization slug "platform" is already taken', 'slug');
	END IF;
	-- A reference is another organization's neither by its id (the default
	-- reference) nor by its own references (the unique indexes hold the
	-- same under concurrency; this says it with the field).
	IF TG_OP = 'INSERT' OR NEW.external_ids IS DISTINCT FROM OLD.external_ids THEN
		FOR k, v IN SELECT e.key, e.value FROM pg_catalog.jsonb_each_text(NEW.external_ids) e LOOP
			IF EXISTS (SELECT 1 FROM saas.organizations o
						WHERE o.id <> NEW.id AND (o.id::text = pg_catalog.lower(v) OR o.external_ids ->> k = v)) THEN
				PERFORM saas._rule_refuse('409', pg_catalog.format('external id %s belongs to another organization', k),
										  'external_ids.' || k);
			END IF;
		END LOOP;
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION saas._organizations_rules() IS
	'The rules on organizations for every path: who may create, change (which fields) or delete them; the platform organization (private).';
CREATE TRIGGER organizations_rules BEFORE INSERT OR UPDATE OR DELETE ON saas.organizations
	FOR EACH ROW EXECUTE FUNCTION saas._organizations_rules();

-- Credentials: who may set whose password; a new password ends old sessions.
-- saas_api may insert a hash (column privileges, part 90: it never reads
-- one), so that the API writes it as the caller, without switching identity
-- (Citus refuses a second user on the shards the caller changed). Only the
-- extension's own trusted context passes, which the API pushes after its
-- checks (the password policy, the current password of a user's own).
CREATE FUNCTION saas._credentials_rules() RETURNS trigger LANGUAGE plpgsql
	SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	actor_role text := saas.current_role();
	target_role text;
BEGIN
	IF actor_role IS NULL THEN
		IF saas._invoker_privileged() THEN
			RETURN NEW;
		END IF;
		PERFORM saas._rule_refuse('401', 'a verified tenant context is required');
	END IF;
	-- Checked here, before saas._credentials_upsert can turn the insert into
	-- an update that row-level security would not see.
	IF NEW.org_id IS DISTINCT FROM saas.current_org_id() THEN
		PERFORM saas._rule_refuse('404', 'user not found');
	END IF;
	IF NOT saas._context_trusted() THEN
		PERFORM saas._rule_refuse('403', 'passwords are set through the API only', 'password');
	END IF;
	SELECT u.role INTO target_role FROM saas.users u WHERE u.org_id = NEW.org_id AND u.id = NEW.user_id;
	IF target_role = 'super_admin' AND actor_role <> 'super_admin' THEN
		PERFORM saas._rule_refuse('403', 'only a super_admin may set a super_admin''s password', 'password');
	END IF;
	IF actor_role NOT IN ('admin', 'super_admin') AND NEW.user_id IS DISTINCT FROM saas.current_user_id()
	   AND NOT saas._context_trusted() THEN
		PERFORM saas._rule_refuse('403', 'a user may change only its own password', 'password');
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION saas._credentials_rules() IS 'Who may set whose password (private).';
CREATE TRIGGER credentials_rules BEFORE INSERT OR UPDATE ON saas._credentials
	FOR EACH ROW EXECUTE FUNCTION saas._credentials_rules();

-- An insert for a user who has a password already replaces it (the insert
-- is then skipped): saas_api gets no UPDATE on the table, and an upsert's
-- ON CONFLICT would need SELECT on it. Runs after credentials_rules.
CREATE FUNCTION saas._credentials_upsert() RETURNS trigger LANGUAGE plpgsql
	SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
BEGIN
	UPDATE saas._credentials SET password_hash = NEW.password_hash, updated_at = pg_catalog.now()
	 WHERE org_id = NEW.org_id AND user_id = NEW.user_id;
	IF FOUND THEN
		RETURN NULL;
	END IF;
	NEW.updated_at := pg_catalog.now();
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION saas._credentials_upsert() IS 'A new password of a user who has one replaces it (private).';
CREATE TRIGGER credentials_upsert BEFORE INSERT ON saas._credentials
	FOR EACH ROW EXECUTE FUNCTION saas._credentials_upsert();

CREATE FUNCTION saas._credentials_after() RETURNS trigger LANGUAGE plpgsql
	SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
BEGIN
	IF NEW.password_hash IS DISTINCT FROM OLD.password_hash THEN
		-- Audit first: the bump ends the actor's own session when it is the user's.
		PERFORM saas._audit_event(NEW.org_id, 'user', NEW.user_id, 'password_change',
								  pg_catalog.jsonb_build_object('sessions', 'ended'));
		PERFORM saas._session_bump(NEW.org_id, NEW.user_id);
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION saas._credentials_after() IS 'A changed password ends the user''s existing tokens (private).';
CREATE TRIGGER credentials_after AFTER UPDATE ON saas._credentials
	FOR EACH ROW EXECUTE FUNCTION saas._credentials_after();

-- Changes to the facts tokens depend on drop this backend's cached session
-- state at once (other backends re-read within 5 seconds, see context.c).
CREATE FUNCTION saas._session_state_changed() RETURNS trigger
	AS 'MODULE_PATHNAME', 'saas_session_state_changed' LANGUAGE C;
COMMENT ON FUNCTION saas._session_state_changed() IS 'Statement trigger: forgets this backend''s cached session state (private).';
CREATE TRIGGER users_session_state AFTER UPDATE OR DELETE ON saas.users
	FOR EACH STATEMENT EXECUTE FUNCTION saas._session_state_changed();
CREATE TRIGGER organizations_session_state AFTER UPDATE OR DELETE ON saas.organizations
	FOR EACH STATEMENT EXECUTE FUNCTION saas._session_state_changed();
CREATE TRIGGER sessions_session_state AFTER INSERT OR UPDATE OR DELETE ON saas._sessions
	FOR EACH STATEMENT EXECUTE FUNCTION saas._session_state_changed();
CREATE TRIGGER revoked_tokens_session_state AFTER INSERT OR UPDATE OR DELETE ON saas._revoked_tokens
	FOR EACH STATEMENT EXECUTE FUNCTION saas._session_state_changed();

SELECT pg_catalog.pg_extension_config_dump('saas._sessions', '');
SELECT pg_catalog.pg_extension_config_dump('saas._revoked_tokens', '');
SELECT pg_catalog.pg_extension_config_dump('saas._user_refs', '');
-- Part 23: the directories of users (docs/scale-out.md, "Directories"). Two
-- platform-wide tables, reference tables under Citus, that answer without
-- reading every organization's users:
--
--   _user_emails  (email, org_id, user_id): which accounts an email is; login
--                 and registration read it (one lookup, not one per shard).
--   _user_refs    (service_key, ref, org_id, user_id, in 22_rules.sql): the
--                 owner of each external user id, unique across organizations.
--
-- Both are kept exact by the users_after trigger (saas._dir_keep) for every
-- path. On a single node the trigger writes them. On Citus the trigger runs
-- on a shard, on a worker node, from where a reference table cannot be
-- written; there it checks instead that the entries were written beforehand
-- in the same transaction (saas._dir_set and saas._dir_drop, called on the
-- coordinator by the API, the SQL API, the appliers and the sync, as the same
-- role as the users statement: Citus then uses one connection per node, and
-- the shard's trigger sees them in its local copy). A change whose entries are
-- not in place is refused, so no path can bypass the directories.

CREATE TABLE saas._user_emails (
	email		text		NOT NULL,
	org_id		uuid		NOT NULL,
	user_id		uuid		NOT NULL,
	-- When the email was claimed in the organization: login tries the oldest
	-- claims first (a copy made later elsewhere cannot push the owner out).
	created_at	timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT user_emails_pkey PRIMARY KEY (email, org_id)
);
CREATE UNIQUE INDEX user_emails_user_key ON saas._user_emails (org_id, user_id);
COMMENT ON TABLE saas._user_emails IS 'The accounts of each email, across organizations: read by login and registration. Private.';

-- Who reads and writes them: the extension's owner (its triggers and elevated
-- reads) everything; saas_api, which is granted the tables only on Citus (by
-- saas.distribute()), its own organization's entries, written by admins and
-- the extension's trusted work.
ALTER TABLE saas._user_emails ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas._user_emails FORCE ROW LEVEL SECURITY;
DROP POLICY user_refs_owner ON saas._user_refs;
DO $$
BEGIN
	EXECUTE pg_catalog.format('CREATE POLICY user_emails_owner ON saas._user_emails TO %I USING (true)', current_user);
	EXECUTE pg_catalog.format('CREATE POLICY user_refs_owner ON saas._user_refs TO %I USING (true)', current_user);
END
$$;
CREATE POLICY user_emails_tenant_read ON saas._user_emails FOR SELECT TO saas_api
	USING (org_id OPERATOR(pg_catalog.=) saas.current_org_id());
-- A claim is as old as its insert: not backdated (Citus evaluates the default,
-- now(), on the coordinator, whose transaction began before the workers' did).
CREATE POLICY user_emails_tenant_insert ON saas._user_emails FOR INSERT TO saas_api
	WITH CHECK (org_id OPERATOR(pg_catalog.=) saas.current_org_id()
				AND (saas.current_role() OPERATOR(pg_catalog.=) ANY (ARRAY['admin', 'super_admin']) OR saas._context_trusted())
				AND created_at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 hour'));
CREATE POLICY user_emails_tenant_update ON saas._user_emails FOR UPDATE TO saas_api
	USING (org_id OPERATOR(pg_catalog.=) saas.current_org_id()
		   AND (saas.current_role() OPERATOR(pg_catalog.=) ANY (ARRAY['admin', 'super_admin']) OR saas._context_trusted()))
	WITH CHECK (org_id OPERATOR(pg_catalog.=) saas.current_org_id());
CREATE POLICY user_emails_tenant_delete ON saas._user_emails FOR DELETE TO saas_api
	USING (org_id OPERATOR(pg_catalog.=) saas.current_org_id()
		   AND (saas.current_role() OPERATOR(pg_catalog.=) ANY (ARRAY['admin', 'super_admin']) OR saas._context_trusted()));
CREATE POLICY user_refs_tenant_read ON saas._user_refs FOR SELECT TO saas_api
	USING (org_id OPERATOR(pg_catalog.=) saas.current_org_id());
CREATE POLICY user_refs_tenant_insert ON saas._user_refs FOR INSERT TO saas_api
	WITH CHECK (org_id OPERATOR(pg_catalog.=) saas.current_org_id()
				AND (saas.current_role() OPERATOR(pg_catalog.=) ANY (ARRAY['admin', 'super_admin']) OR saas._context_trusted()));
CREATE POLICY user_refs_tenant_delete ON saas._user_refs FOR DELETE TO saas_api
	USING (org_id OPERATOR(pg_catalog.=) saas.current_org_id()
		   AND (saas.current_role() OPERATOR(pg_catalog.=) ANY (ARRAY['admin', 'super_admin']) OR saas._context_trusted()));

-- A rename moves the entry to another email only: its user and the claim's
-- age stay (the same on every copy: taken from the old row).
CREATE FUNCTION saas._user_emails_pin() RETURNS trigger LANGUAGE plpgsql
	SET search_path = pg_catalog, saas, pg_temp
AS $$
BEGIN
	NEW.org_id := OLD.org_id;
	NEW.user_id := OLD.user_id;
	NEW.created_at := OLD.created_at;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION saas._user_emails_pin() IS 'Keeps an email directory entry''s user and age on update (private).';
CREATE TRIGGER user_emails_pin BEFORE UPDATE ON saas._user_emails
	FOR EACH ROW EXECUTE FUNCTION saas._user_emails_pin();

-- saas._dir_remote: saas.users is distributed by Citus (its triggers run on shards).
CREATE FUNCTION saas._dir_remote() RETURNS boolean
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	d boolean;
BEGIN
	IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
		RETURN false;
	END IF;
	EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid OPERATOR(pg_catalog.=) ''saas.users''::regclass)'
		INTO d;
	RETURN d;
END
$$;
COMMENT ON FUNCTION saas._dir_remote() IS 'True when Citus distributes saas.users: the directories are written from the coordinator (private).';

-- saas._org_shards_here: this node holds the organization's rows (always on a
-- single node; on Citus, the node of its shard of saas.users). The triggers on
-- a reference table fire on every copy; what they do to the organization's
-- tenant rows is done once, there, where those rows are local.
CREATE FUNCTION saas._org_shards_here(p_org uuid) RETURNS boolean
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	here boolean;
BEGIN
	IF NOT saas._dir_remote() THEN
		RETURN true;
	END IF;
	EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_placement p, pg_catalog.pg_dist_local_group g
							 WHERE p.groupid OPERATOR(pg_catalog.=) g.groupid
							   AND p.shardid OPERATOR(pg_catalog.=) pg_catalog.get_shard_id_for_distribution_column(''saas.users''::regclass, $1))'
		INTO here USING p_org;
	RETURN here;
END
$$;
COMMENT ON FUNCTION saas._org_shards_here(uuid) IS 'True on the node that holds the organization''s tenant rows (always without Citus) (private).';

-- A deleted organization's entries go with it. On a single node its users'
-- cascade removes them one by one. On Citus the shards' triggers cannot, and
-- each copy of organizations removes them from its node's copies of the
-- directories, as a foreign key's cascade between reference tables would.
-- (No foreign key: an entry written with one locks the organization on every
-- node, and the users trigger's own lock of it, taken from a worker, then
-- waits on a lock of its own distributed transaction.)
CREATE FUNCTION saas._organizations_dir_gone() RETURNS trigger LANGUAGE plpgsql
	SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	copy text;
BEGIN
	IF NOT saas._dir_remote() THEN
		RETURN NULL;
	END IF;
	FOR copy IN EXECUTE 'SELECT pg_catalog.shard_name(s.logicalrelid, s.shardid) FROM pg_catalog.pg_dist_shard s
						  WHERE s.logicalrelid OPERATOR(pg_catalog.=) ANY (ARRAY[''saas._user_emails''::regclass, ''saas._user_refs''::regclass])' LOOP
		IF pg_catalog.to_regclass(copy) IS NOT NULL THEN
			EXECUTE pg_catalog.format('DELETE FROM %s WHERE org_id OPERATOR(pg_catalog.=) $1', copy) USING OLD.id;
		END IF;
	END LOOP;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION saas._organizations_dir_gone() IS 'On Citus: removes a deleted organization''s entries from this node''s copies of the directories (private).';
CREATE TRIGGER organizations_directory AFTER DELETE ON saas.organizations
	FOR EACH ROW EXECUTE FUNCTION saas._organizations_dir_gone();

-- saas._dir_set: on Citus, put the directory entries of a user in place before
-- the users statement that gives it this email (NULL: unchanged) and these
-- external ids (NULL: unchanged). Runs as the caller (see the top). Conflicts
-- are left to the users statement and its trigger, which answer as on a single
-- node. Nothing to do on a single node: the trigger writes the entries.
CREATE FUNCTION saas._dir_set(p_org uuid, p_user uuid, p_email text, p_ext jsonb) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	k text;
	v text;
BEGIN
	IF NOT saas._dir_remote() THEN
		RETURN;
	END IF;
	IF p_email IS NOT NULL THEN
		p_email := pg_catalog.lower(p_email);
		UPDATE saas._user_emails SET email = p_email WHERE org_id = p_org AND user_id = p_user AND email <> p_email;
		IF NOT EXISTS (SELECT 1 FROM saas._user_emails WHERE org_id = p_org AND user_id = p_user) THEN
			INSERT INTO saas._user_emails (email, org_id, user_id) VALUES (p_email, p_org, p_user)
				ON CONFLICT DO NOTHING;
		END IF;
	END IF;
	IF p_ext IS NOT NULL THEN
		DELETE FROM saas._user_refs r WHERE r.org_id = p_org AND r.user_id = p_user
		   AND (p_ext ->> r.service_key) IS DISTINCT FROM r.ref;
		FOR k, v IN SELECT e.key, e.value FROM pg_catalog.jsonb_each_text(p_ext) e LOOP
			INSERT INTO saas._user_refs (service_key, ref, org_id, user_id) VALUES (k, v, p_org, p_user)
				ON CONFLICT DO NOTHING;
		END LOOP;
	END IF;
END
$$;
COMMENT ON FUNCTION saas._dir_set(uuid, uuid, text, jsonb) IS
	'On Citus: writes a user''s email and external ids into the directories before the users statement, as the caller (private).';

-- saas._dir_drop: on Citus, remove a user's directory entries before deleting it.
CREATE FUNCTION saas._dir_drop(p_org uuid, p_user uuid) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, saas, pg_temp
AS $$
BEGIN
	IF NOT saas._dir_remote() THEN
		RETURN;
	END IF;
	DELETE FROM saas._user_emails WHERE org_id = p_org AND user_id = p_user;
	DELETE FROM saas._user_refs WHERE org_id = p_org AND user_id = p_user;
END
$$;
COMMENT ON FUNCTION saas._dir_drop(uuid, uuid) IS 'On Citus: removes a user''s directory entries before it is deleted, as the caller (private).';

-- saas._dir_unkept: the refusal of a change whose directory entries are not in place.
CREATE FUNCTION saas._dir_unkept(p_user uuid) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, saas, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'the directory entries of user % are not in place', p_user
		USING ERRCODE = '55000',
			  HINT = 'On a Citus cluster, change users'' emails and external ids through saas.http or the saas API functions, which write the directories first.';
END
$$;
COMMENT ON FUNCTION saas._dir_unkept(uuid) IS 'Refuses a users change whose directory entries were not written first (private).';

-- saas._dir_keep: called by users_after for each changed row. p_here: the
-- trigger runs on saas.users itself (a single node), not on a Citus shard.
CREATE FUNCTION saas._dir_keep(p_op text, p_here boolean, p_org uuid, p_user uuid,
							   p_old_email text, p_old_ext jsonb, p_new_email text, p_new_ext jsonb)
	RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	k text;
	v text;
	holder uuid;
	since timestamptz;
	h record;
BEGIN
	IF p_op = 'DELETE' THEN
		IF p_here THEN
			DELETE FROM saas._user_emails WHERE org_id = p_org AND user_id = p_user;
			DELETE FROM saas._user_refs WHERE org_id = p_org AND user_id = p_user;
		-- (When the organization itself goes, saas._organizations_dir_gone removes them.)
		ELSIF EXISTS (SELECT 1 FROM saas.organizations WHERE id = p_org)
			  AND (EXISTS (SELECT 1 FROM saas._user_emails WHERE org_id = p_org AND user_id = p_user)
				   OR EXISTS (SELECT 1 FROM saas._user_refs WHERE org_id = p_org AND user_id = p_user)) THEN
			PERFORM saas._dir_unkept(p_user);
		END IF;
		RETURN;
	END IF;

	IF p_op = 'INSERT' OR p_new_email IS DISTINCT FROM p_old_email THEN
		IF p_here THEN
			-- A rename keeps the claim's age; an entry left without its user goes.
			SELECT e.created_at INTO since FROM saas._user_emails e WHERE e.org_id = p_org AND e.user_id = p_user;
			DELETE FROM saas._user_emails WHERE org_id = p_org AND (user_id = p_user OR email = p_new_email);
			INSERT INTO saas._user_emails (email, org_id, user_id, created_at)
			VALUES (p_new_email, p_org, p_user, coalesce(since, pg_catalog.now()));
		ELSIF NOT EXISTS (SELECT 1 FROM saas._user_emails
						   WHERE email = p_new_email AND org_id = p_org AND user_id = p_user) THEN
			PERFORM saas._dir_unkept(p_user);
		END IF;
	END IF;

	IF p_op = 'INSERT' OR p_new_ext IS DISTINCT FROM p_old_ext THEN
		IF p_here THEN
			DELETE FROM saas._user_refs r WHERE r.org_id = p_org AND r.user_id = p_user;
		ELSIF EXISTS (SELECT 1 FROM saas._user_refs r WHERE r.org_id = p_org AND r.user_id = p_user
						 AND (p_new_ext ->> r.service_key) IS DISTINCT FROM r.ref) THEN
			PERFORM saas._dir_unkept(p_user);
		END IF;
		FOR k, v IN SELECT e.key, e.value FROM pg_catalog.jsonb_each_text(p_new_ext) e LOOP
			holder := NULL;
			IF p_here THEN
				INSERT INTO saas._user_refs (service_key, ref, org_id, user_id)
				VALUES (k, v, p_org, p_user) ON CONFLICT DO NOTHING
				RETURNING user_id INTO holder;
			ELSE
				SELECT r.org_id, r.user_id INTO h FROM saas._user_refs r WHERE r.service_key = k AND r.ref = v;
				IF NOT FOUND THEN
					PERFORM saas._dir_unkept(p_user);
				END IF;
				IF h.org_id = p_org AND h.user_id = p_user THEN
					holder := p_user;
				END IF;
			END IF;
			IF holder IS NULL THEN
				PERFORM saas._rule_refuse('409', pg_catalog.format('external id %s is already linked to another user', k),
										  'external_user_ids.' || k);
			END IF;
		END LOOP;
	END IF;
END
$$;
COMMENT ON FUNCTION saas._dir_keep(text, boolean, uuid, uuid, text, jsonb, text, jsonb) IS
	'Keeps the email and external id directories exact for a users change: writes them on a single node, checks them on a Citus shard (private).';

-- The C operations and the appliers call these as the caller; without Citus
-- they return at once, and saas_api is granted the tables only by saas.distribute().
GRANT EXECUTE ON FUNCTION saas._dir_set(uuid, uuid, text, jsonb), saas._dir_drop(uuid, uuid),
	saas._dir_remote() TO saas_api;

SELECT pg_catalog.pg_extension_config_dump('saas._user_emails', '');
-- Part 25: signing-key management (owner only; not granted to saas_api).

CREATE FUNCTION saas.rotate_signing_key() RETURNS text LANGUAGE plpgsql
	SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	new_kid text := 'k' || pg_catalog.to_char(pg_catalog.clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS')
					|| '-' || pg_catalog.encode(saas._random_bytes(4), 'hex');
BEGIN
	INSERT INTO saas._signing_keys (kid, secret) VALUES (new_kid, saas._random_bytes(64));
	RETURN new_kid;
END
$$;
COMMENT ON FUNCTION saas.rotate_signing_key() IS
	'Adds a new signing key (the one that signs from now on) and returns its kid. Older keys keep verifying until retired.';

CREATE FUNCTION saas.retire_signing_key(kid text) RETURNS void LANGUAGE plpgsql
	SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	-- Read first: Citus refuses a volatile function in an UPDATE of a distributed or reference table.
	now_ts timestamptz := pg_catalog.clock_timestamp();
BEGIN
	IF NOT EXISTS (SELECT 1 FROM saas._signing_keys k WHERE k.kid = retire_signing_key.kid AND k.retired_at IS NULL) THEN
		RAISE EXCEPTION 'no active signing key with kid "%"', kid USING ERRCODE = 'SA404';
	END IF;
	IF (SELECT pg_catalog.count(*) FROM saas._signing_keys k WHERE k.retired_at IS NULL) <= 1 THEN
		RAISE EXCEPTION 'cannot retire the last active signing key'
			USING ERRCODE = 'SA409', HINT = 'Run saas.rotate_signing_key() first.';
	END IF;
	UPDATE saas._signing_keys k SET retired_at = now_ts WHERE k.kid = retire_signing_key.kid;
END
$$;
COMMENT ON FUNCTION saas.retire_signing_key(text) IS
	'Retires a signing key: tokens signed with it stop verifying at once.';
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
-- Part 35: rate limits per subscription tier and scope. The counters live in
-- shared memory (GCRA); this table says how fast each kind of caller may go.
-- Scopes: user (authenticated calls, per user, by the organization's tier),
-- auth_ip and auth_email (/auth/*, per client address and per email),
-- webhook (per sending service). Tier '*' is the fallback for any tier.

CREATE TABLE saas.rate_limits (
	tier				text	NOT NULL,
	scope				text	NOT NULL,
	requests_per_minute	integer	NOT NULL,
	burst				integer	NOT NULL,
	CONSTRAINT rate_limits_pkey PRIMARY KEY (tier, scope),
	CONSTRAINT rate_limits_scope_check CHECK (scope IN ('user', 'auth_ip', 'auth_email', 'webhook')),
	CONSTRAINT rate_limits_rate_check CHECK (requests_per_minute BETWEEN 1 AND 100000000),
	CONSTRAINT rate_limits_burst_check CHECK (burst BETWEEN 1 AND 1000000)
);
COMMENT ON TABLE saas.rate_limits IS
	'Requests per minute and burst per subscription tier and scope (tier * = any); read by saas.http, cached per backend.';
ALTER TABLE saas.rate_limits ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas.rate_limits FORCE ROW LEVEL SECURITY;
CREATE POLICY rate_limits_owner ON saas.rate_limits USING (true);

INSERT INTO saas.rate_limits (tier, scope, requests_per_minute, burst) VALUES
	('free', 'user', 600, 60),
	('starter', 'user', 1200, 120),
	('professional', 'user', 3000, 300),
	('enterprise', 'user', 12000, 1000),
	('*', 'auth_ip', 60, 20),
	('*', 'auth_email', 10, 10),
	('*', 'webhook', 120000, 10000);
SELECT pg_catalog.pg_extension_config_dump('saas.rate_limits', '');

CREATE TRIGGER rate_limits_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON saas.rate_limits
	FOR EACH STATEMENT EXECUTE FUNCTION saas._signing_keys_changed();

CREATE FUNCTION saas.rate_limit_check(scope text, key text, requests_per_minute integer, burst integer,
									  OUT allowed boolean, OUT "limit" integer, OUT remaining integer,
									  OUT reset_s integer, OUT retry_after_s integer)
	AS 'MODULE_PATHNAME', 'saas_rate_limit_check' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION saas.rate_limit_check(text, text, integer, integer) IS
	'Counts one request against scope:key in the shared GCRA limiter (owner only: it spends that key''s budget).';
CREATE FUNCTION saas._rate_limit_bench(n integer) RETURNS double precision
	AS 'MODULE_PATHNAME', 'saas_rate_limit_bench' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION saas._rate_limit_bench(integer) IS 'Nanoseconds per rate-limit check over n checks (benchmark, private).';
-- Part 40: the audit log. A C trigger on every tenant table records, in the
-- same transaction, who changed what: actor, role, action, entity and id, the
-- fields before and after, the request id and the time. The log is
-- append-only for every role but a superuser, and each organization's
-- entries form a SHA-256 hash chain that saas.audit_verify() recomputes.
-- No foreign key ties the log to organizations: it outlives a deleted tenant.

CREATE TABLE saas.audit_log (
	org_id		uuid		NOT NULL,
	seq			bigint		NOT NULL,
	id			uuid		NOT NULL DEFAULT saas.uuid_generate_v7(),
	occurred_at	timestamptz	NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	actor_id	uuid,
	actor_role	text,
	action		text		NOT NULL,
	entity		text		NOT NULL,
	entity_id	uuid,
	changes		jsonb		NOT NULL DEFAULT '{}',
	request_id	text,
	prev_hash	bytea		NOT NULL,
	hash		bytea		NOT NULL,
	CONSTRAINT audit_log_pkey PRIMARY KEY (org_id, seq)
);
-- No CHECK constraints and no second index, on purpose: only saas._audit()
-- writes here (the guard triggers see to that), and every insert would pay
-- for them (a CHECK is re-read from the catalog for each statement).
-- saas.audit_verify() checks what a CHECK would, and more.
COMMENT ON TABLE saas.audit_log IS
	'Audit log of changes to tenant tables, recorded by the saas._audit() trigger and written when the changing transaction commits, as part of it. Append-only; hash-chained per organization (saas.audit_verify).';
COMMENT ON COLUMN saas.audit_log.org_id IS 'Organization whose row changed; one hash chain per organization.';
COMMENT ON COLUMN saas.audit_log.seq IS 'Position in the organization''s chain: 1, 2, 3, ... without gaps, in commit order.';
COMMENT ON COLUMN saas.audit_log.id IS 'Entry id (UUIDv7).';
COMMENT ON COLUMN saas.audit_log.occurred_at IS 'When the change was made (clock time). seq is commit order, so concurrent transactions may interleave times.';
COMMENT ON COLUMN saas.audit_log.actor_id IS 'User of the verified tenant context that made the change; NULL without one (e.g. a superuser''s direct SQL).';
COMMENT ON COLUMN saas.audit_log.actor_role IS 'Application role of the actor (super_admin, admin, user); NULL without a context.';
COMMENT ON COLUMN saas.audit_log.action IS 'create, update or delete.';
COMMENT ON COLUMN saas.audit_log.entity IS 'Kind of row that changed (organization, user, ...).';
COMMENT ON COLUMN saas.audit_log.entity_id IS 'id of the row that changed.';
COMMENT ON COLUMN saas.audit_log.changes IS
	'create: the new row; delete: the old row; update: {"field":{"old":..,"new":..}} of the changed fields only. Secrets and password hashes are never recorded.';
COMMENT ON COLUMN saas.audit_log.request_id IS 'The saas.request_id setting of the transaction (the HTTP X-Request-Id), when set.';
COMMENT ON COLUMN saas.audit_log.prev_hash IS 'hash of the previous entry of the chain (32 zero bytes for seq 1).';
COMMENT ON COLUMN saas.audit_log.hash IS 'SHA-256 over prev_hash and a canonical serialization of this entry''s other columns.';

-- The end of each organization's chain, moved by every transaction that
-- appends to it (at commit, under the organization's chain lock): seq is
-- gapless, links are exact, and a deleted tail is visible to
-- saas.audit_verify().
CREATE TABLE saas._audit_heads (
	org_id		uuid		NOT NULL,
	last_seq	bigint		NOT NULL,
	last_hash	bytea		NOT NULL,
	CONSTRAINT audit_heads_pkey PRIMARY KEY (org_id),
	CONSTRAINT audit_heads_seq_check CHECK (last_seq >= 0),
	CONSTRAINT audit_heads_hash_check CHECK (pg_catalog.length(last_hash) = 32)
) WITH (fillfactor = 50);	-- room for HOT updates: a head moves with every commit
COMMENT ON TABLE saas._audit_heads IS
	'Last seq and hash of each organization''s audit chain (private). Copy last_hash elsewhere to anchor a chain against a superuser who would rewrite it whole.';

-- The C functions.
CREATE FUNCTION saas._audit() RETURNS trigger
	AS 'MODULE_PATHNAME', 'saas_audit_trigger' LANGUAGE C;
COMMENT ON FUNCTION saas._audit() IS
	'AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW trigger of tenant tables: appends an entry to saas.audit_log. Arguments: entity name [, organization column] (private).';

CREATE FUNCTION saas._audit_guard() RETURNS trigger
	AS 'MODULE_PATHNAME', 'saas_audit_guard' LANGUAGE C;
COMMENT ON FUNCTION saas._audit_guard() IS
	'Append-only rule of the audit tables: refuses UPDATE, DELETE and TRUNCATE, and writes that do not come from saas._audit(), to everyone but a superuser (private).';

CREATE FUNCTION saas.audit_verify(org_id uuid)
	RETURNS TABLE (ok boolean, checked bigint, first_bad_seq bigint, problem text)
	AS 'MODULE_PATHNAME', 'saas_audit_verify' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION saas.audit_verify(uuid) IS
	'Recomputes an organization''s audit hash chain; reports the first edited, deleted or reordered entry, or a cut tail. Admins verify their own organization, super_admins and the owner any.';

CREATE FUNCTION saas.list_audit_logs(params jsonb DEFAULT '{}') RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_list_audit_logs' LANGUAGE C STABLE;
COMMENT ON FUNCTION saas.list_audit_logs(jsonb) IS
	'GET /audit-logs (admin): the organization''s audit entries, newest first; {limit, cursor, entity, action, since}.';

-- Append-only, whatever the privileges: even the table's owner is refused
-- unless it is a superuser. Entries are inserted, and heads moved, only by
-- saas._audit() itself (the 'append' triggers check that).
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON saas.audit_log
	FOR EACH ROW EXECUTE FUNCTION saas._audit_guard();
COMMENT ON TRIGGER audit_log_append_only ON saas.audit_log IS 'Audit entries are never updated or deleted (superuser excepted).';
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON saas.audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION saas._audit_guard();
COMMENT ON TRIGGER audit_log_no_truncate ON saas.audit_log IS 'The audit log is never truncated (superuser excepted).';
CREATE TRIGGER audit_log_writer BEFORE INSERT ON saas.audit_log
	FOR EACH ROW EXECUTE FUNCTION saas._audit_guard('append');
COMMENT ON TRIGGER audit_log_writer ON saas.audit_log IS 'Entries are inserted by the saas._audit() trigger only (superuser excepted).';
CREATE TRIGGER audit_heads_writer BEFORE INSERT OR UPDATE ON saas._audit_heads
	FOR EACH ROW EXECUTE FUNCTION saas._audit_guard('append');
COMMENT ON TRIGGER audit_heads_writer ON saas._audit_heads IS 'Chain heads are created and moved by the saas._audit() trigger only (superuser excepted).';
CREATE TRIGGER audit_heads_keep BEFORE DELETE ON saas._audit_heads
	FOR EACH ROW EXECUTE FUNCTION saas._audit_guard();
COMMENT ON TRIGGER audit_heads_keep ON saas._audit_heads IS 'Chain heads are never deleted (superuser excepted).';
CREATE TRIGGER audit_heads_no_truncate BEFORE TRUNCATE ON saas._audit_heads
	FOR EACH STATEMENT EXECUTE FUNCTION saas._audit_guard();
COMMENT ON TRIGGER audit_heads_no_truncate ON saas._audit_heads IS 'Chain heads are never truncated (superuser excepted).';

-- The tenant tables. A new tenant table gets the same trigger, with its
-- entity name (and its organization column, if not org_id).
CREATE TRIGGER organizations_audit AFTER INSERT OR UPDATE OR DELETE ON saas.organizations
	FOR EACH ROW EXECUTE FUNCTION saas._audit('organization', 'id');
COMMENT ON TRIGGER organizations_audit ON saas.organizations IS 'Records every change of an organization in its own audit chain.';
CREATE TRIGGER users_audit AFTER INSERT OR UPDATE OR DELETE ON saas.users
	FOR EACH ROW EXECUTE FUNCTION saas._audit('user', 'org_id');
COMMENT ON TRIGGER users_audit ON saas.users IS 'Records every change of a user in its organization''s audit chain.';

-- Row-level security. Readers: admins and super_admins, of the context's
-- organization only. The extension owner (who writes through the trigger and
-- reads to verify) has its own policies, which matter only if it is not a
-- superuser; nobody has an UPDATE or DELETE policy.
ALTER TABLE saas.audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas.audit_log FORCE ROW LEVEL SECURITY;
ALTER TABLE saas._audit_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas._audit_heads FORCE ROW LEVEL SECURITY;

CREATE POLICY audit_log_read ON saas.audit_log FOR SELECT
	USING (org_id OPERATOR(pg_catalog.=) saas.current_org_id()
		   AND saas.current_role() OPERATOR(pg_catalog.=) ANY (ARRAY['admin', 'super_admin']));
COMMENT ON POLICY audit_log_read ON saas.audit_log IS 'Admins and super_admins read their own organization''s entries.';

DO $$
BEGIN
	EXECUTE pg_catalog.format(
		'CREATE POLICY audit_log_owner_read ON saas.audit_log FOR SELECT TO %I USING (true)', current_user);
	EXECUTE pg_catalog.format(
		'CREATE POLICY audit_log_owner_append ON saas.audit_log FOR INSERT TO %I WITH CHECK (true)', current_user);
END
$$;
COMMENT ON POLICY audit_log_owner_read ON saas.audit_log IS 'The extension owner reads every chain (saas.audit_verify).';
COMMENT ON POLICY audit_log_owner_append ON saas.audit_log IS 'The extension owner appends (the saas._audit trigger acts as the owner).';

CREATE POLICY audit_heads_owner ON saas._audit_heads USING (true);
COMMENT ON POLICY audit_heads_owner ON saas._audit_heads IS 'Private table: only the owner holds privileges on it.';

-- saas_api reads (through RLS) and nothing else. Everyone else, nothing
-- (part 90 revokes PUBLIC).
REVOKE ALL ON saas.audit_log, saas._audit_heads FROM PUBLIC;
GRANT SELECT ON saas.audit_log TO saas_api;

SELECT pg_catalog.pg_extension_config_dump('saas.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('saas._audit_heads', '');

CREATE FUNCTION saas._audit_event(org uuid, entity text, entity_id uuid, action text, changes jsonb DEFAULT '{}')
	RETURNS void AS 'MODULE_PATHNAME', 'saas_audit_event' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas._audit_event(uuid, text, uuid, text, jsonb) IS
	'Records an audit entry that is not a row change (password_change, logout, logout_all), without secrets (private).';

-- On Citus an organization's chain is written only on the node of its
-- shards (src/audit/audit_chain.c). saas._audit_event called on another
-- node (the coordinator: a logout) inserts the entry here instead; the
-- insert is routed by org_id to that node, where this trigger records the
-- entry (with the context and request id that travel with the transaction)
-- and skips the row: the table stays empty. Owner only, like the log.
CREATE TABLE saas._audit_outbox (
	org_id		uuid		NOT NULL,
	entity		text		NOT NULL,
	entity_id	uuid,
	action		text		NOT NULL,
	changes		jsonb		NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE saas._audit_outbox IS
	'Audit events that are not row changes, on their way to the node of their organization''s chain (Citus); always empty (private).';
CREATE FUNCTION saas._audit_outbox_record() RETURNS trigger LANGUAGE plpgsql
	SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
BEGIN
	PERFORM saas._audit_event(NEW.org_id, NEW.entity, NEW.entity_id, NEW.action, NEW.changes);
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION saas._audit_outbox_record() IS 'Records an audit event where its organization''s chain is written (private).';
CREATE TRIGGER audit_outbox_record BEFORE INSERT ON saas._audit_outbox
	FOR EACH ROW EXECUTE FUNCTION saas._audit_outbox_record();
ALTER TABLE saas._audit_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas._audit_outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_outbox_owner ON saas._audit_outbox USING (true);
REVOKE ALL ON saas._audit_outbox FROM PUBLIC;
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
-- Part 60: integrations. The external services (seeded from the reference
-- integration_config.json, base URLs pointing at saas-sim), ingested webhook
-- events (idempotent by service and event id, applied by the worker), the
-- job queue of outbound calls, and the state the events change.

CREATE TABLE saas.integrations (
	service						text		NOT NULL,
	ref_key						text		NOT NULL,
	name						text		NOT NULL,
	base_url					text		NOT NULL,
	webhook_secret				text		NOT NULL,
	event_types					text[]		NOT NULL,
	max_retries					integer		NOT NULL,
	backoff_multiplier			float8		NOT NULL,
	base_backoff_ms				integer		NOT NULL DEFAULT 500,
	max_backoff_seconds			integer		NOT NULL,
	timeout_ms					integer		NOT NULL DEFAULT 5000,
	max_in_flight				integer		NOT NULL DEFAULT 32,
	breaker_failure_rate		float8		NOT NULL DEFAULT 0.5,
	breaker_min_volume			integer		NOT NULL DEFAULT 10,
	breaker_window_seconds		integer		NOT NULL DEFAULT 30,
	breaker_reset_seconds		integer		NOT NULL DEFAULT 10,
	breaker_half_open_probes	integer		NOT NULL DEFAULT 3,
	requests_per_minute			integer		NOT NULL,
	burst_limit					integer		NOT NULL,
	sync_interval_seconds		integer		NOT NULL DEFAULT 300,
	retry_window_seconds		integer		NOT NULL DEFAULT 259200,
	breaker_consecutive_failures integer	NOT NULL DEFAULT 5,
	breaker_slow_call_ms		integer		NOT NULL DEFAULT 0,
	enabled						boolean		NOT NULL DEFAULT true,
	CONSTRAINT integrations_pkey PRIMARY KEY (service),
	CONSTRAINT integrations_ref_key_key UNIQUE (ref_key),
	-- The services the C code keeps shared memory slots for (src/common/services.c);
	-- every other column that names a service references this table.
	CONSTRAINT integrations_service_check CHECK (service IN ('user-service', 'payment-service', 'communication-service')),
	CONSTRAINT integrations_secret_check CHECK (webhook_secret LIKE 'whsec\_%'),
	CONSTRAINT integrations_retry_check CHECK (max_retries BETWEEN 0 AND 100 AND backoff_multiplier >= 1
		AND base_backoff_ms BETWEEN 1 AND 600000 AND max_backoff_seconds BETWEEN 1 AND 86400),
	CONSTRAINT integrations_breaker_check CHECK (breaker_failure_rate > 0 AND breaker_failure_rate <= 1
		AND breaker_min_volume >= 1 AND breaker_window_seconds >= 1 AND breaker_reset_seconds >= 1
		AND breaker_half_open_probes >= 1),
	CONSTRAINT integrations_limits_check CHECK (timeout_ms BETWEEN 10 AND 600000 AND max_in_flight BETWEEN 1 AND 1024),
	CONSTRAINT integrations_resilience_check CHECK (retry_window_seconds BETWEEN 0 AND 2592000
		AND breaker_consecutive_failures >= 1 AND breaker_slow_call_ms >= 0)
);
COMMENT ON TABLE saas.integrations IS
	'External services: base URL, webhook secret (Standard Webhooks whsec_...), retry policy, circuit breaker and rate limit. Owner only: holds secrets.';
COMMENT ON COLUMN saas.integrations.ref_key IS 'Key of the service in organizations.external_ids and users.external_user_ids.';
COMMENT ON COLUMN saas.integrations.retry_window_seconds IS
	'A failing job is retried until both its attempts are spent and this long has passed since it was enqueued (default 3 days).';
COMMENT ON COLUMN saas.integrations.breaker_consecutive_failures IS
	'The circuit also opens after this many failures in a row, whatever the volume.';
COMMENT ON COLUMN saas.integrations.breaker_slow_call_ms IS
	'A call that succeeds but takes longer counts as a failure for the breaker (0: off).';
ALTER TABLE saas.integrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas.integrations FORCE ROW LEVEL SECURITY;
CREATE POLICY integrations_owner ON saas.integrations USING (true);
CREATE TRIGGER integrations_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON saas.integrations
	FOR EACH STATEMENT EXECUTE FUNCTION saas._signing_keys_changed();

-- Defaults from integration_config.json; secrets are whsec_ + base64(secret_key).
INSERT INTO saas.integrations (service, ref_key, name, base_url, webhook_secret, event_types,
							   max_retries, backoff_multiplier, max_backoff_seconds, requests_per_minute, burst_limit)
VALUES
	('user-service', 'user_service', 'User Management Service', 'http://127.0.0.1:4001/v1',
	 'whsec_' || pg_catalog.encode(pg_catalog.convert_to('user_webhook_secret_123', 'UTF8'), 'base64'),
	 '{user.created,user.updated,user.deleted,user.activated,user.deactivated}', 3, 2, 300, 100, 20),
	('payment-service', 'payment_service', 'Payment Processor', 'http://127.0.0.1:4002/v2',
	 'whsec_' || pg_catalog.encode(pg_catalog.convert_to('payment_webhook_secret_456', 'UTF8'), 'base64'),
	 '{subscription.created,subscription.updated,subscription.canceled,payment.succeeded,payment.failed,invoice.created}', 5, 1.5, 600, 60, 10),
	('communication-service', 'communication_service', 'Email & Notification Service', 'http://127.0.0.1:4003/v1',
	 'whsec_' || pg_catalog.encode(pg_catalog.convert_to('email_webhook_secret_789', 'UTF8'), 'base64'),
	 '{message.sent,message.delivered,message.bounced,message.clicked,message.opened}', 2, 2, 120, 200, 50);
SELECT pg_catalog.pg_extension_config_dump('saas.integrations', '');

-- Organizations are found by their reference at each service.
CREATE INDEX organizations_ref_user_idx ON saas.organizations ((external_ids ->> 'user_service'));
CREATE INDEX organizations_ref_payment_idx ON saas.organizations ((external_ids ->> 'payment_service'));
CREATE INDEX organizations_ref_comm_idx ON saas.organizations ((external_ids ->> 'communication_service'));
CREATE INDEX users_ref_user_idx ON saas.users (org_id, (external_user_ids ->> 'user_service'));

-- Ingested events: the primary key is the idempotency key (per organization,
-- Citus-ready). The worker applies them in timestamp order per entity.
CREATE TABLE saas.webhook_events (
	org_id			uuid		NOT NULL,
	service			text		NOT NULL,
	event_id		text		NOT NULL,
	event_type		text		NOT NULL,
	occurred_at		timestamptz	NOT NULL,
	entity_ref		text,
	payload			jsonb		NOT NULL,
	received_at		timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	applied_at		timestamptz,
	apply_result	text,
	CONSTRAINT webhook_events_pkey PRIMARY KEY (org_id, service, event_id),
	CONSTRAINT webhook_events_org_fkey FOREIGN KEY (org_id) REFERENCES saas.organizations (id) ON DELETE CASCADE
);
CREATE INDEX webhook_events_pending_idx ON saas.webhook_events (received_at) WHERE applied_at IS NULL;
COMMENT ON TABLE saas.webhook_events IS
	'Webhook events accepted from the external services, once each by (service, event_id); applied_at is set when the worker has applied them.';

-- What the payment and communication services tell us.
CREATE TABLE saas.subscriptions (
	org_id			uuid		NOT NULL,
	subscription_ref text		NOT NULL,
	customer_ref	text,
	plan			text,
	status			text		NOT NULL,
	billing_status	text,
	amount			numeric,
	currency		text,
	last_event_at	timestamptz	NOT NULL,
	updated_at		timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	details			jsonb		NOT NULL DEFAULT '{}',
	CONSTRAINT subscriptions_pkey PRIMARY KEY (org_id, subscription_ref),
	CONSTRAINT subscriptions_org_fkey FOREIGN KEY (org_id) REFERENCES saas.organizations (id) ON DELETE CASCADE
);
COMMENT ON TABLE saas.subscriptions IS 'Subscription and billing state per organization, from payment-service events.';

CREATE TABLE saas.notifications (
	org_id			uuid		NOT NULL,
	message_ref		text		NOT NULL,
	user_id			uuid,
	kind			text,
	status			text		NOT NULL,
	last_event_at	timestamptz	NOT NULL,
	updated_at		timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	details			jsonb		NOT NULL DEFAULT '{}',
	CONSTRAINT notifications_pkey PRIMARY KEY (org_id, message_ref),
	CONSTRAINT notifications_org_fkey FOREIGN KEY (org_id) REFERENCES saas.organizations (id) ON DELETE CASCADE
);
COMMENT ON TABLE saas.notifications IS 'Messages sent through the communication service and their delivery state.';

-- Per user: the time of the newest applied event, so an older one never overwrites newer state.
CREATE TABLE saas.entity_versions (
	org_id			uuid		NOT NULL,
	service			text		NOT NULL,
	entity_ref		text		NOT NULL,
	last_event_at	timestamptz	NOT NULL,
	CONSTRAINT entity_versions_pkey PRIMARY KEY (org_id, service, entity_ref),
	CONSTRAINT entity_versions_org_fkey FOREIGN KEY (org_id) REFERENCES saas.organizations (id) ON DELETE CASCADE
);
COMMENT ON TABLE saas.entity_versions IS 'Newest event time applied per external entity: older events do not overwrite newer state.';

-- The queue of outbound calls.
CREATE TABLE saas.jobs (
	org_id			uuid		NOT NULL,
	id				uuid		NOT NULL DEFAULT saas.uuid_generate_v7(),
	service			text		NOT NULL,
	kind			text		NOT NULL,
	payload			jsonb		NOT NULL DEFAULT '{}',
	state			text		NOT NULL DEFAULT 'available',
	attempt			integer		NOT NULL DEFAULT 0,
	max_attempts	integer		NOT NULL DEFAULT 4,
	run_at			timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	lease_until		timestamptz,
	lease_owner		bigint,
	last_error		text,
	last_status		integer,
	idempotency_key	text		NOT NULL,
	created_at		timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	updated_at		timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	finished_at		timestamptz,
	CONSTRAINT jobs_pkey PRIMARY KEY (org_id, id),
	CONSTRAINT jobs_idempotency_key UNIQUE (org_id, idempotency_key),
	-- No foreign key to organizations: the calls that clean up after a deleted
	-- organization (70_jobs.sql, organizations_outbound) must outlive its row.
	CONSTRAINT jobs_state_check CHECK (state IN ('available', 'running', 'retryable', 'succeeded', 'dead')),
	CONSTRAINT jobs_service_fkey FOREIGN KEY (service) REFERENCES saas.integrations (service)
);
-- The claim reads one service's due jobs in run_at order.
CREATE INDEX jobs_due_idx ON saas.jobs (service, run_at) WHERE state IN ('available', 'retryable');
-- Fair claims walk the organizations with queued jobs, then each one's due jobs in run_at order.
CREATE INDEX jobs_fair_idx ON saas.jobs (service, org_id, run_at) WHERE state IN ('available', 'retryable');
-- Queue counts of the status and expired leases (state = 'running'); finished jobs leave it,
-- so a job's last update adds no entry here.
CREATE INDEX jobs_state_service_idx ON saas.jobs (state, service) WHERE state <> 'succeeded';
COMMENT ON TABLE saas.jobs IS
	'Outbound calls to external services: claimed by the worker with FOR UPDATE SKIP LOCKED and a lease, retried with backoff, dead after max_attempts and the retry window.';
COMMENT ON COLUMN saas.jobs.lease_owner IS
	'Incarnation of the worker that holds the lease: a restarted worker takes over its predecessor''s running jobs at once.';

-- Sync bookkeeping and breaker history.
CREATE TABLE saas.sync_state (
	org_id			uuid		NOT NULL,
	service			text		NOT NULL,
	last_sync		timestamptz,
	cursor_time		timestamptz,
	CONSTRAINT sync_state_pkey PRIMARY KEY (org_id, service),
	CONSTRAINT sync_state_org_fkey FOREIGN KEY (org_id) REFERENCES saas.organizations (id) ON DELETE CASCADE
);
COMMENT ON TABLE saas.sync_state IS 'Pull sync per organization and service: lastSync moves only when a sync completes.';

CREATE TABLE saas._breaker_events (
	id				bigint		GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	service			text		NOT NULL,
	from_state		text		NOT NULL,
	to_state		text		NOT NULL,
	reason			text,
	at				timestamptz	NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
COMMENT ON TABLE saas._breaker_events IS 'Every circuit breaker transition, recorded by the worker (private).';

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['webhook_events', 'subscriptions', 'notifications', 'entity_versions', 'jobs', 'sync_state'] LOOP
		EXECUTE pg_catalog.format('ALTER TABLE saas.%I ENABLE ROW LEVEL SECURITY', t);
		EXECUTE pg_catalog.format('ALTER TABLE saas.%I FORCE ROW LEVEL SECURITY', t);
		-- Read by admins of the organization; written by the extension's own code (owner).
		EXECUTE pg_catalog.format(
			'CREATE POLICY %I ON saas.%I FOR SELECT USING (org_id OPERATOR(pg_catalog.=) saas.current_org_id() '
			'AND saas.current_role() OPERATOR(pg_catalog.=) ANY (ARRAY[''admin'', ''super_admin'']))',
			t || '_admin_read', t);
		EXECUTE pg_catalog.format('SELECT pg_catalog.pg_extension_config_dump(''saas.%I'', '''')', t);
	END LOOP;
END
$$;
ALTER TABLE saas._breaker_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas._breaker_events FORCE ROW LEVEL SECURITY;
CREATE POLICY breaker_events_owner ON saas._breaker_events USING (true);

GRANT SELECT ON saas.webhook_events, saas.subscriptions, saas.notifications, saas.jobs, saas.sync_state TO saas_api;

CREATE FUNCTION saas.ingest_webhook(service text, headers jsonb, body text) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_ingest_webhook' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.ingest_webhook(text, jsonb, text) IS
	'POST /webhooks/{service}: verifies the Standard Webhooks signature, stores each new event once, reports duplicates and rejections.';
-- Part 65: applying webhook events to internal state. Called by the worker,
-- one event at a time, under a trusted context for the event's organization.
-- An event older (by its timestamp) than the newest one already applied to
-- the same entity changes nothing. Errors are caught and recorded on the
-- event, so one bad event never blocks the queue.

-- saas._user_for_remote: the user a remote user of the user service is:
-- the one linked to its id, else an unlinked user with its email that is a
-- plain user or that this platform created there itself (its create job
-- exists: the event is the echo of our push, arriving before the id was
-- written back), else none. Any other admin's email, or a user linked to
-- another remote user, is a conflict, never a silent link.
-- One statement, locking the row it decides on: the write-back of the id
-- (the create job's success, recorded by another worker process) may commit
-- at any moment, and the decision must see either all of it or none.
CREATE FUNCTION saas._user_for_remote(p_org uuid, p_ref text, p_email text) RETURNS uuid
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	uid uuid;
	linkable boolean;
BEGIN
	SELECT u.id,
		   u.external_user_ids ->> 'user_service' IS NOT DISTINCT FROM p_ref
		   OR (NOT u.external_user_ids ? 'user_service'
			   AND (u.role = 'user' OR EXISTS (SELECT 1 FROM saas.jobs j
												WHERE j.org_id = p_org AND j.idempotency_key = 'user-create:' || u.id)))
	  INTO uid, linkable
	  FROM saas.users u
	 WHERE u.org_id = p_org
	   AND (u.external_user_ids ->> 'user_service' = p_ref OR u.email = lower(p_email))
	 ORDER BY u.external_user_ids ->> 'user_service' IS NOT DISTINCT FROM p_ref DESC
	 LIMIT 1
	   FOR UPDATE OF u;
	IF uid IS NOT NULL AND NOT linkable THEN
		PERFORM saas._rule_refuse('409', 'the email belongs to a user that is an admin or linked to another remote user');
	END IF;
	RETURN uid;
END
$$;
COMMENT ON FUNCTION saas._user_for_remote(uuid, text, text) IS
	'The local user of a remote user-service user: linked by id, or a linkable plain user by email; a conflict otherwise (private).';

CREATE FUNCTION saas._apply_event(p_org uuid, p_service text, p_event text) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	ev saas.webhook_events;
	d jsonb;
	newer timestamptz;
	uid uuid;
	result text := 'applied';
	ch jsonb;
	ext jsonb;
BEGIN
	SELECT * INTO ev FROM saas.webhook_events
	 WHERE org_id = p_org AND service = p_service AND event_id = p_event FOR UPDATE;
	IF NOT FOUND OR ev.applied_at IS NOT NULL THEN
		RETURN 'skipped';
	END IF;
	d := ev.payload -> 'data';

	BEGIN
		IF ev.entity_ref IS NOT NULL THEN
			SELECT last_event_at INTO newer FROM saas.entity_versions
			 WHERE org_id = p_org AND service = p_service AND entity_ref = ev.entity_ref FOR UPDATE;
			IF newer IS NOT NULL AND newer > ev.occurred_at THEN
				UPDATE saas.webhook_events SET applied_at = now(), apply_result = 'stale: newer state already applied'
				 WHERE org_id = p_org AND service = p_service AND event_id = p_event;
				RETURN 'stale';
			END IF;
		END IF;

		CASE ev.event_type
		WHEN 'user.created' THEN
			uid := saas._user_for_remote(p_org, d ->> 'user_id', d ->> 'email');
			-- On Citus the directory entries are written first (23_directory.sql).
			IF uid IS NULL THEN
				uid := saas.uuid_generate_v7();
				PERFORM saas._dir_set(p_org, uid, d ->> 'email', jsonb_build_object('user_service', d ->> 'user_id'));
				INSERT INTO saas.users (org_id, id, email, first_name, last_name, role, status, external_user_ids)
				VALUES (p_org, uid, lower(d ->> 'email'), coalesce(d ->> 'first_name', '-'), coalesce(d ->> 'last_name', '-'),
						'user', CASE WHEN d ->> 'status' IN ('active', 'inactive', 'suspended') THEN d ->> 'status' ELSE 'active' END,
						jsonb_build_object('user_service', d ->> 'user_id'));
			ELSE
				SELECT u.external_user_ids || jsonb_build_object('user_service', d ->> 'user_id') INTO ext
				  FROM saas.users u WHERE u.org_id = p_org AND u.id = uid;
				PERFORM saas._dir_set(p_org, uid, NULL, ext);
				UPDATE saas.users SET
					external_user_ids = external_user_ids || jsonb_build_object('user_service', d ->> 'user_id'),
					first_name = coalesce(d ->> 'first_name', first_name),
					last_name = coalesce(d ->> 'last_name', last_name)
				 WHERE org_id = p_org AND id = uid;
			END IF;
		WHEN 'user.updated' THEN
			-- The service sends data.changes (and data.previous_values); a flat
			-- data is read the same way.
			ch := CASE WHEN pg_catalog.jsonb_typeof(d -> 'changes') = 'object' THEN d -> 'changes' ELSE d END;
			IF ch ->> 'email' IS NOT NULL THEN
				SELECT u.id INTO uid FROM saas.users u
				 WHERE u.org_id = p_org AND u.external_user_ids ->> 'user_service' = d ->> 'user_id' FOR UPDATE;
				IF FOUND THEN
					PERFORM saas._dir_set(p_org, uid, ch ->> 'email', NULL);
				END IF;
			END IF;
			UPDATE saas.users SET
				first_name = coalesce(ch ->> 'first_name', first_name),
				last_name = coalesce(ch ->> 'last_name', last_name),
				email = coalesce(lower(ch ->> 'email'), email),
				status = CASE WHEN ch ->> 'status' IN ('active', 'inactive', 'suspended') THEN ch ->> 'status' ELSE status END
			 WHERE org_id = p_org AND external_user_ids ->> 'user_service' = d ->> 'user_id';
			IF NOT FOUND THEN result := 'ignored: unknown user'; END IF;
		WHEN 'user.deleted' THEN
			SELECT u.id INTO uid FROM saas.users u
			 WHERE u.org_id = p_org AND u.external_user_ids ->> 'user_service' = d ->> 'user_id'
			   AND u.role <> 'super_admin' FOR UPDATE;
			IF FOUND THEN
				PERFORM saas._dir_drop(p_org, uid);
			END IF;
			DELETE FROM saas.users WHERE org_id = p_org AND external_user_ids ->> 'user_service' = d ->> 'user_id'
			   AND role <> 'super_admin';
			IF NOT FOUND THEN result := 'ignored: unknown user'; END IF;
		WHEN 'user.activated', 'user.deactivated' THEN
			UPDATE saas.users SET status = CASE WHEN ev.event_type = 'user.activated' THEN 'active' ELSE 'inactive' END
			 WHERE org_id = p_org AND external_user_ids ->> 'user_service' = d ->> 'user_id';
			IF NOT FOUND THEN result := 'ignored: unknown user'; END IF;
		WHEN 'subscription.created', 'subscription.updated', 'subscription.canceled' THEN
			-- subscription.updated says what changed in data.changes (and what it
			-- was in data.previous_values), beside the current status: the state
			-- is data with the changes laid over it.
			IF pg_catalog.jsonb_typeof(d -> 'changes') = 'object' THEN
				d := (d - '{changes,previous_values}'::text[]) || (d -> 'changes');
			END IF;
			INSERT INTO saas.subscriptions (org_id, subscription_ref, customer_ref, plan, status, amount, currency, last_event_at, details)
			VALUES (p_org, d ->> 'subscription_id', d ->> 'customer_id', d ->> 'plan',
					CASE WHEN ev.event_type = 'subscription.canceled' THEN 'canceled' ELSE coalesce(d ->> 'status', 'active') END,
					(d ->> 'amount')::numeric, d ->> 'currency', ev.occurred_at, d)
			ON CONFLICT (org_id, subscription_ref) DO UPDATE SET
				customer_ref = coalesce(EXCLUDED.customer_ref, saas.subscriptions.customer_ref),
				plan = coalesce(EXCLUDED.plan, saas.subscriptions.plan),
				status = EXCLUDED.status,
				amount = coalesce(EXCLUDED.amount, saas.subscriptions.amount),
				currency = coalesce(EXCLUDED.currency, saas.subscriptions.currency),
				last_event_at = EXCLUDED.last_event_at, updated_at = EXCLUDED.updated_at,
				details = saas.subscriptions.details || EXCLUDED.details;
			IF ev.event_type <> 'subscription.canceled' AND d ->> 'plan' IN ('free', 'starter', 'professional', 'enterprise') THEN
				UPDATE saas.organizations SET subscription_tier = d ->> 'plan'
				 WHERE id = p_org AND subscription_tier IS DISTINCT FROM d ->> 'plan';
			END IF;
		WHEN 'payment.succeeded', 'payment.failed', 'invoice.created' THEN
			UPDATE saas.subscriptions SET
				-- (searched CASEs: Citus deparses a simple CASE over a parameter wrongly,
				-- "operator does not exist: text = boolean")
				billing_status = CASE WHEN ev.event_type = 'payment.succeeded' THEN 'paid'
							WHEN ev.event_type = 'payment.failed' THEN 'past_due' ELSE 'invoiced' END,
				last_event_at = greatest(last_event_at, ev.occurred_at), updated_at = now(),
				details = details || jsonb_build_object(replace(ev.event_type, '.', '_'), d)
			 WHERE org_id = p_org
			   AND subscription_ref = coalesce(d ->> 'subscription_id',
					(SELECT s.subscription_ref FROM saas.subscriptions s WHERE s.org_id = p_org
					  ORDER BY s.last_event_at DESC LIMIT 1));
			IF NOT FOUND THEN result := 'ignored: no subscription'; END IF;
		WHEN 'message.sent', 'message.delivered', 'message.bounced', 'message.opened', 'message.clicked' THEN
			INSERT INTO saas.notifications (org_id, message_ref, kind, status, last_event_at, details)
			VALUES (p_org, d ->> 'message_id', d ->> 'template', split_part(ev.event_type, '.', 2), ev.occurred_at, d)
			ON CONFLICT (org_id, message_ref) DO UPDATE SET
				status = EXCLUDED.status, last_event_at = EXCLUDED.last_event_at, updated_at = EXCLUDED.updated_at,
				details = saas.notifications.details || EXCLUDED.details;
		ELSE
			result := 'ignored: unknown event type';
		END CASE;

		-- The entity's version moves only when the event changed something, or
		-- for a deletion (a tombstone: a late creation must not resurrect it).
		IF ev.entity_ref IS NOT NULL
		   AND (result = 'applied' OR ev.event_type IN ('user.deleted', 'subscription.canceled')) THEN
			INSERT INTO saas.entity_versions (org_id, service, entity_ref, last_event_at)
			VALUES (p_org, p_service, ev.entity_ref, ev.occurred_at)
			ON CONFLICT (org_id, service, entity_ref) DO UPDATE SET last_event_at = EXCLUDED.last_event_at;
		END IF;
		-- Newer events about this entity that arrived before it existed are applied again now.
		IF result = 'applied' AND ev.entity_ref IS NOT NULL
		   AND ev.event_type IN ('user.created', 'subscription.created') THEN
			UPDATE saas.webhook_events w SET applied_at = NULL, apply_result = NULL
			 WHERE w.org_id = p_org AND w.service = p_service AND w.entity_ref = ev.entity_ref
			   AND w.occurred_at > ev.occurred_at AND w.apply_result LIKE 'ignored: unknown%';
		END IF;
		IF result = 'applied' AND ev.event_type = 'subscription.created' THEN
			UPDATE saas.webhook_events w SET applied_at = NULL, apply_result = NULL
			 WHERE w.org_id = p_org AND w.service = p_service
			   AND w.apply_result = 'ignored: no subscription' AND w.occurred_at > ev.occurred_at;
		END IF;
	EXCEPTION WHEN OTHERS THEN
		-- What the rules refuse (SA4xx, constraints) is rejected for good, with
		-- the reason; anything else is a failure.
		IF SQLSTATE LIKE 'SA4%' OR SQLSTATE LIKE '23%' THEN
			result := 'rejected: ' || SQLERRM;
		ELSE
			result := 'failed: ' || SQLERRM;
		END IF;
	END;

	UPDATE saas.webhook_events SET applied_at = now(), apply_result = result
	 WHERE org_id = p_org AND service = p_service AND event_id = p_event;
	RETURN result;
END
$$;
COMMENT ON FUNCTION saas._apply_event(uuid, text, text) IS
	'Applies one ingested webhook event to internal state (users, subscriptions, notifications); called by the worker (private).';

-- Pull sync: one page of the user service's users for an organization.
-- Returns the newest last_updated seen, for the next sync's cursor.
CREATE FUNCTION saas._sync_users(p_org uuid, p_page jsonb) RETURNS timestamptz
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	u jsonb;
	uid uuid;
	newest timestamptz;
	st text;
	cur saas.users;
BEGIN
	FOR u IN SELECT * FROM jsonb_array_elements(coalesce(p_page -> 'data' -> 'users', p_page -> 'users', '[]')) LOOP
		BEGIN
			st := CASE WHEN u ->> 'status' IN ('active', 'inactive', 'suspended') THEN u ->> 'status' ELSE 'active' END;
			uid := saas._user_for_remote(p_org, u ->> 'user_id', u ->> 'email');
			-- On Citus the directory entries are written first (23_directory.sql).
			IF uid IS NULL THEN
				uid := saas.uuid_generate_v7();
				PERFORM saas._dir_set(p_org, uid, u ->> 'email', jsonb_build_object('user_service', u ->> 'user_id'));
				INSERT INTO saas.users (org_id, id, email, first_name, last_name, role, status, external_user_ids)
				VALUES (p_org, uid, lower(u ->> 'email'), coalesce(u ->> 'first_name', '-'), coalesce(u ->> 'last_name', '-'),
						'user', st, jsonb_build_object('user_service', u ->> 'user_id'));
			ELSE
				SELECT * INTO cur FROM saas.users x WHERE x.org_id = p_org AND x.id = uid;
				IF (cur.external_user_ids ->> 'user_service', cur.email)
				   IS DISTINCT FROM (u ->> 'user_id', coalesce(lower(u ->> 'email'), cur.email)) THEN
					PERFORM saas._dir_set(p_org, uid, coalesce(lower(u ->> 'email'), cur.email),
										  cur.external_user_ids || jsonb_build_object('user_service', u ->> 'user_id'));
				END IF;
				UPDATE saas.users SET
					external_user_ids = external_user_ids || jsonb_build_object('user_service', u ->> 'user_id'),
					email = coalesce(lower(u ->> 'email'), email),
					first_name = coalesce(u ->> 'first_name', first_name),
					last_name = coalesce(u ->> 'last_name', last_name),
					status = CASE WHEN role = 'user' THEN st ELSE status END
				 WHERE org_id = p_org AND id = uid
				   AND (external_user_ids ->> 'user_service', email, first_name, last_name, status)
					   IS DISTINCT FROM (u ->> 'user_id', coalesce(lower(u ->> 'email'), email),
										 coalesce(u ->> 'first_name', first_name), coalesce(u ->> 'last_name', last_name),
										 CASE WHEN role = 'user' THEN st ELSE status END);
			END IF;
			newest := greatest(newest, (u ->> 'last_updated')::timestamptz);
		EXCEPTION WHEN OTHERS THEN
			RAISE WARNING 'pg_saas sync: user % of organization % not applied: %', u ->> 'user_id', p_org, SQLERRM;
		END;
	END LOOP;
	RETURN newest;
END
$$;
COMMENT ON FUNCTION saas._sync_users(uuid, jsonb) IS 'Upserts one page of users read from the user service (pull sync, private).';

CREATE FUNCTION saas._sync_done(p_org uuid, p_service text, p_cursor timestamptz) RETURNS void
	LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
	INSERT INTO saas.sync_state (org_id, service, last_sync, cursor_time)
	VALUES (p_org, p_service, pg_catalog.now(), p_cursor)
	ON CONFLICT (org_id, service) DO UPDATE
	   SET last_sync = EXCLUDED.last_sync,
		   cursor_time = coalesce(EXCLUDED.cursor_time, saas.sync_state.cursor_time)
$$;
COMMENT ON FUNCTION saas._sync_done(uuid, text, timestamptz) IS 'Marks a completed pull sync: lastSync moves only here (private).';
-- Part 70: the job queue's API, integration status, and the outbound flows
-- that enqueue jobs when users and organizations change through the API.

CREATE FUNCTION saas._breaker_status(OUT service text, OUT circuit text, OUT calls_1m integer,
	OUT failures_1m integer, OUT last_error text, OUT p50_ms integer, OUT p95_ms integer,
	OUT last_success timestamptz, OUT last_failure timestamptz, OUT worker_running boolean)
	RETURNS SETOF record AS 'MODULE_PATHNAME', 'saas_breaker_status' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas._breaker_status() IS 'Circuit breakers'' shared state per service (private).';

CREATE FUNCTION saas._in_sync() RETURNS boolean
	AS 'MODULE_PATHNAME', 'saas_in_sync' LANGUAGE C STABLE;
COMMENT ON FUNCTION saas._in_sync() IS 'True while the worker applies changes that came from a service (so they are not pushed back).';
CREATE FUNCTION saas._worker_incarnations() RETURNS bigint[]
	AS 'MODULE_PATHNAME', 'saas_worker_incarnations' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas._worker_incarnations() IS 'Lease owners of the worker processes alive now: a starting worker process takes over the running jobs of any other.';

-- Status per service: OK, DEGRADED (recent failures or dead jobs), RETRYING
-- (jobs waiting to be retried, or probing), DOWN (circuit open).
CREATE FUNCTION saas._integration_status_rows(p_org uuid)
	RETURNS TABLE (service text, status text, last_sync timestamptz, circuit text, queued bigint,
				   retrying bigint, dead bigint, last_error text, p50_ms integer, p95_ms integer)
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
BEGIN
	-- One aggregate per table, joined to the services after: on Citus each is a plain
	-- query on the shards (routed to one when p_org is given). EXECUTE plans it with p_org
	-- bound, which Citus needs (it cannot plan a parameter it does not know).
	RETURN QUERY EXECUTE $q$
	WITH q AS (
		SELECT j.service,
			   count(*) FILTER (WHERE j.state IN ('available', 'running')) AS queued,
			   count(*) FILTER (WHERE j.state = 'retryable') AS retrying,
			   count(*) FILTER (WHERE j.state = 'dead') AS dead
		  FROM saas.jobs j
		 WHERE j.state <> 'succeeded' AND ($1 IS NULL OR j.org_id = $1)
		 GROUP BY j.service),
	s AS (
		SELECT x.service, max(x.last_sync) AS last_sync
		  FROM saas.sync_state x
		 WHERE $1 IS NULL OR x.org_id = $1
		 GROUP BY x.service),
	e AS (
		-- the live queue only (a succeeded job has no error)
		SELECT DISTINCT ON (j.service) j.service, j.last_error
		  FROM saas.jobs j
		 WHERE $1 IS NOT NULL AND j.org_id = $1 AND j.last_error IS NOT NULL AND j.state <> 'succeeded'
		 ORDER BY j.service, j.updated_at DESC)
	SELECT i.service,
		   CASE WHEN b.circuit = 'open' THEN 'DOWN'
				WHEN b.circuit = 'half_open' OR coalesce(q.retrying, 0) > 0 THEN 'RETRYING'
				WHEN coalesce(b.failures_1m, 0) > 0 OR coalesce(q.dead, 0) > 0 THEN 'DEGRADED'
				ELSE 'OK' END,
		   s.last_sync,
		   coalesce(b.circuit, 'closed'),
		   coalesce(q.queued, 0), coalesce(q.retrying, 0), coalesce(q.dead, 0),
		   CASE WHEN $1 IS NULL THEN b.last_error ELSE e.last_error END,
		   coalesce(b.p50_ms, 0), coalesce(b.p95_ms, 0)
	  FROM saas.integrations i
	  LEFT JOIN saas._breaker_status() b ON b.service = i.service
	  LEFT JOIN q ON q.service = i.service
	  LEFT JOIN s ON s.service = i.service
	  LEFT JOIN e ON e.service = i.service
	$q$ USING p_org;
END
$$;
COMMENT ON FUNCTION saas._integration_status_rows(uuid) IS 'Integration status per service; queue counts of one organization, or of all when NULL (private).';

-- worker: whether the background worker serves this database (saas.database); elsewhere jobs wait.
CREATE VIEW saas.integration_status AS
	SELECT s.*, CASE WHEN pg_catalog.current_setting('saas.database', true) IS NOT DISTINCT FROM pg_catalog.current_database()
					 THEN 'serves this database'
					 ELSE 'NOT SERVED: the worker serves database ' || coalesce(pg_catalog.current_setting('saas.database', true), '(none)') END AS worker
	  FROM saas._integration_status_rows(NULL) s;
COMMENT ON VIEW saas.integration_status IS
	'Health of each external service for operators: status (OK, DEGRADED, RETRYING, DOWN), last sync, circuit, queue counts, last error, latency.';

-- GET /integrations/status: admins see their organization's queue, super_admin all.
CREATE FUNCTION saas.integration_status_json() RETURNS jsonb
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	r record;
	out jsonb := '{}';
	scope uuid;
BEGIN
	IF saas.current_role() IS NULL THEN
		RAISE EXCEPTION 'authentication required' USING ERRCODE = 'SA401';
	ELSIF saas.current_role() NOT IN ('admin', 'super_admin') THEN
		RAISE EXCEPTION 'role "%" may not read integration status', saas.current_role() USING ERRCODE = 'SA403';
	END IF;
	scope := CASE WHEN saas.current_role() = 'super_admin' THEN NULL ELSE saas.current_org_id() END;
	FOR r IN SELECT * FROM saas._integration_status_rows(scope) LOOP
		out := out || jsonb_build_object(
			CASE r.service WHEN 'user-service' THEN 'userService' WHEN 'payment-service' THEN 'paymentService'
				ELSE 'communicationService' END,
			jsonb_build_object('status', r.status,
				'lastSync', to_char(r.last_sync AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
				'circuit', r.circuit, 'queued', r.queued, 'retrying', r.retrying, 'dead', r.dead,
				'lastError', r.last_error, 'latencyMs', jsonb_build_object('p50', r.p50_ms, 'p95', r.p95_ms)));
	END LOOP;
	RETURN out;
END
$$;
COMMENT ON FUNCTION saas.integration_status_json() IS 'GET /integrations/status: the status document (admin: own queue counts; super_admin: all).';

-- Revive a dead job (admin of its organization, or the owner).
CREATE FUNCTION saas.retry_job(id uuid) RETURNS jsonb
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	j saas.jobs;
	owner_call boolean := saas.current_role() IS NULL
		AND pg_catalog.pg_has_role(session_user, (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_saas'), 'MEMBER');
	scope uuid;
	job_org uuid;
BEGIN
	IF NOT owner_call AND coalesce(saas.current_role(), '') NOT IN ('admin', 'super_admin') THEN
		RAISE EXCEPTION 'only an admin may retry jobs' USING ERRCODE = CASE WHEN saas.current_role() IS NULL THEN 'SA401' ELSE 'SA403' END;
	END IF;
	-- The job's organization first, then the row locked by its key: on Citus (jobs
	-- distributed by org_id) FOR UPDATE runs only routed to one shard.
	scope := CASE WHEN owner_call THEN NULL ELSE saas.current_org_id() END;
	SELECT x.org_id INTO job_org FROM saas.jobs x
	 WHERE x.id = retry_job.id AND (scope IS NULL OR x.org_id = scope);
	IF FOUND THEN
		SELECT * INTO j FROM saas.jobs x WHERE x.org_id = job_org AND x.id = retry_job.id FOR UPDATE;
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'job not found' USING ERRCODE = 'SA404';
	END IF;
	IF j.state <> 'dead' THEN
		RAISE EXCEPTION 'only a dead job can be retried; this one is %', j.state USING ERRCODE = 'SA409';
	END IF;
	UPDATE saas.jobs x SET state = 'available', attempt = 0, run_at = now(), last_error = NULL,
		   finished_at = NULL, updated_at = now()
	 WHERE x.org_id = j.org_id AND x.id = j.id RETURNING * INTO j;
	PERFORM saas._wake_worker();
	RETURN jsonb_build_object('id', j.id, 'service', j.service, 'kind', j.kind, 'state', j.state, 'attempt', j.attempt);
END
$$;
COMMENT ON FUNCTION saas.retry_job(uuid) IS 'POST /jobs/:id/retry: revives a dead job (attempts reset) and wakes the worker.';

-- Bulk recovery after an incident (admin: own organization; the owner: all).
CREATE FUNCTION saas.retry_jobs(service text DEFAULT NULL, state text DEFAULT 'dead',
								since timestamptz DEFAULT NULL) RETURNS jsonb
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	owner_call boolean := saas.current_role() IS NULL
		AND pg_catalog.pg_has_role(session_user, (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_saas'), 'MEMBER');
	-- The organization as a value, so that Citus routes an admin's update to its shard.
	scope uuid := CASE WHEN owner_call THEN NULL ELSE saas.current_org_id() END;
	n bigint;
BEGIN
	IF NOT owner_call AND coalesce(saas.current_role(), '') NOT IN ('admin', 'super_admin') THEN
		RAISE EXCEPTION 'only an admin may retry jobs' USING ERRCODE = CASE WHEN saas.current_role() IS NULL THEN 'SA401' ELSE 'SA403' END;
	END IF;
	IF retry_jobs.state IS NULL OR retry_jobs.state NOT IN ('dead', 'retryable') THEN
		RAISE EXCEPTION 'state must be dead or retryable' USING ERRCODE = '22023';
	END IF;
	IF retry_jobs.service IS NOT NULL AND NOT EXISTS (SELECT 1 FROM saas.integrations i WHERE i.service = retry_jobs.service) THEN
		RAISE EXCEPTION 'unknown service "%"', retry_jobs.service USING ERRCODE = '22023';
	END IF;
	-- Dead jobs start over (attempts reset); retryable ones are made due now.
	UPDATE saas.jobs x SET state = 'available', run_at = now(), updated_at = now(), finished_at = NULL,
		   attempt = CASE WHEN x.state = 'dead' THEN 0 ELSE x.attempt END,
		   last_error = CASE WHEN x.state = 'dead' THEN NULL ELSE x.last_error END
	 WHERE x.state = retry_jobs.state
	   AND (retry_jobs.service IS NULL OR x.service = retry_jobs.service)
	   AND (retry_jobs.since IS NULL OR coalesce(x.finished_at, x.updated_at) >= retry_jobs.since)
	   AND (scope IS NULL OR x.org_id = scope);
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n > 0 THEN
		PERFORM saas._wake_worker();
	END IF;
	RETURN jsonb_build_object('retried', n);
END
$$;
COMMENT ON FUNCTION saas.retry_jobs(text, text, timestamptz) IS
	'POST /jobs/retry: revives dead jobs (attempts reset), or makes retryable ones due now, filtered by service and time of their last outcome; returns {"retried": n}.';

CREATE FUNCTION saas._wake_worker() RETURNS void
	AS 'MODULE_PATHNAME', 'saas_wake_worker' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas._wake_worker() IS 'Wakes the worker when the current transaction commits (private).';

-- Enqueue a call (private): idempotent by (org, idempotency key).
CREATE FUNCTION saas._enqueue(p_org uuid, p_service text, p_kind text, p_method text, p_path text,
							  p_body jsonb, p_key text, p_on_success jsonb DEFAULT NULL) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
BEGIN
	INSERT INTO saas.jobs (org_id, service, kind, payload, max_attempts, idempotency_key)
	SELECT p_org, p_service, p_kind,
		   jsonb_strip_nulls(jsonb_build_object('method', p_method, 'path', p_path, 'body', p_body, 'on_success', p_on_success)),
		   i.max_retries + 1, p_key
	  FROM saas.integrations i WHERE i.service = p_service AND i.enabled
	ON CONFLICT (org_id, idempotency_key) DO NOTHING;
	IF FOUND THEN
		PERFORM saas._wake_worker();
	END IF;
END
$$;
COMMENT ON FUNCTION saas._enqueue(uuid, text, text, text, text, jsonb, text, jsonb) IS 'Adds a job to the queue, once per idempotency key (private).';

-- After a successful call: remember the service's ids, chain the next call.
CREATE FUNCTION saas._job_succeeded(p_org uuid, p_job uuid, p_on_success jsonb, p_response text) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	resp jsonb;
	ref text;
	ext jsonb;
BEGIN
	BEGIN
		resp := p_response::jsonb;
	EXCEPTION WHEN OTHERS THEN
		RETURN;
	END;
	ref := coalesce(resp -> 'data' ->> (p_on_success ->> 'from'), resp ->> (p_on_success ->> 'from'));
	IF ref IS NULL THEN
		RETURN;
	END IF;
	-- The organization was deleted while the call ran: what the call created
	-- at the service is removed again, and nothing is chained.
	IF NOT EXISTS (SELECT 1 FROM saas.organizations o WHERE o.id = p_org) THEN
		IF p_on_success ? 'set_user_ref' THEN
			PERFORM saas._enqueue(p_org, 'user-service', 'user.delete', 'DELETE', '/users/' || ref, NULL,
				'user-delete:' || (p_on_success ->> 'user_id'));
		END IF;
		RETURN;
	END IF;
	IF p_on_success ? 'set_org_ref' THEN
		UPDATE saas.organizations SET external_ids = external_ids || jsonb_build_object(p_on_success ->> 'set_org_ref', ref)
		 WHERE id = p_org AND external_ids ->> (p_on_success ->> 'set_org_ref') IS DISTINCT FROM ref;
	END IF;
	IF p_on_success ? 'set_org_ref_from' AND resp -> 'data' ->> (p_on_success ->> 'set_org_ref_from') IS NOT NULL THEN
		UPDATE saas.organizations
		   SET external_ids = external_ids || jsonb_build_object(p_on_success ->> 'org_ref_key',
										resp -> 'data' ->> (p_on_success ->> 'set_org_ref_from'))
		 WHERE id = p_org AND NOT external_ids ? (p_on_success ->> 'org_ref_key');
	END IF;
	IF p_on_success ? 'set_user_ref' THEN
		-- On Citus the directory entry is written first (23_directory.sql).
		SELECT u.external_user_ids || jsonb_build_object(p_on_success ->> 'set_user_ref', ref) INTO ext
		  FROM saas.users u WHERE u.org_id = p_org AND u.id = (p_on_success ->> 'user_id')::uuid FOR UPDATE;
		IF FOUND THEN
			PERFORM saas._dir_set(p_org, (p_on_success ->> 'user_id')::uuid, NULL, ext);
		END IF;
		UPDATE saas.users SET external_user_ids = external_user_ids || jsonb_build_object(p_on_success ->> 'set_user_ref', ref)
		 WHERE org_id = p_org AND id = (p_on_success ->> 'user_id')::uuid;
	END IF;
	IF p_on_success ? 'then' THEN
		PERFORM saas._enqueue(p_org, p_on_success -> 'then' ->> 'service', p_on_success -> 'then' ->> 'kind', 'POST',
			p_on_success -> 'then' ->> 'path',
			(p_on_success -> 'then' -> 'body') || jsonb_build_object(p_on_success ->> 'from', ref),
			p_on_success -> 'then' ->> 'key');
	END IF;
END
$$;
COMMENT ON FUNCTION saas._job_succeeded(uuid, uuid, jsonb, text) IS 'Records what a successful call returned (service ids) and chains follow-up calls (private).';

-- Outbound flows. Changes the worker applies from a service are not pushed back.
CREATE FUNCTION saas._users_outbound() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	org_ref text;
	ref text;
BEGIN
	IF saas._in_sync() THEN
		RETURN NULL;
	END IF;
	IF TG_OP = 'INSERT' THEN
		-- Without a reference of its own at a service, an organization is known
		-- there by its id (webhook ingest maps such ids back to it).
		SELECT coalesce(o.external_ids ->> 'user_service', o.id::text) INTO org_ref FROM saas.organizations o WHERE o.id = NEW.org_id;
		PERFORM saas._enqueue(NEW.org_id, 'user-service', 'user.push', 'POST', '/users',
			jsonb_build_object('organization_id', org_ref, 'email', NEW.email, 'first_name', NEW.first_name,
							   'last_name', NEW.last_name, 'status', NEW.status),
			'user-create:' || NEW.id,
			jsonb_build_object('set_user_ref', 'user_service', 'user_id', NEW.id, 'from', 'user_id'));
		SELECT coalesce(o.external_ids ->> 'communication_service', o.id::text) INTO org_ref FROM saas.organizations o WHERE o.id = NEW.org_id;
		PERFORM saas._enqueue(NEW.org_id, 'communication-service', 'message.welcome', 'POST', '/messages',
			jsonb_build_object('organization_id', org_ref, 'recipient', NEW.email, 'template', 'welcome'),
			'welcome:' || NEW.id);
		-- The organization's first admin becomes its billing contact at the payment service.
		IF NEW.role = 'admin' AND NOT EXISTS (SELECT 1 FROM saas.organizations o
											   WHERE o.id = NEW.org_id AND o.external_ids ? 'payment_customer') THEN
			PERFORM saas._enqueue(NEW.org_id, 'payment-service', 'customer.create', 'POST', '/customers',
				jsonb_build_object('organization_id',
								   (SELECT coalesce(o.external_ids ->> 'payment_service', o.id::text)
									  FROM saas.organizations o WHERE o.id = NEW.org_id),
								   'email', NEW.email,
								   'name', (SELECT o.name FROM saas.organizations o WHERE o.id = NEW.org_id)),
				'customer:' || NEW.org_id,
				jsonb_build_object('set_org_ref', 'payment_customer', 'from', 'customer_id',
					'then', jsonb_build_object('service', 'payment-service', 'kind', 'subscription.create',
						'path', '/subscriptions', 'key', 'subscription:' || NEW.org_id,
						'body', (SELECT CASE WHEN o.subscription_tier = 'free'
											 THEN jsonb_build_object('plan', 'free', 'amount', 0)
											 ELSE jsonb_build_object('plan', o.subscription_tier) END
								   FROM saas.organizations o WHERE o.id = NEW.org_id))));
		END IF;
	ELSIF TG_OP = 'UPDATE' THEN
		ref := NEW.external_user_ids ->> 'user_service';
		IF ref IS NOT NULL AND (NEW.email, NEW.first_name, NEW.last_name, NEW.status)
				IS DISTINCT FROM (OLD.email, OLD.first_name, OLD.last_name, OLD.status) THEN
			PERFORM saas._enqueue(NEW.org_id, 'user-service', 'user.push', 'PUT', '/users/' || ref,
				jsonb_build_object('email', NEW.email, 'first_name', NEW.first_name, 'last_name', NEW.last_name,
								   'status', NEW.status),
				'user-update:' || NEW.id || ':' || NEW.version);
		END IF;
	ELSE
		ref := OLD.external_user_ids ->> 'user_service';
		-- Also when the whole organization is deleted (its users go by cascade):
		-- jobs outlive the organization, so the user is removed at the service.
		IF ref IS NOT NULL THEN
			PERFORM saas._enqueue(OLD.org_id, 'user-service', 'user.delete', 'DELETE', '/users/' || ref, NULL,
				'user-delete:' || OLD.id);
		END IF;
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION saas._users_outbound() IS 'Enqueues pushes of API changes to the user service and the welcome message (private).';
CREATE TRIGGER users_outbound AFTER INSERT OR UPDATE OR DELETE ON saas.users
	FOR EACH ROW EXECUTE FUNCTION saas._users_outbound();

-- Deleting an organization: its active subscriptions are canceled at the
-- payment service (its linked users are removed at the user service by
-- users_outbound as they go by cascade), through jobs enqueued in the
-- deleting transaction. saas.jobs has no foreign key to organizations, so
-- these jobs outlive the row; the calls not made yet for the organization
-- (available, retryable, dead) are void and go. BEFORE DELETE: the
-- subscriptions are still there (their cascade runs after the row is gone);
-- a delete the rules refuse rolls all of it back.
CREATE FUNCTION saas._organizations_deleted() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	s record;
BEGIN
	-- On Citus every copy of organizations fires this: the node of the
	-- organization's rows does it, once, on its local shards.
	IF NOT saas._org_shards_here(OLD.id) THEN
		RETURN OLD;
	END IF;
	DELETE FROM saas.jobs j WHERE j.org_id = OLD.id AND j.state IN ('available', 'retryable', 'dead');
	FOR s IN SELECT x.subscription_ref FROM saas.subscriptions x
			  WHERE x.org_id = OLD.id AND x.status <> 'canceled' ORDER BY x.subscription_ref LOOP
		PERFORM saas._enqueue(OLD.id, 'payment-service', 'subscription.cancel', 'DELETE',
			'/subscriptions/' || s.subscription_ref, NULL, 'subscription-cancel:' || s.subscription_ref);
	END LOOP;
	RETURN OLD;
END
$$;
COMMENT ON FUNCTION saas._organizations_deleted() IS
	'Enqueues the cancellation of a deleted organization''s active subscriptions and drops its pending calls (private).';
CREATE TRIGGER organizations_outbound BEFORE DELETE ON saas.organizations
	FOR EACH ROW EXECUTE FUNCTION saas._organizations_deleted();

-- Relinking an organization to another reference at a service starts its
-- pull sync over: the cursor was the old reference's, so the users already
-- at the new one would never be read.
CREATE FUNCTION saas._organizations_relinked() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
BEGIN
	IF NOT saas._org_shards_here(NEW.id) THEN
		RETURN NULL;			-- another copy of organizations (Citus): done on the node of its rows
	END IF;
	DELETE FROM saas.sync_state s USING saas.integrations i
	 WHERE s.org_id = NEW.id AND s.service = i.service
	   AND (NEW.external_ids ->> i.ref_key) IS DISTINCT FROM (OLD.external_ids ->> i.ref_key);
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION saas._organizations_relinked() IS 'Resets the pull sync of an organization whose reference at a service changed (private).';
-- Only the user service is pulled (bgworker/sync.c reads its reference, user_service), so
-- only that reference resets a cursor. Another service's reference written back by a call
-- (a payment customer) touches no other table: on Citus this trigger runs on the copies of
-- organizations on the worker nodes, from where sync_state (distributed) cannot be reached.
CREATE TRIGGER organizations_relinked AFTER UPDATE OF external_ids ON saas.organizations
	FOR EACH ROW WHEN ((OLD.external_ids -> 'user_service') IS DISTINCT FROM (NEW.external_ids -> 'user_service'))
	EXECUTE FUNCTION saas._organizations_relinked();
-- Part 75: retention and metrics (docs/integrations.md, "Retention" and "Metrics").
--
-- Retention is the worker's (bgworker/retention.c, settings saas.retention_*):
-- these indexes let it find what is old enough without reading what is not,
-- so pruning costs the same whatever the history kept.
CREATE INDEX jobs_succeeded_idx ON saas.jobs (finished_at) WHERE state = 'succeeded';
CREATE INDEX webhook_events_applied_idx ON saas.webhook_events (received_at) WHERE applied_at IS NOT NULL;

CREATE FUNCTION saas._worker_metrics_text() RETURNS text
	AS 'MODULE_PATHNAME', 'saas_worker_metrics_text' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas._worker_metrics_text() IS
	'The worker''s counters in shared memory (calls, latency histograms, breakers, pruning), Prometheus text (private).';

-- GET /metrics (the relay appends this to its own metrics on every scrape).
-- Every figure is an aggregate over all organizations, with fixed label values
-- (service, state): no tenant's data and no tenant id. Each query reads the
-- live queue through a partial index (jobs_state_service_idx, jobs_due_idx,
-- webhook_events_pending_idx) or one row per organization (sync_state), never
-- the history of succeeded jobs or applied events.
CREATE FUNCTION saas.metrics_text() RETURNS text
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	out text := saas._worker_metrics_text();
	depth text := '';
	spent text := '';
	r record;
BEGIN
	-- One scan of the live queue serves both families (depth and attempts).
	FOR r IN
		SELECT i.service, s.state, coalesce(q.n, 0) AS n, coalesce(q.attempts, 0) AS attempts
		  FROM saas.integrations i
		 CROSS JOIN unnest(ARRAY['available', 'running', 'retryable', 'dead']) AS s(state)
		  LEFT JOIN (SELECT j.service, j.state, count(*) AS n, sum(j.attempt) AS attempts FROM saas.jobs j
					  WHERE j.state <> 'succeeded' GROUP BY 1, 2) q ON q.service = i.service AND q.state = s.state
		 ORDER BY 1, 2
	LOOP
		depth := depth || format(E'saas_jobs{service="%s",state="%s"} %s\n', r.service, r.state, r.n);
		IF r.state <> 'available' THEN
			spent := spent || format(E'saas_jobs_attempts{service="%s",state="%s"} %s\n', r.service, r.state, r.attempts);
		END IF;
	END LOOP;
	out := out || E'# HELP saas_jobs Jobs in the live queue by service and state (succeeded jobs are history: see saas_worker_calls_total).\n'
			   || E'# TYPE saas_jobs gauge\n' || depth
			   || E'# HELP saas_jobs_attempts Attempts already spent by the jobs in the live queue, by service and state.\n'
			   || E'# TYPE saas_jobs_attempts gauge\n' || spent;

	out := out || E'# HELP saas_jobs_oldest_due_seconds How long the oldest due job of the service has waited past its run_at (0: none due).\n'
			   || E'# TYPE saas_jobs_oldest_due_seconds gauge\n';
	FOR r IN
		SELECT i.service,
			   (SELECT greatest(0, extract(epoch FROM now() - min(j.run_at)))
				  FROM saas.jobs j
				 WHERE j.service = i.service AND j.state IN ('available', 'retryable') AND j.run_at <= now()) AS age
		  FROM saas.integrations i ORDER BY 1
	LOOP
		out := out || format(E'saas_jobs_oldest_due_seconds{service="%s"} %s\n', r.service, round(coalesce(r.age, 0), 3));
	END LOOP;

	out := out || E'# HELP saas_webhook_events_pending Webhook events accepted and not applied yet.\n'
			   || E'# TYPE saas_webhook_events_pending gauge\n'
			   || E'# HELP saas_webhook_events_oldest_pending_seconds Age of the oldest event not applied yet (0: none).\n'
			   || E'# TYPE saas_webhook_events_oldest_pending_seconds gauge\n';
	FOR r IN
		SELECT i.service, coalesce(q.n, 0) AS n, coalesce(q.age, 0) AS age
		  FROM saas.integrations i
		  LEFT JOIN (SELECT e.service, count(*) AS n, extract(epoch FROM now() - min(e.received_at)) AS age
					   FROM saas.webhook_events e WHERE e.applied_at IS NULL GROUP BY 1) q ON q.service = i.service
		 ORDER BY 1
	LOOP
		out := out || format(E'saas_webhook_events_pending{service="%s"} %s\n', r.service, r.n)
				   || format(E'saas_webhook_events_oldest_pending_seconds{service="%s"} %s\n', r.service, round(greatest(r.age, 0), 3));
	END LOOP;

	out := out || E'# HELP saas_sync_lag_seconds Pull sync: time since the least recently completed sync of a linked organization.\n'
			   || E'# TYPE saas_sync_lag_seconds gauge\n'
			   || E'# HELP saas_sync_organizations Pull sync: organizations tracked, and those whose sync never completed.\n'
			   || E'# TYPE saas_sync_organizations gauge\n';
	FOR r IN
		SELECT s.service, count(*) AS n, count(*) FILTER (WHERE s.last_sync IS NULL) AS never,
			   extract(epoch FROM now() - min(s.last_sync)) AS lag
		  FROM saas.sync_state s GROUP BY 1 ORDER BY 1
	LOOP
		out := out || format(E'saas_sync_lag_seconds{service="%s"} %s\n', r.service, round(greatest(coalesce(r.lag, 0), 0), 3))
				   || format(E'saas_sync_organizations{service="%s",sync="any"} %s\n', r.service, r.n)
				   || format(E'saas_sync_organizations{service="%s",sync="never_completed"} %s\n', r.service, r.never);
	END LOOP;
	RETURN out;
END
$$;
COMMENT ON FUNCTION saas.metrics_text() IS
	'The worker''s and the queue''s metrics in Prometheus text format (aggregates only), for GET /metrics.';
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
-- Part 95: scale-out on Citus (docs/scale-out.md). saas.distribute(), run once on a Citus
-- coordinator after CREATE EXTENSION pg_saas, places every table of the extension:
--
--   reference    platform-wide tables, small and read everywhere (a copy on every node):
--                organizations (the tenant root every tenant table refers to), _user_refs
--                (external ids unique across organizations), _signing_keys, integrations,
--                rate_limits, _user_emails (the email directory of login and registration).
--   distributed  every tenant table, by org_id, colocated with saas.users: one organization's
--                rows of every table live on the same node, so a single-tenant request is routed
--                to one node and its foreign keys and joins stay there.
--                The job queue is one of them: jobs are enqueued by triggers that Citus runs on
--                the shards, on the worker nodes, and there only a colocated table is reachable
--                (a Citus local table cannot be made of an extension table: every worker holds
--                its own copy, created with the extension). The worker claims per organization.
--   local        the breaker history (_breaker_events): no org_id, written and read by the
--                background worker only, which runs on the coordinator; it stays a plain table.
--
-- After this part, so that the grants of part 90 do not reach it: owner only.

CREATE FUNCTION saas._distribution_plan(OUT relation regclass, OUT placement text, OUT ord integer)
	RETURNS SETOF record LANGUAGE sql IMMUTABLE
	SET search_path = pg_catalog, saas, pg_temp
AS $$
	-- In creation order: a reference table before the tables that refer to it, saas.users
	-- (the colocation anchor) before the tables colocated with it.
	SELECT t.relation::regclass, t.placement, t.ord
	  FROM (VALUES
		('saas.organizations', 'reference', 1),
		('saas._user_refs', 'reference', 2),
		('saas._signing_keys', 'reference', 3),
		('saas.integrations', 'reference', 4),
		('saas.rate_limits', 'reference', 5),
		('saas._user_emails', 'reference', 6),
		('saas.users', 'distributed', 10),
		('saas._credentials', 'distributed', 11),
		('saas._sessions', 'distributed', 12),
		('saas._revoked_tokens', 'distributed', 13),
		('saas.webhook_events', 'distributed', 14),
		('saas.subscriptions', 'distributed', 15),
		('saas.notifications', 'distributed', 16),
		('saas.entity_versions', 'distributed', 17),
		('saas.sync_state', 'distributed', 18),
		('saas.audit_log', 'distributed', 19),
		('saas._audit_heads', 'distributed', 20),
		('saas.jobs', 'distributed', 21),
		('saas._audit_outbox', 'distributed', 22),
		('saas._breaker_events', 'local', 30)
	  ) AS t(relation, placement, ord)
	 ORDER BY t.ord
$$;
COMMENT ON FUNCTION saas._distribution_plan() IS
	'Where saas.distribute() puts each table of the extension: reference, distributed (by org_id, colocated with saas.users) or local (left on the coordinator), in creation order (private).';

-- The settings Citus needs are the function's own (SET clauses), restored when it returns:
--   citus.enable_unsafe_triggers: the extension's triggers (rules, audit, outbound jobs) are
--     kept on distributed and reference tables; Citus refuses such tables without it.
--   citus.enable_local_reference_table_foreign_keys = off: while organizations becomes a
--     reference table, the tenant tables that refer to it are still local; Citus would otherwise
--     convert every local table of that foreign-key graph to a Citus local table, which fails on
--     the workers' own copies of the extension's tables ("relation "users" already exists").
CREATE FUNCTION saas.distribute() RETURNS TABLE (relation regclass, placement text)
	LANGUAGE plpgsql
	SET search_path = pg_catalog, saas, pg_temp
	SET citus.enable_unsafe_triggers = on
	SET citus.enable_local_reference_table_foreign_keys = off
	SET client_min_messages = warning
AS $$
DECLARE
	p record;
	done text;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname = 'citus') THEN
		RAISE EXCEPTION 'saas.distribute() needs Citus, which is not installed in this database'
			USING ERRCODE = '55000',
				  HINT = 'Load Citus first (shared_preload_libraries = ''citus,pg_saas''), then CREATE EXTENSION citus on the coordinator and every worker, and add the workers.';
	END IF;
	IF (SELECT g.groupid FROM pg_dist_local_group g) OPERATOR(pg_catalog.<>) 0 THEN
		RAISE EXCEPTION 'saas.distribute() runs on the Citus coordinator, not on a worker node'
			USING ERRCODE = '55000';
	END IF;
	SELECT pg_catalog.string_agg(d.logicalrelid::regclass::text, ', ' ORDER BY d.logicalrelid::regclass::text)
	  INTO done
	  FROM pg_dist_partition d
	  JOIN saas._distribution_plan() pl ON pl.relation OPERATOR(pg_catalog.=) d.logicalrelid;
	IF done IS NOT NULL THEN
		RAISE EXCEPTION 'pg_saas is already distributed'
			USING ERRCODE = '42710', DETAIL = pg_catalog.format('Citus already manages %s.', done),
				  HINT = 'saas.distribute() runs once; Citus cannot undo the distribution of extension tables.';
	END IF;

	-- The rows already there are copied into the shards, and a copy fires the triggers of the
	-- shard (a second audit entry, a second outbound job): the extension's triggers are off
	-- while the tables move, in this transaction only.
	FOR p IN SELECT * FROM saas._distribution_plan() LOOP
		EXECUTE pg_catalog.format('ALTER TABLE %s DISABLE TRIGGER USER', p.relation);
	END LOOP;
	FOR p IN SELECT * FROM saas._distribution_plan() LOOP
		CASE p.placement
			WHEN 'reference' THEN
				PERFORM create_reference_table(p.relation);
			WHEN 'distributed' THEN
				PERFORM create_distributed_table(p.relation, 'org_id',
					colocate_with => CASE WHEN p.relation OPERATOR(pg_catalog.=) 'saas.users'::regclass
										  THEN 'none' ELSE 'saas.users' END);
			WHEN 'local' THEN
				NULL;
		END CASE;
	END LOOP;
	-- The users triggers run on the shards and can only check the directories there: the
	-- API, as the caller, writes their entries first (23_directory.sql), under their policies.
	-- (Citus propagates no column list: the policies and the user_emails_pin trigger hold the rest.)
	GRANT SELECT, INSERT, UPDATE, DELETE ON saas._user_emails TO saas_api;
	GRANT SELECT, INSERT, DELETE ON saas._user_refs TO saas_api;
	FOR p IN SELECT * FROM saas._distribution_plan() LOOP
		EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE TRIGGER USER', p.relation);
		relation := p.relation;
		placement := p.placement;
		RETURN NEXT;
	END LOOP;
END
$$;
COMMENT ON FUNCTION saas.distribute() IS
	'On a Citus coordinator: makes the platform-wide tables reference tables, distributes every tenant table (the job queue too) by org_id colocated with saas.users. Runs once; owner only (docs/scale-out.md).';
REVOKE ALL ON FUNCTION saas.distribute(), saas._distribution_plan() FROM PUBLIC;
-- The background worker serves one database (saas.database, fixed at server start); in any
-- other, integration jobs and webhook applies queue and wait. Say so when the extension is
-- created, as /healthz ("worker":"not_serving_this_database") and saas.integration_status do.
-- A WARNING, not a NOTICE: CREATE EXTENSION runs its script with client_min_messages raised
-- to warning, so a NOTICE from here would never be seen.
DO $$
DECLARE
	served text := pg_catalog.current_setting('saas.database', true);
BEGIN
	IF pg_catalog.current_setting('shared_preload_libraries') !~ '(^|[ ,])"?pg_saas"?($|[ ,])' THEN
		RAISE WARNING 'pg_saas is not in shared_preload_libraries: no background worker runs, integration jobs will wait'
			USING HINT = 'Add pg_saas to shared_preload_libraries, set saas.database, and restart the server.';
	ELSIF served IS DISTINCT FROM pg_catalog.current_database() THEN
		RAISE WARNING 'the pg_saas worker serves database "%", not "%": integration jobs queued here will wait',
			served, pg_catalog.current_database()
			USING HINT = pg_catalog.format('Set saas.database = %L and restart the server to serve this one.',
										   pg_catalog.current_database());
	END IF;
END
$$;
