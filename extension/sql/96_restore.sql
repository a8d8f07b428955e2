-- Part 96: restoring a dump (docs/operations.md). pg_dump writes CREATE EXTENSION pg_saas and
-- then the rows of the extension's tables that pg_extension_config_dump registered. A restore
-- must load them as they were: with the extension's triggers firing, every organization and
-- user would be audited again as a new "create" without an actor, pushed to the services
-- again, and the derived rows (the email directory, sessions) made twice. So a restore runs
-- as a superuser with session_replication_role = replica, which PostgreSQL itself uses to
-- load rows without firing ordinary triggers; the dump is consistent, its derived rows come
-- with it.
--
-- Here: the configuration rows CREATE EXTENSION seeds (integrations, rate limits) are merged
-- with the dumped ones instead of colliding; a restore that would fire the triggers is refused,
-- at CREATE EXTENSION (a full restore) or at the first row (a data-only one).
--
-- This part runs after every other part numbered below it, and guards every table they
-- registered with pg_extension_config_dump; a part numbered above it that registers a table
-- adds the guard itself (pgTAP restore_merge checks that every such table has it).

-- The dumped row of a seeded key replaces the seeded one; other rows are inserted. Only in a
-- restore (session_replication_role = replica, where this trigger alone fires: ENABLE ALWAYS);
-- otherwise an insert of an existing key fails as it always did. Arguments: the key columns.
-- Runs as the caller (a restore's superuser).
CREATE FUNCTION saas._config_restore_merge() RETURNS trigger LANGUAGE plpgsql
	SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	keys text[] := TG_ARGV;
	sets text;
	cond text;
	n bigint;
BEGIN
	IF pg_catalog.current_setting('session_replication_role') OPERATOR(pg_catalog.<>) 'replica' THEN
		RETURN NEW;
	END IF;
	SELECT pg_catalog.string_agg(pg_catalog.format('%I = ($1).%I', a.attname, a.attname), ', ' ORDER BY a.attnum)
	  INTO sets
	  FROM pg_catalog.pg_attribute a
	 WHERE a.attrelid OPERATOR(pg_catalog.=) TG_RELID AND a.attnum OPERATOR(pg_catalog.>) 0
	   AND NOT a.attisdropped AND NOT (a.attname::text OPERATOR(pg_catalog.=) ANY (keys));
	SELECT pg_catalog.string_agg(pg_catalog.format('t.%I OPERATOR(pg_catalog.=) ($1).%I', k, k), ' AND ')
	  INTO cond
	  FROM pg_catalog.unnest(keys) k;
	EXECUTE pg_catalog.format('UPDATE %I.%I t SET %s WHERE %s', TG_TABLE_SCHEMA, TG_TABLE_NAME, sets, cond)
		USING NEW;
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n OPERATOR(pg_catalog.>) 0 THEN
		RETURN NULL;			-- merged into the seeded row
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION saas._config_restore_merge() IS
	'BEFORE INSERT trigger of the seeded configuration tables: in a restore (session_replication_role = replica), a dumped row replaces the seeded row of the same key (private).';
REVOKE ALL ON FUNCTION saas._config_restore_merge() FROM PUBLIC;

CREATE TRIGGER rate_limits_restore_merge BEFORE INSERT ON saas.rate_limits
	FOR EACH ROW EXECUTE FUNCTION saas._config_restore_merge('tier', 'scope');
ALTER TABLE saas.rate_limits ENABLE ALWAYS TRIGGER rate_limits_restore_merge;
COMMENT ON TRIGGER rate_limits_restore_merge ON saas.rate_limits IS
	'A restore merges the dumped limits into the seeded ones (docs/operations.md).';
CREATE TRIGGER integrations_restore_merge BEFORE INSERT ON saas.integrations
	FOR EACH ROW EXECUTE FUNCTION saas._config_restore_merge('service');
ALTER TABLE saas.integrations ENABLE ALWAYS TRIGGER integrations_restore_merge;
COMMENT ON TRIGGER integrations_restore_merge ON saas.integrations IS
	'A restore merges the dumped integrations into the seeded ones (docs/operations.md).';

-- pg_dump's scripts (plain, and pg_restore's) start with SET row_security = off, which no
-- path of the API uses (it relies on row-level security). A data-only restore (pg_restore
-- --data-only, into a database that has the extension) loads rows without CREATE EXTENSION:
-- there every table pg_dump dumps refuses the rows instead, before any trigger of the
-- extension sees them. Ordinary statement triggers, so they do not fire in replica mode; the
-- WHEN clause keeps every other insert from calling the function at all.
CREATE FUNCTION saas._restore_guard() RETURNS trigger LANGUAGE plpgsql
	SET search_path = pg_catalog, saas, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'pg_saas cannot be restored with its triggers firing'
		USING ERRCODE = '55000',
			  DETAIL = pg_catalog.format('Rows of %I.%I with row_security = off: every restored organization and user would be audited and pushed to the services again.',
										 TG_TABLE_SCHEMA, TG_TABLE_NAME),
			  HINT = 'Restore as a superuser with PGOPTIONS=''-c session_replication_role=replica'' (docs/operations.md).';
END
$$;
COMMENT ON FUNCTION saas._restore_guard() IS
	'BEFORE INSERT statement trigger of the tables pg_dump dumps, under row_security = off: refuses a data-only restore that would fire the extension''s triggers (private).';
REVOKE ALL ON FUNCTION saas._restore_guard() FROM PUBLIC;

-- Every table registered with pg_extension_config_dump, the parts before this one included.
DO $$
DECLARE
	t regclass;
BEGIN
	FOR t IN SELECT c.oid::regclass
			   FROM pg_catalog.pg_extension e, pg_catalog.unnest(e.extconfig) AS c(oid)
			  WHERE e.extname OPERATOR(pg_catalog.=) 'pg_saas'
			  ORDER BY 1
	LOOP
		EXECUTE pg_catalog.format('CREATE TRIGGER restore_guard BEFORE INSERT ON %s FOR EACH STATEMENT '
			'WHEN (pg_catalog.current_setting(''row_security'') OPERATOR(pg_catalog.=) ''off'') '
			'EXECUTE FUNCTION saas._restore_guard()', t);
		EXECUTE pg_catalog.format('COMMENT ON TRIGGER restore_guard ON %s IS %L', t,
			'A restore that would fire the extension''s triggers is refused (docs/operations.md).');
	END LOOP;
END
$$;

-- A full restore begins with CREATE EXTENSION: under row_security = off without
-- session_replication_role = replica, it is refused before any row is loaded. (psql and
-- pg_restore go on after an error; the extension's tables then do not exist, and their rows
-- are refused too: nothing is audited or sent twice.)
DO $$
BEGIN
	IF pg_catalog.current_setting('row_security') OPERATOR(pg_catalog.=) 'off'
	   AND pg_catalog.current_setting('session_replication_role') OPERATOR(pg_catalog.<>) 'replica' THEN
		RAISE EXCEPTION 'pg_saas cannot be restored with its triggers firing'
			USING ERRCODE = '55000',
				  DETAIL = 'Every restored organization and user would be audited and pushed to the services again.',
				  HINT = 'Restore as a superuser with PGOPTIONS=''-c session_replication_role=replica'' (docs/operations.md).';
	END IF;
END
$$;
