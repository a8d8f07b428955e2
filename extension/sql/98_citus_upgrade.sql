-- Part 98: upgrading an installation already distributed on Citus (docs/operations.md,
-- "Upgrade of a Citus cluster"; docs/scale-out.md).
--
-- ALTER EXTENSION pg_saas UPDATE changes each node's own copy of the extension's objects: the
-- tables Citus manages there are its shell tables (on the coordinator and, with Citus 12's
-- metadata on every node, on each worker), not their shards. The upgrade script therefore runs
-- on every node with citus.enable_ddl_propagation off (Citus would otherwise send each of its
-- commands on a distributed table to the shards as the whole script, refuse its triggers, and
-- run the propagated update on the workers as a nested distributed query). What that leaves
-- undone is done here, on the coordinator, once every node is at the new version:
--   - every shard of every node gets its table's triggers, check constraints, policies
--     (restrictive ones restrictive), row-level security flags and grants, as that node's copy of the table has
--     them after the update (saas._shards_sync, run on each node);
--   - the tables the new version adds are placed as saas.distribute() would place them.
-- Nothing happens on a single node; owner only.

-- saas._shards_sync: on this node, make every shard of an extension table carry the triggers,
-- check constraints, policies, row-level security flags and grants of the node's own copy of
-- that table, as Citus gives them to a new shard (and restrictive policies restrictive).
-- Returns the number of shards seen and of changes made.
CREATE FUNCTION saas._shards_sync(OUT shards integer, OUT changes integer) RETURNS record
	LANGUAGE plpgsql
	SET search_path = pg_catalog, saas, pg_temp
	SET citus.override_table_visibility = off
	SET client_min_messages = warning
AS $$
DECLARE
	s record;
	t record;
	p record;
	roles text;
	a record;
BEGIN
	shards := 0;
	changes := 0;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'citus') THEN
		RETURN;
	END IF;
	FOR s IN
		EXECUTE $q$
		SELECT sc.oid AS shard, sc.relname AS shard_name, bc.oid AS base, bc.relname AS base_name,
			   ds.shardid::text AS suffix, sc.relrowsecurity AS s_rls, sc.relforcerowsecurity AS s_force,
			   bc.relrowsecurity AS b_rls, bc.relforcerowsecurity AS b_force,
			   sc.relacl AS s_acl, bc.relacl AS b_acl, bc.relowner AS b_owner
		  FROM pg_catalog.pg_dist_shard ds
		  JOIN pg_catalog.pg_class bc ON bc.oid OPERATOR(pg_catalog.=) ds.logicalrelid
		  JOIN pg_catalog.pg_class sc ON sc.relnamespace OPERATOR(pg_catalog.=) bc.relnamespace
									 AND sc.relname OPERATOR(pg_catalog.=) (bc.relname::text OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) ds.shardid::text)
		 WHERE bc.relnamespace OPERATOR(pg_catalog.=) 'saas'::regnamespace AND sc.relkind OPERATOR(pg_catalog.=) 'r'
		   AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
						WHERE d.classid OPERATOR(pg_catalog.=) 'pg_class'::regclass AND d.objid OPERATOR(pg_catalog.=) bc.oid
						  AND d.refclassid OPERATOR(pg_catalog.=) 'pg_extension'::regclass AND d.deptype OPERATOR(pg_catalog.=) 'e'
						  AND d.refobjid OPERATOR(pg_catalog.=) (SELECT x.oid FROM pg_catalog.pg_extension x WHERE x.extname OPERATOR(pg_catalog.=) 'pg_saas'))
		 ORDER BY ds.shardid
		$q$
	LOOP
		shards := shards OPERATOR(pg_catalog.+) 1;

		-- Triggers: the shard's copy of trigger T is T_<shard id>, defined as T with the
		-- shard's names. A copy that differs, or has no trigger on the table, goes.
		FOR t IN
			SELECT st.tgname, pg_catalog.pg_get_triggerdef(st.oid) AS def,
				   pg_catalog.replace(pg_catalog.replace(pg_catalog.pg_get_triggerdef(bt.oid),
						'CREATE TRIGGER ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(bt.tgname) OPERATOR(pg_catalog.||) ' ',
						'CREATE TRIGGER ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(bt.tgname OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) s.suffix) OPERATOR(pg_catalog.||) ' '),
						' ON saas.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(s.base_name) OPERATOR(pg_catalog.||) ' ',
						' ON saas.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(s.shard_name) OPERATOR(pg_catalog.||) ' ') AS want
			  FROM pg_catalog.pg_trigger st
			  LEFT JOIN pg_catalog.pg_trigger bt ON bt.tgrelid OPERATOR(pg_catalog.=) s.base AND NOT bt.tgisinternal
				   AND (bt.tgname::text OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) s.suffix) OPERATOR(pg_catalog.=) st.tgname::text
			 WHERE st.tgrelid OPERATOR(pg_catalog.=) s.shard AND NOT st.tgisinternal
		LOOP
			IF t.want IS NULL OR t.want OPERATOR(pg_catalog.<>) t.def THEN
				EXECUTE pg_catalog.format('DROP TRIGGER %I ON saas.%I', t.tgname, s.shard_name);
				changes := changes OPERATOR(pg_catalog.+) 1;
			END IF;
		END LOOP;
		FOR t IN
			SELECT bt.tgname,
				   pg_catalog.replace(pg_catalog.replace(pg_catalog.pg_get_triggerdef(bt.oid),
						'CREATE TRIGGER ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(bt.tgname) OPERATOR(pg_catalog.||) ' ',
						'CREATE TRIGGER ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(bt.tgname OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) s.suffix) OPERATOR(pg_catalog.||) ' '),
						' ON saas.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(s.base_name) OPERATOR(pg_catalog.||) ' ',
						' ON saas.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(s.shard_name) OPERATOR(pg_catalog.||) ' ') AS want
			  FROM pg_catalog.pg_trigger bt
			 WHERE bt.tgrelid OPERATOR(pg_catalog.=) s.base AND NOT bt.tgisinternal
			   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger st
								WHERE st.tgrelid OPERATOR(pg_catalog.=) s.shard
								  AND st.tgname::text OPERATOR(pg_catalog.=) (bt.tgname::text OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) s.suffix))
		LOOP
			EXECUTE t.want;		-- enabled, as Citus makes a new shard's triggers (ENABLE ALWAYS is not copied)
			changes := changes OPERATOR(pg_catalog.+) 1;
		END LOOP;

		-- Check constraints, by name, as a new shard has them: the table's names (a constraint
		-- Citus added to the shards later carries the shard id in its name). Not by definition:
		-- Citus writes a shard's check constraints from its own deparse of the expression, whose
		-- text differs from the table's; the upgrade script changes a constraint on the shards
		-- itself (as part 35's scopes in extension/upgrade/).
		FOR t IN
			SELECT sk.conname, bk.conname AS b_name
			  FROM pg_catalog.pg_constraint sk
			  LEFT JOIN pg_catalog.pg_constraint bk ON bk.conrelid OPERATOR(pg_catalog.=) s.base AND bk.contype OPERATOR(pg_catalog.=) 'c'
				   AND sk.conname::text IN (bk.conname::text, bk.conname::text OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) s.suffix)
			 WHERE sk.conrelid OPERATOR(pg_catalog.=) s.shard AND sk.contype OPERATOR(pg_catalog.=) 'c'
			   AND (bk.oid IS NULL OR bk.conname OPERATOR(pg_catalog.<>) sk.conname)
		LOOP
			IF t.b_name IS NULL OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
											WHERE k.conrelid OPERATOR(pg_catalog.=) s.shard AND k.conname OPERATOR(pg_catalog.=) t.b_name) THEN
				EXECUTE pg_catalog.format('ALTER TABLE saas.%I DROP CONSTRAINT %I', s.shard_name, t.conname);
			ELSE
				EXECUTE pg_catalog.format('ALTER TABLE saas.%I RENAME CONSTRAINT %I TO %I', s.shard_name, t.conname, t.b_name);
			END IF;
			changes := changes OPERATOR(pg_catalog.+) 1;
		END LOOP;
		FOR t IN
			SELECT bk.conname, pg_catalog.pg_get_constraintdef(bk.oid) AS def
			  FROM pg_catalog.pg_constraint bk
			 WHERE bk.conrelid OPERATOR(pg_catalog.=) s.base AND bk.contype OPERATOR(pg_catalog.=) 'c'
			   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint sk
								WHERE sk.conrelid OPERATOR(pg_catalog.=) s.shard AND sk.contype OPERATOR(pg_catalog.=) 'c'
								  AND sk.conname OPERATOR(pg_catalog.=) bk.conname)
		LOOP
			EXECUTE pg_catalog.format('ALTER TABLE saas.%I ADD CONSTRAINT %I %s', s.shard_name, t.conname, t.def);
			changes := changes OPERATOR(pg_catalog.+) 1;
		END LOOP;

		-- Policies, by name: a copy that differs in command, kind, roles or expressions, or has
		-- no policy on the table, goes; the table's policies the shard lacks are made, with
		-- AS RESTRICTIVE where the table's is (Citus's own copies leave it out: part 97).
		FOR p IN
			SELECT sp.polname
			  FROM pg_catalog.pg_policy sp
			  LEFT JOIN pg_catalog.pg_policy bp ON bp.polrelid OPERATOR(pg_catalog.=) s.base AND bp.polname OPERATOR(pg_catalog.=) sp.polname
			 WHERE sp.polrelid OPERATOR(pg_catalog.=) s.shard
			   AND (bp.oid IS NULL OR bp.polcmd OPERATOR(pg_catalog.<>) sp.polcmd
					OR bp.polpermissive OPERATOR(pg_catalog.<>) sp.polpermissive
					OR bp.polroles OPERATOR(pg_catalog.<>) sp.polroles
					OR pg_catalog.pg_get_expr(bp.polqual, bp.polrelid) IS DISTINCT FROM pg_catalog.pg_get_expr(sp.polqual, sp.polrelid)
					OR pg_catalog.pg_get_expr(bp.polwithcheck, bp.polrelid) IS DISTINCT FROM pg_catalog.pg_get_expr(sp.polwithcheck, sp.polrelid))
		LOOP
			EXECUTE pg_catalog.format('DROP POLICY %I ON saas.%I', p.polname, s.shard_name);
			changes := changes OPERATOR(pg_catalog.+) 1;
		END LOOP;
		FOR p IN
			SELECT bp.polname, bp.polcmd, bp.polpermissive, bp.polroles,
				   pg_catalog.pg_get_expr(bp.polqual, bp.polrelid) AS qual,
				   pg_catalog.pg_get_expr(bp.polwithcheck, bp.polrelid) AS wcheck
			  FROM pg_catalog.pg_policy bp
			 WHERE bp.polrelid OPERATOR(pg_catalog.=) s.base
			   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy sp
								WHERE sp.polrelid OPERATOR(pg_catalog.=) s.shard AND sp.polname OPERATOR(pg_catalog.=) bp.polname)
		LOOP
			IF p.polroles OPERATOR(pg_catalog.=) '{0}'::oid[] THEN
				roles := 'PUBLIC';
			ELSE
				SELECT pg_catalog.string_agg(pg_catalog.quote_ident(r.rolname), ', ' ORDER BY r.rolname) INTO roles
				  FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) ANY (p.polroles);
			END IF;
			EXECUTE pg_catalog.format('CREATE POLICY %I ON saas.%I AS %s FOR %s TO %s%s%s', p.polname, s.shard_name,
				CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
				CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
							  WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
				roles,
				coalesce(' USING (' OPERATOR(pg_catalog.||) p.qual OPERATOR(pg_catalog.||) ')', ''),
				coalesce(' WITH CHECK (' OPERATOR(pg_catalog.||) p.wcheck OPERATOR(pg_catalog.||) ')', ''));
			changes := changes OPERATOR(pg_catalog.+) 1;
		END LOOP;

		-- Row-level security as on the table.
		IF s.s_rls OPERATOR(pg_catalog.<>) s.b_rls THEN
			EXECUTE pg_catalog.format('ALTER TABLE saas.%I %s ROW LEVEL SECURITY', s.shard_name,
				CASE WHEN s.b_rls THEN 'ENABLE' ELSE 'DISABLE' END);
			changes := changes OPERATOR(pg_catalog.+) 1;
		END IF;
		IF s.s_force OPERATOR(pg_catalog.<>) s.b_force THEN
			EXECUTE pg_catalog.format('ALTER TABLE saas.%I %s ROW LEVEL SECURITY', s.shard_name,
				CASE WHEN s.b_force THEN 'FORCE' ELSE 'NO FORCE' END);
			changes := changes OPERATOR(pg_catalog.+) 1;
		END IF;

		-- Grants as on the table (the owner's own entry aside).
		IF s.s_acl IS DISTINCT FROM s.b_acl THEN
			FOR a IN SELECT DISTINCT x.grantee FROM pg_catalog.aclexplode(s.s_acl) x
					  WHERE x.grantee OPERATOR(pg_catalog.<>) s.b_owner LOOP
				EXECUTE pg_catalog.format('REVOKE ALL ON saas.%I FROM %s', s.shard_name,
					CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END);
			END LOOP;
			FOR a IN SELECT x.grantee, pg_catalog.string_agg(x.privilege_type, ', ') AS privs
					   FROM pg_catalog.aclexplode(s.b_acl) x
					  WHERE x.grantee OPERATOR(pg_catalog.<>) s.b_owner GROUP BY x.grantee LOOP
				EXECUTE pg_catalog.format('GRANT %s ON saas.%I TO %s', a.privs, s.shard_name,
					CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END);
			END LOOP;
			changes := changes OPERATOR(pg_catalog.+) 1;
		END IF;
	END LOOP;
END
$$;
COMMENT ON FUNCTION saas._shards_sync() IS
	'On a Citus node: gives every shard of an extension table the triggers, policies, row-level security and grants of the node''s own copy of the table; returns the shards seen and the changes made (private; saas.distribute_upgrade() runs it on every node).';

-- saas.distribute_upgrade(): on the coordinator, after ALTER EXTENSION pg_saas UPDATE on every
-- node. Its settings are distribute()'s (part 95).
CREATE FUNCTION saas.distribute_upgrade() RETURNS TABLE (step text, relation regclass, detail text)
	LANGUAGE plpgsql
	SET search_path = pg_catalog, saas, pg_temp
	SET citus.enable_unsafe_triggers = on
	SET citus.enable_local_reference_table_foreign_keys = off
	SET client_min_messages = warning
AS $$
DECLARE
	v text;
	behind text;
	r record;
	p record;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'citus') THEN
		RAISE EXCEPTION 'saas.distribute_upgrade() needs Citus, which is not installed in this database'
			USING ERRCODE = '55000', HINT = 'On a single node, ALTER EXTENSION pg_saas UPDATE is the whole upgrade.';
	END IF;
	IF (SELECT g.groupid FROM pg_dist_local_group g) OPERATOR(pg_catalog.<>) 0 THEN
		RAISE EXCEPTION 'saas.distribute_upgrade() runs on the Citus coordinator, not on a worker node'
			USING ERRCODE = '55000';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_dist_partition d WHERE d.logicalrelid OPERATOR(pg_catalog.=) 'saas.users'::regclass) THEN
		RAISE EXCEPTION 'pg_saas is not distributed'
			USING ERRCODE = '55000', HINT = 'SELECT * FROM saas.distribute() places every table of this version.';
	END IF;
	SELECT e.extversion INTO v FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'pg_saas';
	SELECT pg_catalog.string_agg(pg_catalog.format('%s:%s is at %s', w.nodename, w.nodeport,
				CASE WHEN w.success THEN w.result ELSE 'an unknown version (' OPERATOR(pg_catalog.||) w.result OPERATOR(pg_catalog.||) ')' END),
				', ' ORDER BY w.nodename, w.nodeport)
	  INTO behind
	  FROM run_command_on_workers($q$SELECT coalesce((SELECT extversion FROM pg_extension WHERE extname = 'pg_saas'), 'none')$q$) w
	 WHERE NOT w.success OR w.result OPERATOR(pg_catalog.<>) v;
	IF behind IS NOT NULL THEN
		RAISE EXCEPTION 'pg_saas is not at version % on every worker node', v
			USING ERRCODE = '55000', DETAIL = behind,
				  HINT = 'On each of them: SET citus.enable_ddl_propagation = off; ALTER EXTENSION pg_saas UPDATE; (docs/operations.md).';
	END IF;

	-- The shards of the tables already placed, on every node (the coordinator holds the
	-- reference tables' copies too). Each node commits its own changes; a second run finds
	-- nothing left to do.
	FOR r IN SELECT * FROM run_command_on_all_nodes('SELECT row(s.shards, s.changes)::text FROM saas._shards_sync() s') ORDER BY 1 LOOP
		IF NOT r.success THEN
			RAISE EXCEPTION 'cannot bring the shards of node % up to date', r.nodeid
				USING ERRCODE = '55000', DETAIL = r.result;
		END IF;
		step := 'shards';
		relation := NULL;
		detail := pg_catalog.format('node %s: (shards, changes) = %s', r.nodeid, r.result);
		RETURN NEXT;
	END LOOP;

	-- The tables this version adds, placed as distribute() places them (their triggers off
	-- while they move, in this transaction only).
	FOR p IN SELECT * FROM saas._distribution_plan() pl
			  WHERE pl.placement OPERATOR(pg_catalog.<>) 'local'
				AND NOT EXISTS (SELECT 1 FROM pg_dist_partition d WHERE d.logicalrelid OPERATOR(pg_catalog.=) pl.relation)
			  ORDER BY pl.ord LOOP
		EXECUTE pg_catalog.format('ALTER TABLE %s DISABLE TRIGGER USER', p.relation);
		IF p.placement OPERATOR(pg_catalog.=) 'reference' THEN
			PERFORM create_reference_table(p.relation);
		ELSE
			PERFORM create_distributed_table(p.relation, 'org_id', colocate_with => 'saas.users');
		END IF;
		EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE TRIGGER USER', p.relation);
		step := 'placed';
		relation := p.relation;
		detail := p.placement;
		RETURN NEXT;
	END LOOP;
END
$$;
COMMENT ON FUNCTION saas.distribute_upgrade() IS
	'On a Citus coordinator, after ALTER EXTENSION pg_saas UPDATE on every node: brings the shards of every node up to date with their tables and places the tables the new version added as saas.distribute() would. Owner only (docs/operations.md).';
REVOKE ALL ON FUNCTION saas._shards_sync(), saas.distribute_upgrade() FROM PUBLIC;
