-- Part 60: integrations. The external services (seeded from the reference
-- integration_config.json, base URLs pointing at saas-sim), ingested webhook
-- events (idempotent by service and event id, applied by the worker), the
-- job queue of outbound calls, and the state the events change.

CREATE TABLE saas.integrations (
	service						text		NOT NULL,
	ref_key						text		NOT NULL,
	name						text		NOT NULL,
	base_url					text		NOT NULL,
	webhook_secret				text		NOT NULL,
	event_types					text[]		NOT NULL,
	max_retries					integer		NOT NULL,
	backoff_multiplier			float8		NOT NULL,
	base_backoff_ms				integer		NOT NULL DEFAULT 500,
	max_backoff_seconds			integer		NOT NULL,
	timeout_ms					integer		NOT NULL DEFAULT 5000,
	max_in_flight				integer		NOT NULL DEFAULT 32,
	breaker_failure_rate		float8		NOT NULL DEFAULT 0.5,
	breaker_min_volume			integer		NOT NULL DEFAULT 10,
	breaker_window_seconds		integer		NOT NULL DEFAULT 30,
	breaker_reset_seconds		integer		NOT NULL DEFAULT 10,
	breaker_half_open_probes	integer		NOT NULL DEFAULT 3,
	requests_per_minute			integer		NOT NULL,
	burst_limit					integer		NOT NULL,
	sync_interval_seconds		integer		NOT NULL DEFAULT 300,
	retry_window_seconds		integer		NOT NULL DEFAULT 259200,
	breaker_consecutive_failures integer	NOT NULL DEFAULT 5,
	breaker_slow_call_ms		integer		NOT NULL DEFAULT 0,
	enabled						boolean		NOT NULL DEFAULT true,
	CONSTRAINT integrations_pkey PRIMARY KEY (service),
	CONSTRAINT integrations_ref_key_key UNIQUE (ref_key),
	-- The services the C code keeps shared memory slots for (src/common/services.c);
	-- every other column that names a service references this table.
	CONSTRAINT integrations_service_check CHECK (service IN ('user-service', 'payment-service', 'communication-service')),
	CONSTRAINT integrations_secret_check CHECK (webhook_secret LIKE 'whsec\_%'),
	CONSTRAINT integrations_retry_check CHECK (max_retries BETWEEN 0 AND 100 AND backoff_multiplier >= 1
		AND base_backoff_ms BETWEEN 1 AND 600000 AND max_backoff_seconds BETWEEN 1 AND 86400),
	CONSTRAINT integrations_breaker_check CHECK (breaker_failure_rate > 0 AND breaker_failure_rate <= 1
		AND breaker_min_volume >= 1 AND breaker_window_seconds >= 1 AND breaker_reset_seconds >= 1
		AND breaker_half_open_probes >= 1),
	CONSTRAINT integrations_limits_check CHECK (timeout_ms BETWEEN 10 AND 600000 AND max_in_flight BETWEEN 1 AND 1024),
	CONSTRAINT integrations_resilience_check CHECK (retry_window_seconds BETWEEN 0 AND 2592000
		AND breaker_consecutive_failures >= 1 AND breaker_slow_call_ms >= 0)
);
COMMENT ON TABLE saas.integrations IS
	'External services: base URL, webhook secret (Standard Webhooks whsec_...), retry policy, circuit breaker and rate limit. Owner only: holds secrets.';
COMMENT ON COLUMN saas.integrations.ref_key IS 'Key of the service in organizations.external_ids and users.external_user_ids.';
COMMENT ON COLUMN saas.integrations.retry_window_seconds IS
	'A failing job is retried until both its attempts are spent and this long has passed since it was enqueued (default 3 days).';
COMMENT ON COLUMN saas.integrations.breaker_consecutive_failures IS
	'The circuit also opens after this many failures in a row, whatever the volume.';
COMMENT ON COLUMN saas.integrations.breaker_slow_call_ms IS
	'A call that succeeds but takes longer counts as a failure for the breaker (0: off).';
ALTER TABLE saas.integrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas.integrations FORCE ROW LEVEL SECURITY;
CREATE POLICY integrations_owner ON saas.integrations USING (true);
CREATE TRIGGER integrations_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON saas.integrations
	FOR EACH STATEMENT EXECUTE FUNCTION saas._signing_keys_changed();

-- Defaults from integration_config.json; secrets are whsec_ + base64(secret_key).
INSERT INTO saas.integrations (service, ref_key, name, base_url, webhook_secret, event_types,
							   max_retries, backoff_multiplier, max_backoff_seconds, requests_per_minute, burst_limit)
VALUES
	('user-service', 'user_service', 'User Management Service', 'http://127.0.0.1:4001/v1',
	 'whsec_' || pg_catalog.encode(pg_catalog.convert_to('user_webhook_secret_123', 'UTF8'), 'base64'),
	 '{user.created,user.updated,user.deleted,user.activated,user.deactivated}', 3, 2, 300, 100, 20),
	('payment-service', 'payment_service', 'Payment Processor', 'http://127.0.0.1:4002/v2',
	 'whsec_' || pg_catalog.encode(pg_catalog.convert_to('payment_webhook_secret_456', 'UTF8'), 'base64'),
	 '{subscription.created,subscription.updated,subscription.canceled,payment.succeeded,payment.failed,invoice.created}', 5, 1.5, 600, 60, 10),
	('communication-service', 'communication_service', 'Email & Notification Service', 'http://127.0.0.1:4003/v1',
	 'whsec_' || pg_catalog.encode(pg_catalog.convert_to('email_webhook_secret_789', 'UTF8'), 'base64'),
	 '{message.sent,message.delivered,message.bounced,message.clicked,message.opened}', 2, 2, 120, 200, 50);
SELECT pg_catalog.pg_extension_config_dump('saas.integrations', '');

-- Organizations are found by their reference at each service.
CREATE INDEX organizations_ref_user_idx ON saas.organizations ((external_ids ->> 'user_service'));
CREATE INDEX organizations_ref_payment_idx ON saas.organizations ((external_ids ->> 'payment_service'));
CREATE INDEX organizations_ref_comm_idx ON saas.organizations ((external_ids ->> 'communication_service'));
CREATE INDEX users_ref_user_idx ON saas.users (org_id, (external_user_ids ->> 'user_service'));

-- Ingested events: the primary key is the idempotency key (per organization,
-- Citus-ready). The worker applies them in timestamp order per entity.
CREATE TABLE saas.webhook_events (
	org_id			uuid		NOT NULL,
	service			text		NOT NULL,
	event_id		text		NOT NULL,
	event_type		text		NOT NULL,
	occurred_at		timestamptz	NOT NULL,
	entity_ref		text,
	payload			jsonb		NOT NULL,
	received_at		timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	applied_at		timestamptz,
	apply_result	text,
	CONSTRAINT webhook_events_pkey PRIMARY KEY (org_id, service, event_id),
	CONSTRAINT webhook_events_org_fkey FOREIGN KEY (org_id) REFERENCES saas.organizations (id) ON DELETE CASCADE
);
CREATE INDEX webhook_events_pending_idx ON saas.webhook_events (received_at) WHERE applied_at IS NULL;
COMMENT ON TABLE saas.webhook_events IS
	'Webhook events accepted from the external services, once each by (service, event_id); applied_at is set when the worker has applied them.';

-- What the payment and communication services tell us.
CREATE TABLE saas.subscriptions (
	org_id			uuid		NOT NULL,
	subscription_ref text		NOT NULL,
	customer_ref	text,
	plan			text,
	status			text		NOT NULL,
	billing_status	text,
	amount			numeric,
	currency		text,
	last_event_at	timestamptz	NOT NULL,
	updated_at		timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	details			jsonb		NOT NULL DEFAULT '{}',
	CONSTRAINT subscriptions_pkey PRIMARY KEY (org_id, subscription_ref),
	CONSTRAINT subscriptions_org_fkey FOREIGN KEY (org_id) REFERENCES saas.organizations (id) ON DELETE CASCADE
);
COMMENT ON TABLE saas.subscriptions IS 'Subscription and billing state per organization, from payment-service events.';

CREATE TABLE saas.notifications (
	org_id			uuid		NOT NULL,
	message_ref		text		NOT NULL,
	user_id			uuid,
	kind			text,
	status			text		NOT NULL,
	last_event_at	timestamptz	NOT NULL,
	updated_at		timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	details			jsonb		NOT NULL DEFAULT '{}',
	CONSTRAINT notifications_pkey PRIMARY KEY (org_id, message_ref),
	CONSTRAINT notifications_org_fkey FOREIGN KEY (org_id) REFERENCES saas.organizations (id) ON DELETE CASCADE
);
COMMENT ON TABLE saas.notifications IS 'Messages sent through the communication service and their delivery state.';

-- Per user: the time of the newest applied event, so an older one never overwrites newer state.
CREATE TABLE saas.entity_versions (
	org_id			uuid		NOT NULL,
	service			text		NOT NULL,
	entity_ref		text		NOT NULL,
	last_event_at	timestamptz	NOT NULL,
	CONSTRAINT entity_versions_pkey PRIMARY KEY (org_id, service, entity_ref),
	CONSTRAINT entity_versions_org_fkey FOREIGN KEY (org_id) REFERENCES saas.organizations (id) ON DELETE CASCADE
);
COMMENT ON TABLE saas.entity_versions IS 'Newest event time applied per external entity: older events do not overwrite newer state.';

-- The queue of outbound calls.
CREATE TABLE saas.jobs (
	org_id			uuid		NOT NULL,
	id				uuid		NOT NULL DEFAULT saas.uuid_generate_v7(),
	service			text		NOT NULL,
	kind			text		NOT NULL,
	payload			jsonb		NOT NULL DEFAULT '{}',
	state			text		NOT NULL DEFAULT 'available',
	attempt			integer		NOT NULL DEFAULT 0,
	max_attempts	integer		NOT NULL DEFAULT 4,
	run_at			timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	lease_until		timestamptz,
	lease_owner		bigint,
	last_error		text,
	last_status		integer,
	idempotency_key	text		NOT NULL,
	created_at		timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	updated_at		timestamptz	NOT NULL DEFAULT pg_catalog.now(),
	finished_at		timestamptz,
	CONSTRAINT jobs_pkey PRIMARY KEY (org_id, id),
	CONSTRAINT jobs_idempotency_key UNIQUE (org_id, idempotency_key),
	-- No foreign key to organizations: the calls that clean up after a deleted
	-- organization (70_jobs.sql, organizations_outbound) must outlive its row.
	CONSTRAINT jobs_state_check CHECK (state IN ('available', 'running', 'retryable', 'succeeded', 'dead')),
	CONSTRAINT jobs_service_fkey FOREIGN KEY (service) REFERENCES saas.integrations (service)
);
-- The claim reads one service's due jobs in run_at order.
CREATE INDEX jobs_due_idx ON saas.jobs (service, run_at) WHERE state IN ('available', 'retryable');
-- Fair claims walk the organizations with queued jobs, then each one's due jobs in run_at order.
CREATE INDEX jobs_fair_idx ON saas.jobs (service, org_id, run_at) WHERE state IN ('available', 'retryable');
-- Queue counts of the status and expired leases (state = 'running'); finished jobs leave it,
-- so a job's last update adds no entry here.
CREATE INDEX jobs_state_service_idx ON saas.jobs (state, service) WHERE state <> 'succeeded';
COMMENT ON TABLE saas.jobs IS
	'Outbound calls to external services: claimed by the worker with FOR UPDATE SKIP LOCKED and a lease, retried with backoff, dead after max_attempts and the retry window.';
COMMENT ON COLUMN saas.jobs.lease_owner IS
	'Incarnation of the worker that holds the lease: a restarted worker takes over its predecessor''s running jobs at once.';

-- Sync bookkeeping and breaker history.
CREATE TABLE saas.sync_state (
	org_id			uuid		NOT NULL,
	service			text		NOT NULL,
	last_sync		timestamptz,
	cursor_time		timestamptz,
	CONSTRAINT sync_state_pkey PRIMARY KEY (org_id, service),
	CONSTRAINT sync_state_org_fkey FOREIGN KEY (org_id) REFERENCES saas.organizations (id) ON DELETE CASCADE
);
COMMENT ON TABLE saas.sync_state IS 'Pull sync per organization and service: lastSync moves only when a sync completes.';

CREATE TABLE saas._breaker_events (
	id				bigint		GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	service			text		NOT NULL,
	from_state		text		NOT NULL,
	to_state		text		NOT NULL,
	reason			text,
	at				timestamptz	NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
COMMENT ON TABLE saas._breaker_events IS 'Every circuit breaker transition, recorded by the worker (private).';

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['webhook_events', 'subscriptions', 'notifications', 'entity_versions', 'jobs', 'sync_state'] LOOP
		EXECUTE pg_catalog.format('ALTER TABLE saas.%I ENABLE ROW LEVEL SECURITY', t);
		EXECUTE pg_catalog.format('ALTER TABLE saas.%I FORCE ROW LEVEL SECURITY', t);
		-- Read by admins of the organization; written by the extension's own code (owner).
		EXECUTE pg_catalog.format(
			'CREATE POLICY %I ON saas.%I FOR SELECT USING (org_id OPERATOR(pg_catalog.=) saas.current_org_id() '
			'AND saas.current_role() OPERATOR(pg_catalog.=) ANY (ARRAY[''admin'', ''super_admin'']))',
			t || '_admin_read', t);
		EXECUTE pg_catalog.format('SELECT pg_catalog.pg_extension_config_dump(''saas.%I'', '''')', t);
	END LOOP;
END
$$;
ALTER TABLE saas._breaker_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas._breaker_events FORCE ROW LEVEL SECURITY;
CREATE POLICY breaker_events_owner ON saas._breaker_events USING (true);

GRANT SELECT ON saas.webhook_events, saas.subscriptions, saas.notifications, saas.jobs, saas.sync_state TO saas_api;

CREATE FUNCTION saas.ingest_webhook(service text, headers jsonb, body text) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_sql_ingest_webhook' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.ingest_webhook(text, jsonb, text) IS
	'POST /webhooks/{service}: verifies the Standard Webhooks signature, stores each new event once, reports duplicates and rejections.';
