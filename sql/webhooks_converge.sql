-- State that converges (issue 9, part 5), after webhooks.sql (its helpers
-- t.wh and t.ev, and its super_admin root@wh.test):
-- 1. the data of every event type is checked at ingest: an event missing
--    what its type needs is listed in "rejected", the others are accepted;
-- 2. subscription.updated as the payment service sends it (data.changes)
--    changes the plan, the amount and the organization's tier;
-- 3. version (the ETag) moves only when a client-visible field changes: not
--    for a login, not for an update that writes the same values;
-- 4. relinking an organization to another reference resets its pull sync;
-- 5. deleting an organization enqueues, in the same transaction, the
--    removal of its users and the cancellation of its subscription at the
--    services; the jobs outlive the row, its pending calls go.
SET client_min_messages = warning;
SELECT t.register('cv-one', 'admin@cv-one.test') AS tok \gset
UPDATE saas.organizations
   SET external_ids = '{"user_service":"cv_001","payment_service":"cv_001","communication_service":"cv_001"}'
 WHERE slug = 'cv-one';
SELECT id AS org FROM saas.organizations WHERE slug = 'cv-one' \gset
-- t.apply_pending: apply an organization's pending events as the worker would (owner), in
-- the worker's order (t.apply_where, 00_setup.sql).
CREATE FUNCTION t.apply_pending(p_org uuid) RETURNS TABLE (event_id text, result text) LANGUAGE sql AS $$
	SELECT * FROM t.apply_where(format('e.org_id = %L AND e.applied_at IS NULL', p_org), 'e.occurred_at, e.event_id')
$$;

-- 1. Every event type against its schema.
SET ROLE regress_app;
SELECT t.wh('user-service', jsonb_build_array(
	t.ev('cv_u1', 'user.created', '2024-04-01T10:00:00Z', 'cv_001', '{}'),
	t.ev('cv_u2', 'user.created', '2024-04-01T10:00:00Z', 'cv_001', '{"user_id":"cv_ext_1"}'),
	t.ev('cv_u3', 'user.updated', '2024-04-01T10:00:00Z', 'cv_001', '{"user_id":"cv_ext_1","changes":"x"}'),
	t.ev('cv_u4', 'user.deleted', '2024-04-01T10:00:00Z', 'cv_001', '{"user_id":""}'),
	t.ev('cv_u5', 'user.activated', '2024-04-01T10:00:00Z', 'cv_001', '{"user_id":7}'),
	t.ev('cv_u6', 'user.deactivated', '2024-04-01T10:00:00Z', 'cv_001', '{"user_id":null}'),
	t.ev('cv_u7', 'user.created', '2024-04-01T10:00:00Z', 'cv_001',
		 '{"user_id":"cv_ext_1","email":"cv1@cv-one.test","first_name":"Cv","last_name":"One","department":"Any"}')
	)::text, 'msg_cv_users');
SELECT t.wh('payment-service', jsonb_build_array(
	t.ev('cv_p1', 'subscription.created', '2024-04-01T10:00:00Z', 'cv_001', '{}'),
	t.ev('cv_p2', 'subscription.created', '2024-04-01T10:00:00Z', 'cv_001', '{"subscription_id":"cv_sub","plan":"starter","amount":"a lot"}'),
	t.ev('cv_p3', 'subscription.updated', '2024-04-01T10:00:00Z', 'cv_001', '{"changes":{"plan":"enterprise"}}'),
	t.ev('cv_p4', 'subscription.canceled', '2024-04-01T10:00:00Z', 'cv_001', '{"plan":"starter"}'),
	t.ev('cv_p5', 'payment.succeeded', '2024-04-01T10:00:00Z', 'cv_001', '{"amount":5}'),
	t.ev('cv_p6', 'payment.failed', '2024-04-01T10:00:00Z', 'cv_001', '{"subscription_id":"cv_sub","amount":[1]}'),
	t.ev('cv_p7', 'invoice.created', '2024-04-01T10:00:00Z', 'cv_001', '{"invoice_id":"inv_1"}'),
	t.ev('cv_p8', 'subscription.created', '2024-04-01T10:00:00Z', 'cv_001',
		 '{"subscription_id":"cv_sub","customer_id":"cust_cv","plan":"starter","status":"active","amount":29,"currency":"USD"}')
	)::text, 'msg_cv_pay');
SELECT t.wh('communication-service', jsonb_build_array(
	t.ev('cv_c1', 'message.sent', '2024-04-01T10:00:00Z', 'cv_001', '{}'),
	t.ev('cv_c2', 'message.delivered', '2024-04-01T10:00:00Z', 'cv_001', '{"message_id":"m","template":{"name":"w"}}'),
	t.ev('cv_c3', 'message.bounced', '2024-04-01T10:00:00Z', 'cv_001', '{"recipient":"x@y.test"}'),
	t.ev('cv_c4', 'message.opened', '2024-04-01T10:00:00Z', 'cv_001', '{"message_id":"cv_msg"}')
	)::text, 'msg_cv_comm');
RESET ROLE;
-- Only the accepted events are stored, and they apply.
SELECT * FROM t.apply_pending(:'org');

-- 2. subscription.updated as the payment service sends it: what changed in
-- data.changes, what it was in data.previous_values, the status beside them.
SET ROLE regress_app;
SELECT t.wh('payment-service', t.ev('cv_p9', 'subscription.updated', '2024-04-01T11:00:00Z', 'cv_001',
	'{"subscription_id":"cv_sub","customer_id":"cust_cv","status":"active",
	  "changes":{"plan":"enterprise","amount":999.99},"previous_values":{"plan":"starter","amount":29}}')::text, 'msg_cv_upd');
RESET ROLE;
SELECT * FROM t.apply_pending(:'org');
SELECT subscription_ref, customer_ref, plan, status, amount, details ? 'changes' AS details_has_changes
  FROM saas.subscriptions WHERE org_id = :'org';
SELECT subscription_tier FROM saas.organizations WHERE id = :'org';

-- 3. version and updated_at: a login and a no-op update keep them.
SET ROLE regress_app;
SELECT status, headers ->> 'ETag' AS etag, body ->> 'id' AS uid FROM t.req('POST', '/users', :'tok',
	'{"email":"etag@cv-one.test","first_name":"Etag","last_name":"User","role":"user","password":"correct horse battery"}') \gset
SELECT :'status' AS create_status, :'etag' AS create_etag;
RESET ROLE;
SELECT updated_at AS created_updated_at FROM saas.users WHERE id = :'uid' \gset
SET ROLE regress_app;
SELECT saas.login('{"email":"etag@cv-one.test","password":"correct horse battery"}') ? 'token' AS logged_in;
RESET ROLE;
SELECT version, last_login IS NOT NULL AS has_last_login, updated_at = :'created_updated_at' AS same_updated_at
  FROM saas.users WHERE id = :'uid';
SET ROLE regress_app;
-- the ETag from the create still works after the login; a PUT of the same values keeps it
SELECT status, headers ->> 'ETag' AS etag FROM t.req('PUT', '/users/' || :'uid', :'tok',
	'{"first_name":"Etag"}', jsonb_build_object('if-match', :'etag'));
SELECT status, headers ->> 'ETag' AS etag FROM t.req('PUT', '/users/' || :'uid', :'tok',
	'{"first_name":"Changed"}', jsonb_build_object('if-match', :'etag'));
SELECT t.err('PUT', '/users/' || :'uid', :'tok', '{"first_name":"Again"}', jsonb_build_object('if-match', :'etag'));
RESET ROLE;
-- the audit records the change, not the login nor the no-op
SELECT count(*) AS audited_updates FROM saas.audit_log
 WHERE entity = 'user' AND entity_id = :'uid' AND action = 'update';
-- an event that changes nothing the client sees (department) keeps the version too
-- (the directory entry first, as the application's own SQL must on Citus: saas._dir_set,
-- a no-op on a single node, where the users trigger writes it)
SELECT 'written' AS directory_entry FROM saas._dir_set(:'org', :'uid', NULL, '{"user_service":"cv_ext_etag"}');
UPDATE saas.users SET external_user_ids = '{"user_service":"cv_ext_etag"}' WHERE id = :'uid';
SELECT version AS linked_version FROM saas.users WHERE id = :'uid';
SET ROLE regress_app;
SELECT t.wh('user-service', t.ev('cv_u8', 'user.updated', '2024-04-01T12:00:00Z', 'cv_001',
	'{"user_id":"cv_ext_etag","changes":{"department":"Sales"},"previous_values":{"department":"Product"}}')::text, 'msg_cv_noop');
RESET ROLE;
SELECT * FROM t.apply_pending(:'org');
SELECT version AS version_after_noop_event FROM saas.users WHERE id = :'uid';
-- organizations alike
SELECT version AS org_version FROM saas.organizations WHERE id = :'org' \gset
UPDATE saas.organizations SET name = name WHERE id = :'org';
SELECT version = :'org_version' AS org_version_kept FROM saas.organizations WHERE id = :'org';

-- 4. Relinking to another reference at the user service resets its sync;
-- changing another service's reference does not.
INSERT INTO saas.sync_state (org_id, service, last_sync, cursor_time)
VALUES (:'org', 'user-service', now(), '2024-04-01T00:00:00Z');
UPDATE saas.organizations SET external_ids = external_ids || '{"payment_service":"cv_001b"}' WHERE id = :'org';
SELECT count(*) AS sync_kept FROM saas.sync_state WHERE org_id = :'org';
UPDATE saas.organizations SET external_ids = external_ids || '{"user_service":"cv_001b"}' WHERE id = :'org';
SELECT count(*) AS sync_reset FROM saas.sync_state WHERE org_id = :'org';

-- 5. Deleting an organization. Its linked users and active subscription
-- are removed at the services through jobs of the deleting transaction.
SELECT t.register('cv-del', 'admin@cv-del.test') AS tok_del \gset
SELECT id AS del_org FROM saas.organizations WHERE slug = 'cv-del' \gset
SET ROLE regress_app;
SELECT status FROM t.req('POST', '/users', :'tok_del',
	'{"email":"linked@cv-del.test","first_name":"Linked","last_name":"User","role":"user","external_user_ids":{"user_service":"cv_del_u1"}}');
SELECT status FROM t.req('POST', '/users', :'tok_del',
	'{"email":"plain@cv-del.test","first_name":"Plain","last_name":"User","role":"user"}');
RESET ROLE;
INSERT INTO saas.subscriptions (org_id, subscription_ref, plan, status, last_event_at)
VALUES (:'del_org', 'cv_del_sub', 'starter', 'active', now()), (:'del_org', 'cv_del_old', 'starter', 'canceled', now());
SELECT kind, state, count(*) FROM saas.jobs WHERE org_id = :'del_org' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT (saas.login('{"email":"root@wh.test","password":"correct horse battery"}')) ->> 'token' AS tok_root \gset
-- rolled back: nothing enqueued, nothing lost
SET ROLE regress_app;
BEGIN;
SELECT status FROM t.req('DELETE', '/organizations/' || :'del_org', :'tok_root');
ROLLBACK;
RESET ROLE;
SELECT count(*) AS jobs_after_rollback FROM saas.jobs WHERE org_id = :'del_org';
SET ROLE regress_app;
SELECT status FROM t.req('DELETE', '/organizations/' || :'del_org', :'tok_root');
RESET ROLE;
SELECT count(*) AS org_left FROM saas.organizations WHERE id = :'del_org';
SELECT service, kind, payload ->> 'method' AS method, payload ->> 'path' AS path, state, idempotency_key LIKE 'user-delete:%' OR idempotency_key = 'subscription-cancel:cv_del_sub' AS key_ok
  FROM saas.jobs WHERE org_id = :'del_org' ORDER BY service, kind;
-- a call that created a user while the organization was being deleted is undone
SELECT saas._job_succeeded(:'del_org', saas.uuid_generate_v7(),
	'{"set_user_ref":"user_service","user_id":"00000000-0000-0000-0000-000000000001","from":"user_id"}',
	'{"status":"success","data":{"user_id":"cv_del_late"}}');
SELECT kind, payload ->> 'path' AS path FROM saas.jobs
 WHERE org_id = :'del_org' AND idempotency_key = 'user-delete:00000000-0000-0000-0000-000000000001';

-- 6. The echo of our own push: the user service's user.created for the
-- admin we created there arrives before its id was written back. The admin
-- is linked (its create job proves the platform made that remote user);
-- an admin with no such job would be a conflict (sql/rules.sql, TAP 110).
SELECT t.register('cv-echo', 'admin@cv-echo.test') AS tok_echo \gset
UPDATE saas.organizations SET external_ids = '{"user_service":"cv_echo"}' WHERE slug = 'cv-echo';
SELECT id AS echo_org FROM saas.organizations WHERE slug = 'cv-echo' \gset
SELECT count(*) AS create_job FROM saas.jobs
 WHERE org_id = :'echo_org' AND idempotency_key = 'user-create:' || t.claim(:'tok_echo', 'sub');
SET ROLE regress_app;
SELECT t.wh('user-service', t.ev('cv_echo_1', 'user.created', '2024-04-01T10:00:00Z', 'cv_echo',
	'{"user_id":"cv_echo_admin","email":"admin@cv-echo.test","first_name":"First","last_name":"Last"}')::text, 'msg_cv_echo');
RESET ROLE;
SELECT * FROM t.apply_pending(:'echo_org');
SELECT role, external_user_ids FROM saas.users WHERE org_id = :'echo_org';
-- Without the create job (say, pruned long ago) the same event is a conflict.
DELETE FROM saas.jobs WHERE org_id = :'echo_org';
SELECT 'written' AS directory_entries FROM saas._dir_set(:'echo_org', t.claim(:'tok_echo', 'sub')::uuid, NULL, '{}');
UPDATE saas.users SET external_user_ids = '{}' WHERE org_id = :'echo_org';
SET ROLE regress_app;
SELECT t.wh('user-service', t.ev('cv_echo_2', 'user.created', '2024-04-01T10:05:00Z', 'cv_echo',
	'{"user_id":"cv_echo_other","email":"admin@cv-echo.test","first_name":"Eve","last_name":"Intruder"}')::text, 'msg_cv_echo2');
RESET ROLE;
SELECT * FROM t.apply_pending(:'echo_org');
SELECT role, external_user_ids, first_name FROM saas.users WHERE org_id = :'echo_org';
