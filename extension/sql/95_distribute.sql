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
		('saas._invitations', 'distributed', 23),
		('saas._password_resets', 'distributed', 24),
		('saas._refresh_tokens', 'distributed', 25),
		('saas.sso_connections', 'distributed', 26),
		('saas._sso_secrets', 'distributed', 27),
		('saas._sso_requests', 'distributed', 28),
		('saas._sso_identities', 'distributed', 29),
		('saas.api_keys', 'distributed', 30),
		('saas._api_key_secrets', 'distributed', 31),
		('saas._breaker_events', 'local', 40)
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
