-- Webhook ingest (POST /webhooks/{service} through saas.http), applying the
-- ingested events (saas._apply_event, called here as the owner because the
-- worker does not serve the regress database), and the integration routes
-- GET /integrations/status, GET /jobs and POST /jobs/:id/retry.
--
-- Signatures are computed here with pgcrypto's hmac(), an implementation
-- independent of the extension's; the secrets are the documented defaults
-- (docs/sim.md), so this also checks what saas.integrations is seeded with.
-- Nothing printed depends on ids, clocks or request ids.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgcrypto;

-- t.wh_secret: the default whsec_ secret of a service.
CREATE FUNCTION t.wh_secret(service text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE service
		WHEN 'user-service' THEN 'whsec_dXNlcl93ZWJob29rX3NlY3JldF8xMjM='
		WHEN 'payment-service' THEN 'whsec_cGF5bWVudF93ZWJob29rX3NlY3JldF80NTY='
		WHEN 'communication-service' THEN 'whsec_ZW1haWxfd2ViaG9va19zZWNyZXRfNzg5' END
$$;

-- t.wh_sig: one Standard Webhooks v1 signature entry.
CREATE FUNCTION t.wh_sig(secret text, id text, ts text, body text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT 'v1,' || encode(hmac(convert_to(id || '.' || ts || '.' || body, 'UTF8'),
								decode(substr(secret, 7), 'base64'), 'sha256'), 'base64')
$$;

-- t.wh_headers: the headers of a correctly signed delivery, ts_off seconds from now.
CREATE FUNCTION t.wh_headers(service text, id text, body text, ts_off int DEFAULT 0, secret text DEFAULT NULL)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object('content-type', 'application/json', 'webhook-id', id,
							  'webhook-timestamp', ts,
							  'webhook-signature', t.wh_sig(coalesce(secret, t.wh_secret(service)), id, ts, body))
	  FROM (SELECT (extract(epoch FROM clock_timestamp())::bigint + ts_off)::text AS ts) x
$$;

-- t.wh_raw: POST /webhooks/{service} with the given headers; status and the
-- answer (202: the ingest result; otherwise the error code and message).
CREATE FUNCTION t.wh_raw(service text, headers jsonb, body text) RETURNS text LANGUAGE sql AS $$
	SELECT h.status || ' ' || CASE WHEN h.status = 202 THEN h.body
		ELSE coalesce(h.body::jsonb -> 'error' ->> 'code', '-') || ': ' || coalesce(h.body::jsonb -> 'error' ->> 'message', '') END
	  FROM saas.http('POST', '/webhooks/' || service, headers, body) h
$$;

-- t.wh: a correctly signed delivery; extra headers override the signed ones.
CREATE FUNCTION t.wh(service text, body text, id text DEFAULT 'msg_regress', extra jsonb DEFAULT '{}')
RETURNS text LANGUAGE sql AS $$
	SELECT t.wh_raw(service, t.wh_headers(service, id, body) || extra, body)
$$;

-- t.ev: an event as the services send it.
CREATE FUNCTION t.ev(id text, type text, ts text, org text, data jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('event_id', id, 'event_type', type, 'timestamp', ts, 'organization_id', org, 'data', data)
$$;

-- t.stored: how many events with this id are stored (read as the owner).
-- (PL/pgSQL, not SQL: Citus cannot plan a SQL function's parameters in a distributed query.)
CREATE FUNCTION t.stored(p_event text) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
	RETURN (SELECT count(*) FROM saas.webhook_events WHERE event_id = p_event);
END
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA t TO PUBLIC;

-- Two organizations linked to the three services as org_001 and org_002
-- (as in the reference data), a third one linked to nothing.
SELECT t.register('wh-one', 'admin@wh-one.test') AS tok1 \gset
SELECT t.register('wh-two', 'admin@wh-two.test') AS tok2 \gset
SELECT t.register('wh-three', 'admin@wh-three.test') AS tok3 \gset
UPDATE saas.organizations
   SET external_ids = '{"user_service":"org_001","payment_service":"org_001","communication_service":"org_001"}'
 WHERE slug = 'wh-one';
UPDATE saas.organizations
   SET external_ids = '{"user_service":"org_002","payment_service":"org_002","communication_service":"org_002"}'
 WHERE slug = 'wh-two';
-- Users that the reference events talk about (ext_user_12345 exists at the user service).
SELECT status FROM t.req('POST', '/users', :'tok1',
	'{"email":"john.smith@techcorp.com","first_name":"John","last_name":"Smith","role":"user","external_user_ids":{"user_service":"ext_user_12345"}}');
SELECT status FROM t.req('POST', '/users', :'tok1',
	'{"email":"former.employee@techcorp.com","first_name":"Former","last_name":"Employee","role":"user","external_user_ids":{"user_service":"ext_user_99999"}}');
SELECT status FROM t.req('POST', '/users', :'tok1',
	'{"email":"regular@wh-one.test","first_name":"Regular","last_name":"User","role":"user","password":"correct horse battery"}');
SELECT (saas.login('{"email":"regular@wh-one.test","password":"correct horse battery"}')) ->> 'token' AS tok_user \gset
SELECT saas.create_super_admin('root@wh.test', 'correct horse battery') IS NOT NULL AS super_admin;
SELECT (saas.login('{"email":"root@wh.test","password":"correct horse battery"}')) ->> 'token' AS tok_super \gset

SET ROLE regress_app;

-- 1. Shapes of a delivery: one event, an array, {"events":[...]}.
SELECT t.wh('user-service', t.ev('evt_single', 'user.created', '2024-02-15T10:00:00Z', 'org_001',
	'{"user_id":"ext_single","email":"single@techcorp.com","first_name":"Single","last_name":"Event"}')::text);
SELECT t.wh('user-service', jsonb_build_array(
	t.ev('evt_arr_1', 'user.activated', '2024-02-15T10:01:00Z', 'org_001', '{"user_id":"ext_single"}'),
	t.ev('evt_arr_2', 'user.deactivated', '2024-02-15T10:02:00Z', 'org_002', '{"user_id":"ext_other"}'))::text);
SELECT t.wh('user-service', jsonb_build_object('events', jsonb_build_array(
	t.ev('evt_bulk_1', 'user.activated', '2024-02-15T10:03:00Z', 'org_001', '{"user_id":"ext_single"}'),
	t.ev('evt_bulk_2', 'user.activated', '2024-02-15T10:04:00Z', 'org_001', '{"user_id":"ext_single"}'),
	t.ev('evt_bulk_3', 'user.activated', '2024-02-15T10:05:00Z', 'org_002', '{"user_id":"ext_other"}')))::text);
SELECT t.wh('user-service', '[]');
SELECT t.wh('user-service', '{"events":[]}');

-- 2. Duplicates: the same event again (a retried delivery), and twice in one batch.
SELECT t.wh('user-service', t.ev('evt_single', 'user.created', '2024-02-15T10:00:00Z', 'org_001',
	'{"user_id":"ext_single","email":"single@techcorp.com","first_name":"Single","last_name":"Event"}')::text, 'msg_retry');
SELECT t.wh('user-service', jsonb_build_array(
	t.ev('evt_twice', 'user.activated', '2024-02-15T10:06:00Z', 'org_001', '{"user_id":"ext_single"}'),
	t.ev('evt_twice', 'user.activated', '2024-02-15T10:06:00Z', 'org_001', '{"user_id":"ext_single"}'),
	t.ev('evt_arr_1', 'user.activated', '2024-02-15T10:01:00Z', 'org_001', '{"user_id":"ext_single"}'))::text);
SELECT t.stored('evt_single') AS evt_single, t.stored('evt_twice') AS evt_twice;
-- The same event id from another service is another event.
SELECT t.wh('payment-service', t.ev('evt_single', 'invoice.created', '2024-02-15T10:00:00Z', 'org_001',
	'{"invoice_id":"inv_1"}')::text);
SELECT t.stored('evt_single') AS evt_single_both_services;

-- 3. Rejected events are listed with their index; the others are accepted.
SELECT t.wh('user-service', jsonb_build_array(
	t.ev('evt_rej_ok', 'user.activated', '2024-02-15T10:07:00Z', 'org_001', '{"user_id":"ext_single"}'),
	t.ev('evt_rej_org', 'user.activated', '2024-02-15T10:07:00Z', 'org_999', '{"user_id":"ext_single"}'),
	t.ev('evt_rej_type', 'user.exploded', '2024-02-15T10:07:00Z', 'org_001', '{"user_id":"ext_single"}'),
	t.ev('evt_rej_othertype', 'subscription.created', '2024-02-15T10:07:00Z', 'org_001', '{"subscription_id":"s"}'),
	t.ev('evt_rej_ts', 'user.activated', 'yesterday', 'org_001', '{"user_id":"ext_single"}'),
	t.ev('evt_rej_field', 'user.activated', '2024-02-15T10:07:00Z', 'org_001', '{"user_id":"ext_single"}') || '{"extra":1}',
	t.ev('evt_rej_data', 'user.activated', '2024-02-15T10:07:00Z', 'org_001', '[1]'),
	'{"event_type":"user.activated","timestamp":"2024-02-15T10:07:00Z","organization_id":"org_001","data":{}}'::jsonb,
	'"not an object"'::jsonb,
	t.ev('evt_rej_meta', 'user.activated', '2024-02-15T10:07:00Z', 'org_001', '{}') || '{"metadata":"x"}',
	t.ev('evt_rej_month', 'user.activated', '2024-13-01T10:07:00Z', 'org_001', '{}'),
	t.ev('', 'user.activated', '2024-02-15T10:07:00Z', 'org_001', '{}'),
	t.ev('evt_rej_noorg', 'user.activated', '2024-02-15T10:07:00Z', '', '{}'),
	t.ev('evt_rej_ts_zone', 'user.activated', '2024-02-15 10:07:00', 'org_001', '{}'),
	t.ev('evt_meta_ok', 'user.activated', '2024-02-15T10:07:00.123+02:00', 'org_001', '{"user_id":"ext_single"}')
		|| '{"metadata":{"source":"hr_system"}}')::text, 'msg_rej') AS rej \gset
SELECT substr(:'rej', 1, 3) AS status, substr(:'rej', 5)::jsonb - 'rejected' AS counts;
SELECT r ->> 'index' AS index, r ->> 'event_id' AS event_id, r ->> 'error' AS error
  FROM jsonb_array_elements(substr(:'rej', 5)::jsonb -> 'rejected') r;
-- A timestamp that looks like RFC 3339 but is no date (February 30, a zone
-- offset out of range) is that event's problem: the rest of the batch is accepted.
SELECT t.wh('user-service', jsonb_build_array(
	t.ev('evt_date_ok', 'user.activated', '2024-02-15T10:07:00Z', 'org_001', '{"user_id":"ext_single"}'),
	t.ev('evt_date_feb30', 'user.activated', '2024-02-30T10:07:00Z', 'org_001', '{"user_id":"ext_single"}'),
	t.ev('evt_date_tz', 'user.activated', '2024-02-15T10:07:00+99:00', 'org_001', '{"user_id":"ext_single"}'))::text, 'msg_dates');
SELECT t.stored('evt_date_ok') AS evt_date_ok, t.stored('evt_date_feb30') AS evt_date_feb30;
-- An organization that no mapping knows (linked to nothing), and another service's reference.
SELECT t.wh('communication-service', t.ev('evt_unlinked', 'message.sent', '2024-02-15T10:00:00Z', 'wh-three',
	'{"message_id":"m"}')::text);
SELECT t.stored('evt_rej_ok') + t.stored('evt_meta_ok') AS accepted_rows, t.stored('evt_rej_org') + t.stored('evt_rej_type')
	 + t.stored('evt_rej_field') + t.stored('evt_rej_month') + t.stored('evt_unlinked') AS rejected_rows;

-- 4. Signatures: anything wrong is 401 and stores nothing.
\set body '{"event_id":"evt_sig","event_type":"user.activated","timestamp":"2024-02-15T10:08:00Z","organization_id":"org_001","data":{"user_id":"ext_single"}}'
-- signed with another secret, another service's secret, a tampered body, another webhook-id
SELECT t.wh_raw('user-service', t.wh_headers('user-service', 'msg_sig', :'body', 0, 'whsec_' || encode('not the secret', 'base64')), :'body');
SELECT t.wh_raw('user-service', t.wh_headers('payment-service', 'msg_sig', :'body'), :'body');
SELECT t.wh_raw('user-service', t.wh_headers('user-service', 'msg_sig', :'body'), replace(:'body', 'ext_single', 'ext_other'));
SELECT t.wh_raw('user-service', t.wh_headers('user-service', 'msg_sig', :'body') || '{"webhook-id":"msg_other"}', :'body');
-- timestamps: stale, in the future, not a number
SELECT t.wh_raw('user-service', t.wh_headers('user-service', 'msg_sig', :'body', -400), :'body');
SELECT t.wh_raw('user-service', t.wh_headers('user-service', 'msg_sig', :'body', 400), :'body');
SELECT t.wh_raw('user-service', t.wh_headers('user-service', 'msg_tol', replace(:'body', 'evt_sig', 'evt_sig_tol'), -240),
				replace(:'body', 'evt_sig', 'evt_sig_tol')) AS within_tolerance;
SELECT t.wh_raw('user-service', t.wh_headers('user-service', 'msg_sig2', :'body') || '{"webhook-timestamp":"soon"}', :'body');
-- missing headers
SELECT t.wh_raw('user-service', t.wh_headers('user-service', 'msg_sig', :'body') - 'webhook-signature', :'body');
SELECT t.wh_raw('user-service', t.wh_headers('user-service', 'msg_sig', :'body') - 'webhook-id', :'body');
SELECT t.wh_raw('user-service', t.wh_headers('user-service', 'msg_sig', :'body') - 'webhook-timestamp', :'body');
SELECT t.wh_raw('user-service', '{"content-type":"application/json"}', :'body');
-- signature lists: one valid v1 entry among others passes; other schemes and junk do not
SELECT t.wh_raw('user-service', h || jsonb_build_object('webhook-signature',
		'v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v1a,xyz ' || (h ->> 'webhook-signature') || ' v1,'),
	replace(:'body', 'evt_sig', 'evt_sig_multi'))
  FROM t.wh_headers('user-service', 'msg_multi', replace(:'body', 'evt_sig', 'evt_sig_multi')) h;
SELECT t.wh_raw('user-service', h || jsonb_build_object('webhook-signature', replace(h ->> 'webhook-signature', 'v1,', 'v2,')), :'body')
  FROM t.wh_headers('user-service', 'msg_sig', :'body') h;
SELECT t.wh_raw('user-service', h || jsonb_build_object('webhook-signature', 'v1,' || repeat('A', 500)), :'body')
  FROM t.wh_headers('user-service', 'msg_sig', :'body') h;
SELECT t.wh_raw('user-service', h || jsonb_build_object('webhook-signature', 'v1,!!!not base64!!!'), :'body')
  FROM t.wh_headers('user-service', 'msg_sig', :'body') h;
SELECT t.stored('evt_sig') AS evt_sig_stored, t.stored('evt_sig_multi') AS evt_sig_multi_stored,
	   t.stored('evt_sig_tol') AS evt_sig_tol_stored;

-- 5. The request itself: body, content type, service, method, size.
SELECT t.wh('user-service', '{"event_id": ');
SELECT t.wh('user-service', '"just a string"');
SELECT t.wh('user-service', '42');
SELECT t.wh('user-service', '{"events": {"event_id":"x"}}');
SELECT t.wh('user-service', '');
SELECT t.wh('user-service', :'body', 'msg_ct', '{"content-type":"text/plain"}');
SELECT t.wh('user-service', :'body', 'msg_ct', '{"content-type":"application/json; charset=utf-8"}') AS with_charset;
SELECT t.wh_raw('user-service', t.wh_headers('user-service', 'msg_ct', :'body') - 'content-type', :'body');
-- a disabled service takes no delivery (503), and nothing is stored
RESET ROLE;
UPDATE saas.integrations SET enabled = false WHERE service = 'user-service';
SET ROLE regress_app;
SELECT t.wh('user-service', replace(:'body', 'evt_sig', 'evt_disabled'), 'msg_disabled');
RESET ROLE;
UPDATE saas.integrations SET enabled = true WHERE service = 'user-service';
SET ROLE regress_app;
SELECT t.stored('evt_disabled') AS evt_disabled_stored;
SELECT t.wh('crm-service', :'body');
SELECT t.wh('user-service/extra', :'body');
SELECT h.status, h.headers ->> 'Allow' AS allow FROM saas.http('GET', '/webhooks/user-service', '{}', NULL) h;
SELECT h.status, h.body::jsonb -> 'error' -> 'details' AS details
  FROM saas.http('POST', '/webhooks/user-service?x=1', t.wh_headers('user-service', 'msg_q', :'body'), :'body') h;
-- over saas.max_body_bytes (1 MB by default), and more events than one delivery may carry
SELECT t.wh('user-service', '[' || repeat('{"event_id":"big","pad":"' || repeat('x', 1000) || '"},', 1100) || '{}]');
SELECT t.wh('user-service', '[' || repeat('{},', 5000) || '{}]');
SELECT t.stored('big') AS big_stored;
-- the SQL entry point answers the same way
SELECT saas.ingest_webhook('user-service', t.wh_headers('user-service', 'msg_sql', replace(:'body', 'evt_sig', 'evt_sql')),
							replace(:'body', 'evt_sig', 'evt_sql'));
SELECT saas.ingest_webhook('user-service', t.wh_headers('user-service', 'msg_sql', replace(:'body', 'evt_sig', 'evt_sql')),
							replace(:'body', 'evt_sig', 'evt_sql'));
\set VERBOSITY terse
SELECT saas.ingest_webhook('user-service', '{}', :'body');
SELECT saas.ingest_webhook('nobody', '{}', :'body');
\set VERBOSITY default

-- 6. The reference events (shared/reference-data/webhook_events.json), for
-- org_001 and org_002, plus a subscription for org_001's payment.failed and
-- out-of-order updates.
SELECT t.wh('user-service', '{"events":[
 {"event_type":"user.created","event_id":"evt_user_001","timestamp":"2024-02-15T10:30:00Z","organization_id":"org_001",
  "data":{"user_id":"ext_user_new_123","email":"new.employee@techcorp.com","first_name":"Alice","last_name":"Williams",
          "department":"Product","title":"Product Manager","status":"active","hire_date":"2024-02-15"},
  "metadata":{"source":"hr_system","version":"1.2","correlation_id":"hr_sync_456"}},
 {"event_type":"user.updated","event_id":"evt_user_002","timestamp":"2024-02-15T11:15:00Z","organization_id":"org_001",
  "data":{"user_id":"ext_user_12345","changes":{"department":"Engineering","title":"Senior Software Engineer","manager_id":"ext_user_67890"},
          "previous_values":{"department":"Product","title":"Software Engineer"}},
  "metadata":{"source":"hr_system","version":"1.2","correlation_id":"hr_update_789"}},
 {"event_type":"user.deleted","event_id":"evt_user_003","timestamp":"2024-02-15T12:00:00Z","organization_id":"org_001",
  "data":{"user_id":"ext_user_99999","email":"former.employee@techcorp.com","deletion_reason":"employment_terminated",
          "termination_date":"2024-02-14","data_retention_policy":"archive_30_days"},
  "metadata":{"source":"hr_system","version":"1.2","correlation_id":"hr_term_101"}}]}', 'msg_ref_user');
SELECT t.wh('payment-service', '[
 {"event_type":"subscription.created","event_id":"evt_pay_101","timestamp":"2024-02-15T09:00:00Z","organization_id":"org_002",
  "data":{"subscription_id":"sub_new_789","customer_id":"cust_startup_123","plan":"professional","status":"active",
          "billing_cycle":"monthly","amount":299.99,"currency":"USD","trial_end":"2024-03-15T23:59:59Z"},
  "metadata":{"source":"billing_system","version":"2.1","sales_rep":"rep_456"}},
 {"event_type":"subscription.created","event_id":"evt_pay_own_1","timestamp":"2024-02-01T09:00:00Z","organization_id":"org_001",
  "data":{"subscription_id":"sub_enterprise_456","customer_id":"cust_67890","plan":"enterprise","status":"active",
          "amount":999.99,"currency":"USD"}},
 {"event_type":"payment.failed","event_id":"evt_pay_102","timestamp":"2024-02-15T10:00:00Z","organization_id":"org_001",
  "data":{"payment_id":"pay_failed_789","subscription_id":"sub_enterprise_456","amount":999.99,"currency":"USD",
          "failure_reason":"insufficient_funds","failure_code":"card_declined","retry_at":"2024-02-18T10:00:00Z","attempt_number":2},
  "metadata":{"source":"payment_processor","version":"2.1","gateway":"stripe"}}]', 'msg_ref_pay');
SELECT t.wh('communication-service', '[
 {"event_type":"message.delivered","event_id":"evt_comm_201","timestamp":"2024-02-15T08:30:00Z","organization_id":"org_001",
  "data":{"message_id":"msg_welcome_001","recipient":"new.employee@techcorp.com","template":"employee_welcome","status":"delivered",
          "delivery_time_ms":1250,"esp_message_id":"esp_12345"},
  "metadata":{"source":"email_automation","version":"1.5","campaign_id":"onboarding_v2"}},
 {"event_type":"message.bounced","event_id":"evt_comm_202","timestamp":"2024-02-15T08:45:00Z","organization_id":"org_002",
  "data":{"message_id":"msg_notification_002","recipient":"invalid.email@nonexistent.com","template":"payment_failed",
          "bounce_reason":"recipient_not_found","bounce_type":"permanent","esp_bounce_code":"550"},
  "metadata":{"source":"transactional_email","version":"1.5","notification_type":"billing_alert"}}]', 'msg_ref_comm');
-- Out of order: the newer update arrives (and is applied) first, the older one after it.
SELECT t.wh('user-service', t.ev('evt_upd_new', 'user.updated', '2024-02-16T12:00:00Z', 'org_001',
	'{"user_id":"ext_user_12345","changes":{"first_name":"Johnny","status":"suspended"}}')::text, 'msg_upd_new');
SELECT t.wh('user-service', t.ev('evt_upd_old', 'user.updated', '2024-02-16T11:00:00Z', 'org_001',
	'{"user_id":"ext_user_12345","changes":{"first_name":"Jonathan","status":"active"}}')::text, 'msg_upd_old');
SELECT t.wh('payment-service', t.ev('evt_sub_old', 'subscription.updated', '2024-02-14T09:00:00Z', 'org_002',
	'{"subscription_id":"sub_new_789","plan":"starter","status":"active"}')::text, 'msg_sub_old');
-- Out of order the other way: an update of an entity arrives before its creation
-- (the sim's --shuffle does this). The creation must not be lost. (In org_002,
-- so that the jobs a created user enqueues do not change wh-one's counts below.)
SELECT t.wh('user-service', t.ev('evt_ooo_upd', 'user.updated', '2024-03-01T11:00:00Z', 'org_002',
	'{"user_id":"ext_ooo","changes":{"last_name":"Later"}}')::text, 'msg_ooo_1');
SELECT t.wh('user-service', t.ev('evt_ooo_cre', 'user.created', '2024-03-01T10:00:00Z', 'org_002',
	'{"user_id":"ext_ooo","email":"ooo@techcorp.com","first_name":"Early","last_name":"Bird"}')::text, 'msg_ooo_2');
SELECT t.wh('payment-service', t.ev('evt_ooo_pay', 'payment.succeeded', '2024-03-01T11:00:00Z', 'org_002',
	'{"payment_id":"pay_ooo","subscription_id":"sub_ooo","amount":49.99}')::text, 'msg_ooo_3');
SELECT t.wh('payment-service', t.ev('evt_ooo_sub', 'subscription.created', '2024-03-01T10:00:00Z', 'org_002',
	'{"subscription_id":"sub_ooo","customer_id":"cust_ooo","plan":"professional","status":"active","amount":299.99,"currency":"USD"}')::text, 'msg_ooo_4');
RESET ROLE;

-- What is stored: one row per event, mapped to the organization, not yet applied.
SELECT o.slug, e.service, e.event_id, e.event_type, e.occurred_at AT TIME ZONE 'UTC' AS occurred_utc, e.entity_ref,
	   e.applied_at IS NULL AS pending
  FROM saas.webhook_events e JOIN saas.organizations o ON o.id = e.org_id
 WHERE e.event_id ~ '^evt_(user_0|pay_|comm_|upd_|sub_)'
 ORDER BY e.occurred_at, e.event_id;
SELECT payload = t.ev('evt_upd_new', 'user.updated', '2024-02-16T12:00:00Z', 'org_001',
	'{"user_id":"ext_user_12345","changes":{"first_name":"Johnny","status":"suspended"}}') AS payload_is_the_event
  FROM saas.webhook_events WHERE event_id = 'evt_upd_new';

-- Apply them as the worker does, one at a time; the newer update (and the
-- newer subscription state) first, the older events after them.
SELECT * FROM t.apply_where($$e.event_id ~ '^evt_(user_0|pay_|comm_|upd_new)'$$, 'e.occurred_at, e.event_id');
SELECT * FROM t.apply_where($$e.event_id IN ('evt_upd_old', 'evt_sub_old')$$, 'e.event_id');
-- Applying again changes nothing.
SELECT apply_result AS again FROM t.apply_where($$e.event_id = 'evt_user_001'$$, 'e.event_id');
-- Update before creation, in arrival order: both entities exist afterwards.
SELECT count(*) AS applied
  FROM t.apply_where($$e.event_id IN ('evt_ooo_upd', 'evt_ooo_cre', 'evt_ooo_pay', 'evt_ooo_sub')$$,
					 'e.received_at, e.event_id');
SELECT count(*) AS ooo_user FROM saas.users WHERE email = 'ooo@techcorp.com';
SELECT count(*) AS ooo_subscription FROM saas.subscriptions WHERE subscription_ref = 'sub_ooo';
SELECT event_id, apply_result, applied_at IS NOT NULL AS applied
  FROM saas.webhook_events WHERE event_id IN ('evt_upd_old', 'evt_sub_old', 'evt_user_003') ORDER BY event_id;

-- The resulting state. (Called here outside the worker, the appliers' own
-- changes to users are pushed back to the user service as jobs: the worker
-- marks its changes as coming from the service, so that it does not.)
SELECT o.slug, u.email, u.first_name, u.last_name, u.role, u.status, u.external_user_ids
  FROM saas.users u JOIN saas.organizations o ON o.id = u.org_id
 WHERE o.slug = 'wh-one' AND u.email <> 'ooo@techcorp.com' ORDER BY u.email;
SELECT o.slug, s.subscription_ref, s.customer_ref, s.plan, s.status, s.billing_status, s.amount, s.currency,
	   s.last_event_at AT TIME ZONE 'UTC' AS last_event_utc, s.details ? 'payment_failed' AS has_failure
  FROM saas.subscriptions s JOIN saas.organizations o ON o.id = s.org_id
 WHERE o.slug LIKE 'wh-%' AND s.subscription_ref <> 'sub_ooo' ORDER BY o.slug, s.subscription_ref;
SELECT slug, subscription_tier FROM saas.organizations WHERE slug LIKE 'wh-%' ORDER BY slug;
SELECT o.slug, n.message_ref, n.kind, n.status, n.last_event_at AT TIME ZONE 'UTC' AS last_event_utc
  FROM saas.notifications n JOIN saas.organizations o ON o.id = n.org_id
 WHERE o.slug LIKE 'wh-%' ORDER BY o.slug, n.message_ref;
SELECT o.slug, v.service, v.entity_ref, v.last_event_at AT TIME ZONE 'UTC' AS last_event_utc
  FROM saas.entity_versions v JOIN saas.organizations o ON o.id = v.org_id
 WHERE o.slug LIKE 'wh-%' AND v.entity_ref NOT LIKE '%ooo' ORDER BY o.slug, v.service, v.entity_ref;

-- The tenants' view of the events: an admin sees its organization's, a user none, nobody without a token.
SET ROLE regress_app;
BEGIN;
SELECT saas.authenticate(:'tok2') IS NOT NULL AS authenticated;
SELECT service, event_id, apply_result FROM saas.webhook_events WHERE event_id NOT LIKE 'evt_ooo%' ORDER BY service, event_id;
SELECT subscription_ref, status FROM saas.subscriptions WHERE subscription_ref <> 'sub_ooo';
SELECT message_ref, status FROM saas.notifications;
COMMIT;
BEGIN;
SELECT saas.authenticate(:'tok_user') IS NOT NULL AS authenticated;
SELECT count(*) AS events_seen_by_a_user FROM saas.webhook_events;
COMMIT;
SELECT count(*) AS events_seen_without_context FROM saas.webhook_events;
RESET ROLE;

-- 7. GET /integrations/status. The worker does not serve this database:
-- the circuits are closed; the queue counts are the organization's jobs
-- (those the registrations and users above enqueued).
SET ROLE regress_app;
SELECT status, (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(body) k) AS services
  FROM t.req('GET', '/integrations/status', :'tok1');
SELECT s.key AS service, (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(s.value) k) AS fields,
	   s.value ->> 'status' AS status, s.value ->> 'circuit' AS circuit, s.value -> 'queued' AS queued,
	   s.value -> 'retrying' AS retrying, s.value -> 'dead' AS dead, s.value -> 'lastError' AS last_error,
	   s.value -> 'latencyMs' AS latency, s.value -> 'lastSync' AS last_sync
  FROM t.req('GET', '/integrations/status', :'tok1') r, jsonb_each(r.body) s ORDER BY s.key;
SELECT t.err('GET', '/integrations/status', :'tok_user');
SELECT t.err('GET', '/integrations/status');
SELECT t.err('GET', '/integrations/status', 'not.a.token');
SELECT t.err('POST', '/integrations/status', :'tok1', '{}');
SELECT t.err('GET', '/integrations/status?verbose=1', :'tok1');
SELECT t.err('GET', '/integrations', :'tok1');
-- super_admin: the queue of every organization
SELECT s.key AS service, (s.value -> 'queued')::int >= 3 AS all_orgs_counted
  FROM t.req('GET', '/integrations/status', :'tok_super') r, jsonb_each(r.body) s ORDER BY s.key;
RESET ROLE;
-- Retrying and dead jobs show in the status (set here by hand: no worker).
-- (The user is joined on org_id too, and its id cast to text with an immutable cast: Citus
-- plans a join of distributed tables only on it, and no stable function of a column in an UPDATE.)
UPDATE saas.jobs j SET state = 'dead', attempt = 4, last_error = 'HTTP 400: refused (not retryable)', finished_at = now()
  FROM saas.organizations o, saas.users u
 WHERE o.id = j.org_id AND o.slug = 'wh-one' AND j.service = 'user-service'
   AND u.org_id = j.org_id AND u.email = 'john.smith@techcorp.com' AND j.idempotency_key = 'user-create:' || u.id::text;
UPDATE saas.jobs j SET state = 'retryable', attempt = 1, run_at = now() + interval '1 hour'
  FROM saas.organizations o, saas.users u
 WHERE o.id = j.org_id AND o.slug = 'wh-one' AND j.service = 'communication-service'
   AND u.org_id = j.org_id AND u.email = 'john.smith@techcorp.com' AND j.idempotency_key = 'welcome:' || u.id::text;
SET ROLE regress_app;
SELECT s.key AS service, s.value ->> 'status' AS status, s.value -> 'queued' AS queued,
	   s.value -> 'retrying' AS retrying, s.value -> 'dead' AS dead
  FROM t.req('GET', '/integrations/status', :'tok1') r, jsonb_each(r.body) s ORDER BY s.key;
-- Another organization's status does not count wh-one's jobs.
SELECT s.key AS service, s.value ->> 'status' AS status, s.value -> 'retrying' AS retrying, s.value -> 'dead' AS dead
  FROM t.req('GET', '/integrations/status', :'tok2') r, jsonb_each(r.body) s ORDER BY s.key;
-- The SQL function checks the role itself.
\set VERBOSITY terse
SELECT saas.integration_status_json();
BEGIN;
SELECT saas.authenticate(:'tok_user') IS NOT NULL AS authenticated;
SELECT saas.integration_status_json();
ROLLBACK;
BEGIN;
SELECT saas.authenticate(:'tok1') IS NOT NULL AS authenticated;
SELECT (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(saas.integration_status_json()) k) AS services;
COMMIT;
\set VERBOSITY default
RESET ROLE;
-- The operators' view (owner only).
SELECT service, circuit, queued >= 3 AS queued_counted, retrying >= 1 AS retrying_counted, dead >= 1 AS dead_counted
  FROM saas.integration_status ORDER BY service;
SET ROLE regress_app;
\set VERBOSITY terse
SELECT count(*) FROM saas.integration_status;
\set VERBOSITY default
RESET ROLE;

-- 8. GET /jobs and POST /jobs/:id/retry.
SET ROLE regress_app;
SELECT j ->> 'service' AS service, j ->> 'kind' AS kind, j ->> 'state' AS state, j -> 'attempt' AS attempt,
	   j -> 'max_attempts' AS max_attempts
  FROM t.req('GET', '/jobs?limit=100', :'tok1') r, jsonb_array_elements(r.body -> 'data') j
 ORDER BY 1, 2, 3;
SELECT j ->> 'kind' AS kind, j ->> 'state' AS state, j ->> 'last_error' AS last_error
  FROM t.req('GET', '/jobs?state=dead', :'tok1') r, jsonb_array_elements(r.body -> 'data') j;
-- pages: limit and cursor walk every job once
WITH p1 AS (SELECT body FROM t.req('GET', '/jobs?limit=2', :'tok1')),
	 p2 AS (SELECT r.body FROM p1, t.req('GET', '/jobs?limit=2&cursor=' || (p1.body ->> 'next_cursor'), :'tok1') r)
SELECT jsonb_array_length(p1.body -> 'data') AS page1, jsonb_array_length(p2.body -> 'data') AS page2,
	   (p1.body -> 'data' -> 0 ->> 'id') <> (p2.body -> 'data' -> 0 ->> 'id') AS different
  FROM p1, p2;
SELECT t.err('GET', '/jobs?state=exploded', :'tok1');
SELECT t.err('GET', '/jobs?cursor=garbage', :'tok1');
SELECT t.err('GET', '/jobs?colour=red', :'tok1');
SELECT t.err('GET', '/jobs', :'tok_user');
SELECT t.err('GET', '/jobs');
SELECT t.err('DELETE', '/jobs', :'tok1');
-- another organization sees none of wh-one's jobs
SELECT count(*) FILTER (WHERE j ->> 'state' = 'dead') AS dead_seen_by_wh_two
  FROM t.req('GET', '/jobs?limit=100', :'tok2') r, jsonb_array_elements(r.body -> 'data') j;
RESET ROLE;
SELECT j.id AS dead_job FROM saas.jobs j JOIN saas.organizations o ON o.id = j.org_id
 WHERE o.slug = 'wh-one' AND j.state = 'dead' \gset
SELECT j.id AS retryable_job FROM saas.jobs j JOIN saas.organizations o ON o.id = j.org_id
 WHERE o.slug = 'wh-one' AND j.state = 'retryable' \gset
SELECT j.id AS other_job FROM saas.jobs j JOIN saas.organizations o ON o.id = j.org_id
 WHERE o.slug = 'wh-two' ORDER BY j.id LIMIT 1 \gset
SET ROLE regress_app;
SELECT t.err('POST', '/jobs/' || :'dead_job' || '/retry', :'tok_user');
SELECT t.err('POST', '/jobs/' || :'dead_job' || '/retry');
SELECT t.err('POST', '/jobs/' || :'dead_job' || '/retry', :'tok2');
SELECT t.err('POST', '/jobs/' || :'other_job' || '/retry', :'tok1');
SELECT t.err('POST', '/jobs/' || :'retryable_job' || '/retry', :'tok1');
SELECT t.err('POST', '/jobs/not-a-uuid/retry', :'tok1');
SELECT t.err('POST', '/jobs/00000000-0000-0000-0000-000000000000/retry', :'tok1');
SELECT t.err('GET', '/jobs/' || :'dead_job' || '/retry', :'tok1');
SELECT t.err('POST', '/jobs/' || :'dead_job' || '/retry?now=1', :'tok1');
SELECT r.status, r.body - 'id' AS body, r.body ->> 'id' = :'dead_job' AS same_job
  FROM t.req('POST', '/jobs/' || :'dead_job' || '/retry', :'tok1') r;
SELECT t.err('POST', '/jobs/' || :'dead_job' || '/retry', :'tok1') AS second_retry;
RESET ROLE;
SELECT state, attempt, last_error, finished_at IS NULL AS unfinished, run_at <= now() AS due
  FROM saas.jobs WHERE id = :'dead_job';
-- The owner may retry any organization's dead job through SQL.
UPDATE saas.jobs SET state = 'dead', attempt = 6 WHERE id = :'other_job';
SELECT saas.retry_job(:'other_job') - 'id' AS owner_retry;
-- Unchanged by the refused attempts.
SELECT state, attempt FROM saas.jobs WHERE id = :'retryable_job';

-- One name per service: saas.integrations is the source. The C code's list of
-- services (the breakers' slots) agrees with it, and a job names a service of it.
SELECT (SELECT array_agg(service ORDER BY service) FROM saas._breaker_status())
     = (SELECT array_agg(service ORDER BY service) FROM saas.integrations) AS c_list_matches_table;
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
 WHERE conrelid = 'saas.jobs'::regclass AND conname LIKE '%service%';
