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
