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
