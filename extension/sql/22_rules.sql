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
