-- pg_saas 0.1.0 -> 0.2.0, hand-written part: the changes to objects that 0.1.0 already had.
-- make appends the part files new in 0.2.0 (Makefile UPGRADE_NEW_PARTS), then
-- 0.1.0--0.2.0.post.sql if there is one (changes that need the new parts' objects).
--
-- Write here, for every change to an existing part file: CREATE OR REPLACE FUNCTION with the
-- new body (and ALTER FUNCTION for its settings), ALTER TABLE ... ADD COLUMN (and put the new
-- column last in the part file's CREATE TABLE too, so a fresh install has the same column
-- order), DROP/CREATE POLICY, CREATE TRIGGER, GRANT/REVOKE, pg_extension_config_dump, and the
-- seeded configuration rows a part now inserts (INSERT ... ON CONFLICT DO NOTHING: an
-- operator's own change of a row stays). Suite 68_upgrade compares a database upgraded
-- from 0.1.0 with a fresh 0.2.0 install and fails on any difference (docs/operations.md).
--
-- 0.2.0 adds parts 91 (sessions), 92 (API keys, the dashboard's functions), 93 (invitations and
-- password reset), 94 (single sign-on) and 96 (restore), and changes these objects of 0.1.0:

-- An installation distributed on Citus (docs/operations.md, "Upgrade of a Citus cluster") is
-- updated node by node, each with citus.enable_ddl_propagation off: this script then changes
-- the node's own objects only, and saas.distribute_upgrade() (part 98) brings the shards and
-- the new tables up to date afterwards. With propagation on, Citus would send each command of
-- this script on a distributed table to the shards as the text it was given (for a statement
-- of an extension script, the whole script: "cannot insert multiple commands into a prepared
-- statement"), and run the update again on each worker inside this transaction, where the
-- script's writes of the reference tables are nested distributed queries that Citus refuses.
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
		IF EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d
					WHERE d.logicalrelid OPERATOR(pg_catalog.=) 'saas.users'::regclass)
		   AND pg_catalog.current_setting('citus.enable_ddl_propagation') OPERATOR(pg_catalog.=) 'on' THEN
			RAISE EXCEPTION 'pg_saas is distributed: update it on each node with citus.enable_ddl_propagation off'
				USING ERRCODE = '55000',
					  DETAIL = 'Citus would send this script''s commands to the shards as one statement and run the update again on each worker node inside this transaction.',
					  HINT = 'On the coordinator, then on each worker node: SET citus.enable_ddl_propagation = off; ALTER EXTENSION pg_saas UPDATE; then on the coordinator: SELECT * FROM saas.distribute_upgrade(); (docs/operations.md).';
		END IF;
	END IF;
END
$$;

-- Part 35: the rate-limit scopes the new routes count (before the new parts seed their rows).
-- On a distributed installation the seeded rows below go to every copy of rate_limits (a
-- reference table), which must take the new scopes first: on the coordinator the change is
-- sent to them (propagation on for these two statements, in EXECUTE so that Citus is given
-- each statement alone); each worker node's update changes its own table again, which is the
-- same change.
DO $$
DECLARE
	propagate boolean := false;
BEGIN
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
		propagate := (SELECT g.groupid OPERATOR(pg_catalog.=) 0 FROM pg_catalog.pg_dist_local_group g)
					 AND EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d
								  WHERE d.logicalrelid OPERATOR(pg_catalog.=) 'saas.rate_limits'::regclass);
	END IF;
	IF propagate THEN
		PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', 'on', true);
	END IF;
	EXECUTE 'ALTER TABLE saas.rate_limits DROP CONSTRAINT rate_limits_scope_check';
	EXECUTE $c$ALTER TABLE saas.rate_limits ADD CONSTRAINT rate_limits_scope_check CHECK (scope IN ('user', 'auth_ip', 'auth_email', 'webhook',
		'auth_refresh', 'reset_email', 'reset_ip', 'token_ip', 'token_id', 'invite_org', 'api_key'))$c$;
	IF propagate THEN
		PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', 'off', true);
	END IF;
END
$$;
