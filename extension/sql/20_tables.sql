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
