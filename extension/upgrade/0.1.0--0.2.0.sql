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

-- Part 35: the rate-limit scopes the new routes count (before the new parts seed their rows).
ALTER TABLE saas.rate_limits DROP CONSTRAINT rate_limits_scope_check;
ALTER TABLE saas.rate_limits ADD CONSTRAINT rate_limits_scope_check CHECK (scope IN ('user', 'auth_ip', 'auth_email', 'webhook',
		'auth_refresh', 'reset_email', 'reset_ip', 'token_ip', 'token_id', 'invite_org', 'api_key'));
