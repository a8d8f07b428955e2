--
-- AUDIT: every change to a tenant table is recorded by a trigger in the same
-- transaction (actor, role, action, entity, id, changed fields, request id);
-- the log is append-only for everyone but a superuser, only admins read it,
-- and each organization's hash chain exposes an edited, deleted or
-- reordered entry.
--
-- Fixed ids keep the output deterministic; times and hashes are never shown.
--
SET client_min_messages = warning;
\set A '01900000-0000-7000-8000-0000000000aa'
\set B '00000000-0000-0000-0000-000000000001'
\set alice '01900000-0000-7000-8000-000000000001'
\set bob '01900000-0000-7000-8000-000000000002'
\set carol '01900000-0000-7000-8000-000000000003'
\set dave '01900000-0000-7000-8000-000000000004'
\set eve '01900000-0000-7000-8000-000000000005'

-- Helpers (superuser only): tokens signed with the current key, as
-- saas.login would issue them; HMAC-SHA256 built on the core sha256().
CREATE SCHEMA regress_audit;
CREATE FUNCTION regress_audit.b64url(b bytea) RETURNS text LANGUAGE sql IMMUTABLE
	RETURN rtrim(translate(encode(b, 'base64'), E'+/\n', '-_'), '=');
CREATE FUNCTION regress_audit.hmac256(msg bytea, key bytea) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	k bytea := CASE WHEN length(key) > 64 THEN sha256(key) ELSE key END;
	ipad bytea;
	opad bytea;
BEGIN
	k := k || decode(repeat('00', 64 - length(k)), 'hex');
	ipad := k;
	opad := k;
	FOR i IN 0..63 LOOP
		ipad := set_byte(ipad, i, get_byte(k, i) # 54);
		opad := set_byte(opad, i, get_byte(k, i) # 92);
	END LOOP;
	RETURN sha256(opad || sha256(ipad || msg));
END
$$;
CREATE FUNCTION regress_audit.token(sub uuid, org uuid, role text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	k record;
	t bigint := extract(epoch FROM now())::bigint;
	si text;
BEGIN
	SELECT kid, secret INTO k FROM saas._signing_keys
	 WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1;
	si := regress_audit.b64url(convert_to(jsonb_build_object('alg', 'HS256', 'typ', 'JWT', 'kid', k.kid)::text, 'UTF8'))
		|| '.' || regress_audit.b64url(convert_to(jsonb_build_object(
			'iss', current_setting('saas.jwt_issuer'), 'aud', current_setting('saas.jwt_audience'),
			'sub', sub, 'org_id', org, 'role', role,
			'iat', t, 'nbf', t - 60, 'exp', t + 3600, 'jti', gen_random_uuid())::text, 'UTF8'));
	RETURN si || '.' || regress_audit.b64url(regress_audit.hmac256(convert_to(si, 'UTF8'), k.secret));
END
$$;
-- An application login role (member of saas_api), and a non-superuser role
-- with every privilege an owner has on the log and no row-level security
-- in its way: it stands for a table owner that is not a superuser.
-- LOGIN: on Citus a role that SET ROLE switches to is the user the workers are connected as.
CREATE ROLE regress_audit_app LOGIN IN ROLE saas_api;
CREATE ROLE regress_audit_owner LOGIN NOSUPERUSER BYPASSRLS;
GRANT USAGE ON SCHEMA saas TO regress_audit_owner;
GRANT ALL ON saas.audit_log, saas._audit_heads TO regress_audit_owner;

--
-- 1. A change without a tenant context (a superuser's SQL) is still
--    recorded, with no actor. Each organization has its own chain; an
--    organization is its own tenant root (org_id = its id).
--
INSERT INTO saas.organizations (id, name, slug) VALUES
	(:'A', 'Acme', 'audit-acme'), (:'B', 'Platform', 'platform');
-- (Their directory entries first, as the application's own SQL must on Citus:
-- saas._dir_set is a no-op on a single node, where the users trigger writes them.)
SELECT count(*) AS directory_entries
  FROM (VALUES (:'A', :'alice', 'alice@acme.test'), (:'A', :'bob', 'bob@acme.test'),
			   (:'B', :'carol', 'carol@beta.test'), (:'B', :'dave', 'dave@beta.test')) v(org_id, id, email),
	   LATERAL saas._dir_set(v.org_id::uuid, v.id::uuid, v.email, NULL);
INSERT INTO saas.users (org_id, id, email, first_name, last_name, role) VALUES
	(:'A', :'alice', 'alice@acme.test', 'Alice', 'Admin', 'admin'),
	(:'A', :'bob', 'bob@acme.test', 'Bob', 'User', 'user'),
	(:'B', :'carol', 'carol@beta.test', 'Carol', 'Admin', 'admin'),
	(:'B', :'dave', 'dave@beta.test', 'Dave', 'Operator', 'super_admin');
SELECT CASE org_id WHEN :'A' THEN 'A' WHEN :'B' THEN 'B' END AS org, seq, action, entity,
	   CASE entity_id WHEN :'A' THEN 'A' WHEN :'B' THEN 'B' WHEN :'alice' THEN 'alice'
		   WHEN :'bob' THEN 'bob' WHEN :'carol' THEN 'carol' WHEN :'dave' THEN 'dave' END AS entity_id,
	   actor_id IS NULL AS no_actor, actor_role IS NULL AS no_role, request_id IS NULL AS no_request
  FROM saas.audit_log WHERE org_id IN (:'A', :'B') ORDER BY org, seq;
-- create records the new row (timestamps left out here), never a secret.
SELECT changes - 'created_at' - 'updated_at' AS organization_created
  FROM saas.audit_log WHERE org_id = :'A' AND seq = 1;
SELECT changes - 'created_at' - 'updated_at' AS user_created
  FROM saas.audit_log WHERE org_id = :'A' AND seq = 3;
-- The chain: seq 1 links to 32 zero bytes, each entry to the one before.
SELECT bool_and(length(hash) = 32) AS hashes_are_sha256,
	   bool_and(prev_hash = CASE WHEN seq = 1 THEN '\x'::bytea || decode(repeat('00', 32), 'hex')
							  ELSE (SELECT p.hash FROM saas.audit_log p
									 WHERE p.org_id = l.org_id AND p.seq = l.seq - 1) END) AS linked
  FROM saas.audit_log l WHERE org_id IN (:'A', :'B');
SELECT CASE org_id WHEN :'A' THEN 'A' ELSE 'B' END AS org, last_seq,
	   last_hash = (SELECT hash FROM saas.audit_log l WHERE l.org_id = h.org_id AND l.seq = h.last_seq) AS head_is_last
  FROM saas._audit_heads h WHERE org_id IN (:'A', :'B') ORDER BY org;

SELECT regress_audit.token(:'alice', :'A', 'admin') AS tok_alice \gset
SELECT regress_audit.token(:'bob', :'A', 'user') AS tok_bob \gset
SELECT regress_audit.token(:'carol', :'B', 'admin') AS tok_carol \gset
SELECT regress_audit.token(:'dave', :'B', 'super_admin') AS tok_dave \gset

--
-- 2. Through the API role with a verified context: actor, role, request id
--    and only the changed fields, old and new.
--
SET ROLE regress_audit_app;
BEGIN;
SELECT saas.authenticate(:'tok_alice') ->> 'role' AS authenticated_as;
SET LOCAL saas.request_id = 'req-rename-bob';
UPDATE saas.users SET first_name = 'Robert', last_name = 'Builder' WHERE id = :'bob';
-- The entry is written when the transaction commits, as part of it.
SELECT count(*) AS entries_before_commit FROM saas.audit_log;
COMMIT;
BEGIN;
SELECT saas.authenticate(:'tok_alice') IS NOT NULL AS authenticated;
SELECT seq, actor_id = :'alice' AS actor_is_alice, actor_role, action, entity,
	   entity_id = :'bob' AS entity_is_bob, changes, request_id
  FROM saas.audit_log ORDER BY seq DESC LIMIT 1;
COMMIT;

-- A rolled-back change leaves no entry and does not move the chain.
BEGIN;
SELECT saas.authenticate(:'tok_alice') IS NOT NULL AS authenticated;
UPDATE saas.users SET first_name = 'Rolled' WHERE id = :'bob';
ROLLBACK;
BEGIN;
SELECT saas.authenticate(:'tok_alice') IS NOT NULL AS authenticated;
SELECT count(*) AS entries_after_rollback, max(seq) AS last_seq FROM saas.audit_log;

-- Bookkeeping-only updates are not logged: an update that changes nothing
-- but version and updated_at. (last_login is set by login only: an admin's
-- SQL cannot, see sql/rules.sql.)
UPDATE saas.users SET first_name = first_name WHERE id = :'bob';
SELECT count(*) AS entries_after_noise FROM saas.audit_log;
COMMIT;

-- Organization update; a user created and deleted by the admin. (Each in a
-- transaction of its own, and eve's directory entries written, and dropped,
-- first in theirs, as the application's own SQL must on Citus: there the
-- caller's context is checked again, as the owner, after the caller changed
-- the organization or a user, which Citus refuses in the same transaction,
-- 25001; docs/scale-out.md, "Not yet".)
BEGIN;
SELECT saas.authenticate(:'tok_alice') IS NOT NULL AS authenticated;
SET LOCAL saas.request_id = 'req-admin-work';
UPDATE saas.organizations SET name = 'Acme Corp' WHERE id = :'A';
COMMIT;
BEGIN;
SELECT saas.authenticate(:'tok_alice') IS NOT NULL AS authenticated;
SET LOCAL saas.request_id = 'req-admin-work';
SELECT 'written' AS eve_entries FROM saas._dir_set(:'A', :'eve', 'eve@acme.test', NULL);
INSERT INTO saas.users (org_id, id, email, first_name, last_name) VALUES (:'A', :'eve', 'eve@acme.test', 'Eve', 'Temp');
COMMIT;
BEGIN;
SELECT saas.authenticate(:'tok_alice') IS NOT NULL AS authenticated;
SET LOCAL saas.request_id = 'req-admin-work';
SELECT 'dropped' AS eve_entries FROM saas._dir_drop(:'A', :'eve');
DELETE FROM saas.users WHERE id = :'eve';
COMMIT;
BEGIN;
SELECT saas.authenticate(:'tok_alice') IS NOT NULL AS authenticated;
SELECT seq, actor_role, action, entity, request_id,
	   CASE WHEN action = 'update' THEN changes ELSE changes - 'created_at' - 'updated_at' END AS changes
  FROM saas.audit_log WHERE seq > 4 ORDER BY seq;
-- Within one transaction, entries keep the order of the changes.
SELECT bool_and(occurred_at >= coalesce(prev_at, '-infinity')) AS time_ordered
  FROM (SELECT occurred_at, lag(occurred_at) OVER (ORDER BY seq) AS prev_at FROM saas.audit_log) t;
COMMIT;

--
-- 3. GET /audit-logs as saas.list_audit_logs: admins only, newest first,
--    pages by cursor, filters; entries carry no hashes.
--
BEGIN;
SELECT saas.authenticate(:'tok_alice') IS NOT NULL AS authenticated;
SELECT array_agg(k ORDER BY k) AS entry_fields
  FROM jsonb_object_keys(saas.list_audit_logs() -> 'data' -> 0) k;
SELECT (SELECT array_agg((e ->> 'seq')::int) FROM jsonb_array_elements(r -> 'data') e) AS seqs,
	   r -> 'next_cursor' = 'null' AS last_page
  FROM saas.list_audit_logs() r;
SELECT (SELECT array_agg((e ->> 'seq')::int) FROM jsonb_array_elements(r -> 'data') e) AS first_page,
	   r ->> 'next_cursor' AS cursor
  FROM saas.list_audit_logs('{"limit": 3}') r \gset
SELECT :'first_page' AS first_page;
SELECT (SELECT array_agg((e ->> 'seq')::int) FROM jsonb_array_elements(r -> 'data') e) AS second_page,
	   r -> 'next_cursor' = 'null' AS last_page
  FROM saas.list_audit_logs(jsonb_build_object('limit', 3, 'cursor', :'cursor')) r;
SELECT (SELECT array_agg((e ->> 'seq')::int) FROM jsonb_array_elements(r -> 'data') e) AS org_updates
  FROM saas.list_audit_logs('{"entity": "organization", "action": "update"}') r;
SELECT (SELECT array_agg(e ->> 'action' ORDER BY (e ->> 'seq')::int) FROM jsonb_array_elements(r -> 'data') e) AS user_actions
  FROM saas.list_audit_logs('{"entity": "user"}') r;
SELECT jsonb_array_length(r -> 'data') AS since_2000
  FROM saas.list_audit_logs('{"since": "2000-01-01T00:00:00Z"}') r;
SELECT jsonb_array_length(r -> 'data') AS since_2999
  FROM saas.list_audit_logs('{"since": "2999-01-01T00:00:00.5+02:00"}') r;
SELECT e -> 'changes' AS rename_changes, e ->> 'request_id' AS request_id,
	   e ->> 'actor_id' = :'alice' AS actor_is_alice, e ->> 'occurred_at' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$' AS rfc3339
  FROM jsonb_array_elements(saas.list_audit_logs('{"action": "update", "entity": "user"}') -> 'data') e;
-- Bad parameters: 400 with the fields in the detail.
SAVEPOINT s;
SELECT saas.list_audit_logs('{"cursor": "not a cursor!"}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT saas.list_audit_logs('{"limit": 500}');
ROLLBACK TO s;
SELECT saas.list_audit_logs('{"sort": "seq"}');
ROLLBACK TO s;
SELECT saas.list_audit_logs('{"entity": "invoice", "action": "read", "since": "2024-02-30T00:00:00Z"}');
ROLLBACK TO s;
SELECT saas.list_audit_logs('{"since": "yesterday"}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
COMMIT;
-- The same through the REST entry point.
SELECT status, jsonb_array_length(body::jsonb -> 'data') AS entries,
	   body::jsonb -> 'next_cursor' <> 'null' AS has_next
  FROM saas.http('GET', '/audit-logs?limit=2&entity=user',
				 jsonb_build_object('authorization', 'Bearer ' || :'tok_alice'), NULL);

--
-- 4. Who can read: a plain user nothing; another organization's admin
--    nothing of this one; no context, nothing.
--
BEGIN;
SELECT saas.authenticate(:'tok_bob') ->> 'role' AS authenticated_as;
SELECT count(*) AS visible_to_user FROM saas.audit_log;
SAVEPOINT s;
SELECT saas.list_audit_logs();
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT * FROM saas.audit_verify(:'A');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

BEGIN;
SELECT saas.authenticate(:'tok_carol') ->> 'role' AS authenticated_as;
SELECT count(*) FILTER (WHERE org_id = :'A') AS other_org_visible,
	   count(*) FILTER (WHERE org_id = :'B') AS own_org_visible
  FROM saas.audit_log;
SELECT bool_and(e ->> 'org_id' = :'B') AS only_own_org, count(*) AS entries
  FROM jsonb_array_elements(saas.list_audit_logs() -> 'data') e;
SELECT ok, checked FROM saas.audit_verify(:'B');
SAVEPOINT s;
SELECT * FROM saas.audit_verify(:'A');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
COMMIT;

-- Over HTTP: a user is refused (403), a bad cursor is a 400, no token a 401.
SELECT status FROM saas.http('GET', '/audit-logs',
	jsonb_build_object('authorization', 'Bearer ' || :'tok_bob'), NULL);
SELECT status, body::jsonb -> 'error' -> 'details' AS details FROM saas.http('GET', '/audit-logs?cursor=%21%21',
	jsonb_build_object('authorization', 'Bearer ' || :'tok_alice'), NULL);
SELECT status FROM saas.http('GET', '/audit-logs', '{}', NULL);

-- A super_admin reads its own organization's log, and verifies any chain.
BEGIN;
SELECT saas.authenticate(:'tok_dave') ->> 'role' AS authenticated_as;
SELECT count(*) FILTER (WHERE org_id = :'A') AS other_org_visible FROM saas.audit_log;
SELECT ok, checked FROM saas.audit_verify(:'A');
COMMIT;

BEGIN;
SELECT count(*) AS visible_without_context FROM saas.audit_log;
SAVEPOINT s;
SELECT saas.list_audit_logs();
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT * FROM saas.audit_verify(:'A');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

--
-- 5. Append-only. saas_api has no privilege to write the log at all.
--
BEGIN;
SELECT saas.authenticate(:'tok_alice') IS NOT NULL AS authenticated;
SAVEPOINT s;
UPDATE saas.audit_log SET request_id = 'forged';
ROLLBACK TO s;
DELETE FROM saas.audit_log;
ROLLBACK TO s;
TRUNCATE saas.audit_log;
ROLLBACK TO s;
INSERT INTO saas.audit_log (org_id, seq, action, entity, prev_hash, hash)
	VALUES (:'A', 100, 'create', 'user', '\x00', '\x00');
ROLLBACK TO s;
SELECT * FROM saas._audit_heads;
ROLLBACK TO s;
COMMIT;
RESET ROLE;

-- A non-superuser with every table privilege and no RLS in the way is
-- refused by the triggers: no edit, delete, truncate, hand-made entry or
-- moved head.
SET ROLE regress_audit_owner;
-- (no CONTEXT lines: on Citus the refusals come from a worker node, "while executing command on" it)
\set SHOW_CONTEXT never
SELECT count(*) > 0 AS sees_entries FROM saas.audit_log WHERE org_id = :'A';
UPDATE saas.audit_log SET request_id = 'forged' WHERE org_id = :'A';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM saas.audit_log WHERE org_id = :'A';
TRUNCATE saas.audit_log;
INSERT INTO saas.audit_log SELECT * FROM saas.audit_log WHERE org_id = :'A' AND seq = 1;
UPDATE saas._audit_heads SET last_seq = last_seq - 1 WHERE org_id = :'A';
DELETE FROM saas._audit_heads WHERE org_id = :'A';
TRUNCATE saas._audit_heads;
\set SHOW_CONTEXT errors
RESET ROLE;

--
-- 6. Tamper evidence. A superuser can change the log (nothing stops it),
--    and saas.audit_verify finds each kind of change.
--
SELECT * FROM saas.audit_verify(:'A');
SELECT max(seq) AS last_a FROM saas.audit_log WHERE org_id = :'A' \gset
-- An edited entry: the rename of bob now claims another name.
UPDATE saas.audit_log SET changes = jsonb_set(changes, '{first_name,new}', '"Bobby"')
 WHERE org_id = :'A' AND seq = 4;
SELECT * FROM saas.audit_verify(:'A');
-- Put back exactly, the chain verifies again.
UPDATE saas.audit_log SET changes = jsonb_set(changes, '{first_name,new}', '"Robert"')
 WHERE org_id = :'A' AND seq = 4;
SELECT * FROM saas.audit_verify(:'A');
-- Any column counts: the actor, the request id.
UPDATE saas.audit_log SET actor_id = :'bob' WHERE org_id = :'A' AND seq = 5;
SELECT * FROM saas.audit_verify(:'A');
UPDATE saas.audit_log SET actor_id = :'alice' WHERE org_id = :'A' AND seq = 5;
UPDATE saas.audit_log SET request_id = NULL WHERE org_id = :'A' AND seq = 6;
SELECT * FROM saas.audit_verify(:'A');
UPDATE saas.audit_log SET request_id = 'req-admin-work' WHERE org_id = :'A' AND seq = 6;
SELECT ok FROM saas.audit_verify(:'A');
-- A deleted entry.
CREATE TEMP TABLE saved AS SELECT * FROM saas.audit_log WHERE org_id = :'A' AND seq = 3;
DELETE FROM saas.audit_log WHERE org_id = :'A' AND seq = 3;
SELECT * FROM saas.audit_verify(:'A');
-- A deleted entry whose successors were renumbered to close the gap.
UPDATE saas.audit_log SET seq = seq - 1 WHERE org_id = :'A' AND seq = 4;
SELECT * FROM saas.audit_verify(:'A');
UPDATE saas.audit_log SET seq = seq + 1 WHERE org_id = :'A' AND seq = 3;
INSERT INTO saas.audit_log SELECT * FROM saved;
SELECT ok FROM saas.audit_verify(:'A');
-- Two entries swapped.
UPDATE saas.audit_log SET seq = 1000 WHERE org_id = :'A' AND seq = 4;
UPDATE saas.audit_log SET seq = 4 WHERE org_id = :'A' AND seq = 5;
UPDATE saas.audit_log SET seq = 5 WHERE org_id = :'A' AND seq = 1000;
SELECT * FROM saas.audit_verify(:'A');
UPDATE saas.audit_log SET seq = 1000 WHERE org_id = :'A' AND seq = 4;
UPDATE saas.audit_log SET seq = 4 WHERE org_id = :'A' AND seq = 5;
UPDATE saas.audit_log SET seq = 5 WHERE org_id = :'A' AND seq = 1000;
SELECT ok FROM saas.audit_verify(:'A');
-- The newest entry deleted: the head still knows the chain's length.
TRUNCATE saved;
INSERT INTO saved SELECT * FROM saas.audit_log WHERE org_id = :'A' AND seq = :last_a;
DELETE FROM saas.audit_log WHERE org_id = :'A' AND seq = :last_a;
SELECT * FROM saas.audit_verify(:'A');
INSERT INTO saas.audit_log SELECT * FROM saved;
-- An entry added by hand after the last one: its hash cannot be right.
INSERT INTO saas.audit_log
	SELECT org_id, seq + 1, saas.uuid_generate_v7(), occurred_at, actor_id, actor_role, action,
		   entity, entity_id, changes, request_id, hash, hash
	  FROM saved;
SELECT * FROM saas.audit_verify(:'A');
DELETE FROM saas.audit_log WHERE org_id = :'A' AND seq = :last_a + 1;
-- The head moved back (as if the newest entry had been added around the
-- trigger), then pointed at another hash.
UPDATE saas._audit_heads h SET last_seq = last_seq - 1,
	   last_hash = (SELECT hash FROM saas.audit_log l WHERE l.org_id = h.org_id AND l.seq = h.last_seq - 1)
 WHERE org_id = :'A';
SELECT * FROM saas.audit_verify(:'A');
UPDATE saas._audit_heads h SET last_seq = last_seq + 1, last_hash = decode(repeat('ab', 32), 'hex')
 WHERE org_id = :'A';
SELECT * FROM saas.audit_verify(:'A');
UPDATE saas._audit_heads h
   SET last_hash = (SELECT hash FROM saas.audit_log l WHERE l.org_id = h.org_id AND l.seq = h.last_seq)
 WHERE org_id = :'A';
-- Restored, the chain is intact; another organization's chain never was touched.
SELECT * FROM saas.audit_verify(:'A');
SELECT * FROM saas.audit_verify(:'B');
-- An organization with no entries at all has an empty, intact chain.
SELECT * FROM saas.audit_verify('01900000-0000-7000-8000-0000000000ff');

--
-- 7. Any tenant table can be audited by the same trigger: entity name from
--    the table (or the trigger's argument), org_id column by default.
--    Columns that look like secrets are never recorded; numbers JSON
--    cannot hold become strings.
--
CREATE TABLE regress_audit.widgets (
	org_id uuid NOT NULL, id uuid NOT NULL, name text, price numeric, ratio float8,
	api_secret text, password_hash text, access_token text, updated_at timestamptz,
	PRIMARY KEY (org_id, id));
CREATE TRIGGER widgets_audit AFTER INSERT OR UPDATE OR DELETE ON regress_audit.widgets
	FOR EACH ROW EXECUTE FUNCTION saas._audit();
INSERT INTO regress_audit.widgets VALUES
	(:'B', :'eve', 'gear', 'NaN', '-Infinity', 's3cr3t', '$argon2id$x', 'tok', now());
UPDATE regress_audit.widgets SET api_secret = 'rotated', password_hash = 'other', updated_at = now();
UPDATE regress_audit.widgets SET price = 9.50, api_secret = 'again';
DELETE FROM regress_audit.widgets;
SELECT seq, action, entity, entity_id = :'eve' AS entity_is_row, changes - 'updated_at' AS changes
  FROM saas.audit_log WHERE org_id = :'B' AND entity = 'widget' ORDER BY seq;
SELECT ok FROM saas.audit_verify(:'B');

--
-- 8. Many entries in one transaction: a multi-row statement gets
--    consecutive seqs; a rolled-back savepoint leaves nothing and no gap.
--    Until commit the chain is what was committed before, and verifies.
--
SET ROLE regress_audit_app;
BEGIN;
SELECT saas.authenticate(:'tok_dave') ->> 'role' AS authenticated_as;
UPDATE saas.users SET last_name = last_name || '!' WHERE org_id = :'B';
SAVEPOINT s;
UPDATE saas.users SET first_name = 'Gone' WHERE id = :'carol';
ROLLBACK TO s;
UPDATE saas.users SET first_name = 'Caroline' WHERE id = :'carol';
-- (in a savepoint: on Citus, reading the chain as the owner after this transaction
-- wrote the organization's rows as the caller is refused, 25001; docs/scale-out.md)
SAVEPOINT v;
SELECT * FROM saas.audit_verify(:'B');
ROLLBACK TO SAVEPOINT v;
SAVEPOINT s2;
UPDATE saas.users SET first_name = 'Dave' WHERE id = :'dave';
UPDATE saas.users SET first_name = 'David' WHERE id = :'dave';
RELEASE SAVEPOINT s2;
COMMIT;
BEGIN;
SELECT saas.authenticate(:'tok_carol') IS NOT NULL AS authenticated;
SELECT seq, CASE entity_id WHEN :'carol' THEN 'carol' WHEN :'dave' THEN 'dave' END AS entity_id, changes
  FROM saas.audit_log WHERE seq > 6 ORDER BY seq;
COMMIT;
RESET ROLE;
SELECT last_seq FROM saas._audit_heads WHERE org_id = :'B';
SELECT * FROM saas.audit_verify(:'B');

--
-- 9. Deleting an organization cascades to its users; every delete is
--    recorded, and the log outlives the organization.
--
SET ROLE regress_audit_app;
BEGIN;
SELECT saas.authenticate(:'tok_dave') ->> 'role' AS authenticated_as;
SET LOCAL saas.request_id = 'req-offboard-acme';
DELETE FROM saas.organizations WHERE id = :'A';
COMMIT;
RESET ROLE;
SELECT action, entity, count(*) AS entries,
	   bool_and(actor_id = :'dave' AND actor_role = 'super_admin') AS by_dave,
	   bool_and(request_id = 'req-offboard-acme') AS request_id_kept
  FROM saas.audit_log WHERE org_id = :'A' AND seq > :last_a GROUP BY action, entity ORDER BY entity;
SELECT count(*) AS organizations_left FROM saas.organizations WHERE id = :'A';
SELECT * FROM saas.audit_verify(:'A');

--
-- Clean up (a superuser may delete entries: the guard lets it).
--
DELETE FROM saas.organizations WHERE id IN (:'A', :'B');
DELETE FROM saas.audit_log WHERE org_id IN (:'A', :'B');
DELETE FROM saas._audit_heads WHERE org_id IN (:'A', :'B');
DROP SCHEMA regress_audit CASCADE;
REVOKE ALL ON saas.audit_log, saas._audit_heads FROM regress_audit_owner;
REVOKE USAGE ON SCHEMA saas FROM regress_audit_owner;
DROP ROLE regress_audit_owner;
DROP ROLE regress_audit_app;
