-- Part 97: restrictive policies stay restrictive on Citus's shards (docs/scale-out.md).
--
-- Citus 12.1 writes the policies of a distributed or reference table onto its shards from
-- the policy's name, command, roles and expressions, and leaves out AS RESTRICTIVE
-- (CreatePolicyCommandForPolicy, commands/policy.c): every restrictive policy becomes a
-- permissive one on the shards, OR-ed with the tenant policies instead of AND-ed with them.
-- The API keys' scope policies (part 92: USING saas._scope_allows(...), true for a context
-- that is not a key, even for no context at all) then let every row of every organization
-- through: found by the regress files auth and jwt_hs run on the coordinator (a forged
-- token's transaction counted 7 users of other organizations).
--
-- pg_saas is loaded on every node, and Citus runs each shard's CREATE POLICY on the node of
-- the shard (worker_apply_shard_ddl_command: a complete utility command, so event triggers
-- fire). An event trigger there finds a new permissive policy on a table saas.<name>_<shard
-- id> whose table saas.<name> (the node's own copy, made by CREATE EXTENSION) has a
-- restrictive policy of the same name and command, and makes it again AS RESTRICTIVE, with
-- the shard's own expressions and roles. Shard moves and splits create their policies the
-- same way. Nothing happens on a single node: there are no shards.

-- saas._shard_policy_fix: make a shard's copies of its table's restrictive policies
-- restrictive again; returns how many it fixed. Only by name, on saas's own tables.
CREATE FUNCTION saas._shard_policy_fix(p_shard regclass) RETURNS integer
	LANGUAGE plpgsql SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	base oid;
	p record;
	roles text;
	n integer := 0;
BEGIN
	SELECT b.oid INTO base
	  FROM pg_class s
	  JOIN pg_class b ON b.relnamespace = s.relnamespace
					 AND b.relname = regexp_replace(s.relname, '_[0-9]+$', '')
					 AND b.oid <> s.oid
	 WHERE s.oid = p_shard
	   AND s.relnamespace = 'saas'::regnamespace
	   AND s.relname ~ '_[0-9]+$';
	IF base IS NULL THEN
		RETURN 0;
	END IF;
	FOR p IN
		SELECT sp.oid, sp.polname, sp.polcmd, sp.polroles,
			   pg_get_expr(sp.polqual, sp.polrelid) AS qual,
			   pg_get_expr(sp.polwithcheck, sp.polrelid) AS wcheck
		  FROM pg_policy sp
		  JOIN pg_policy bp ON bp.polrelid = base AND bp.polname = sp.polname
						   AND bp.polcmd = sp.polcmd AND NOT bp.polpermissive
		 WHERE sp.polrelid = p_shard AND sp.polpermissive
	LOOP
		IF p.polroles = '{0}'::oid[] THEN
			roles := 'PUBLIC';
		ELSE
			SELECT string_agg(quote_ident(r.rolname), ', ' ORDER BY r.rolname) INTO roles
			  FROM pg_roles r WHERE r.oid = ANY (p.polroles);
		END IF;
		EXECUTE format('DROP POLICY %I ON %s', p.polname, p_shard);
		EXECUTE format('CREATE POLICY %I ON %s AS RESTRICTIVE FOR %s TO %s%s%s', p.polname, p_shard,
					   CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
									 WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
					   roles,
					   coalesce(' USING (' || p.qual || ')', ''),
					   coalesce(' WITH CHECK (' || p.wcheck || ')', ''));
		n := n + 1;
	END LOOP;
	RETURN n;
END
$$;
COMMENT ON FUNCTION saas._shard_policy_fix(regclass) IS
	'On Citus: makes a shard''s copies of its table''s restrictive policies restrictive again (private).';

-- saas._shard_policy_created: the event trigger, after each CREATE POLICY.
CREATE FUNCTION saas._shard_policy_created() RETURNS event_trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	rel oid;
BEGIN
	FOR rel IN
		SELECT DISTINCT p.polrelid
		  FROM pg_event_trigger_ddl_commands() c
		  JOIN pg_policy p ON p.oid = c.objid
		 WHERE c.classid = 'pg_policy'::regclass AND p.polpermissive
	LOOP
		PERFORM saas._shard_policy_fix(rel);
	END LOOP;
END
$$;
COMMENT ON FUNCTION saas._shard_policy_created() IS
	'Event trigger: keeps restrictive policies restrictive on Citus shards (private).';

CREATE EVENT TRIGGER saas_shard_policies ON ddl_command_end WHEN TAG IN ('CREATE POLICY')
	EXECUTE FUNCTION saas._shard_policy_created();

-- Shards that exist already on this node (an upgrade of a distributed installation).
DO $$
DECLARE
	rel oid;
BEGIN
	FOR rel IN
		SELECT DISTINCT sp.polrelid FROM pg_policy sp
		  JOIN pg_class s ON s.oid = sp.polrelid
		 WHERE s.relnamespace = 'saas'::regnamespace AND s.relname ~ '_[0-9]+$' AND sp.polpermissive
	LOOP
		PERFORM saas._shard_policy_fix(rel);
	END LOOP;
END
$$;

REVOKE ALL ON FUNCTION saas._shard_policy_fix(regclass), saas._shard_policy_created() FROM PUBLIC;
