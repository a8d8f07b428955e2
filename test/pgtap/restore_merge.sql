-- Restores (extension/sql/96_restore.sql, docs/operations.md): the seeded configuration rows
-- merge with dumped ones only under session_replication_role = replica, which only a
-- superuser can set; otherwise an insert of an existing key fails as before, and the
-- application role can neither skip the triggers nor call the merge trigger function. A
-- data-only restore without the setting is refused at the first organization or user.
--
-- Needs: pgtap, pg_saas, and the role app (LOGIN, IN ROLE saas_api).
\set ON_ERROR_STOP 1
BEGIN;
SELECT plan(17);

SELECT is((SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'rate_limits_restore_merge'), 'A',
	'the rate limits'' merge trigger fires in every session_replication_role (ENABLE ALWAYS)');
SELECT is((SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'integrations_restore_merge'), 'A',
	'so does the integrations'' one');

-- Outside a restore: a duplicate key is refused as always.
SELECT throws_ok($$INSERT INTO saas.rate_limits VALUES ('free', 'user', 1, 1)$$, '23505', NULL,
	'outside a restore, an insert of an existing rate limit key fails (no silent merge)');
SELECT throws_ok($$INSERT INTO saas.integrations SELECT * FROM saas.integrations WHERE service = 'user-service'$$, '23505', NULL,
	'...and so does one of an existing integration');

-- The application role: cannot set the replica role, cannot run the trigger function.
SET LOCAL ROLE app;
SELECT throws_ok($$SET session_replication_role = replica$$, '42501', NULL,
	'saas_api cannot set session_replication_role (so it cannot skip the audit and rule triggers)');
SELECT is(has_function_privilege('saas._config_restore_merge()', 'EXECUTE'), false,
	'saas_api has no EXECUTE on the merge trigger function');
SELECT throws_ok($$INSERT INTO saas.rate_limits VALUES ('free', 'user', 1, 1)$$, '42501', NULL,
	'saas_api cannot write rate limits at all');
RESET ROLE;

-- A restore (as a superuser, replica): the dumped row replaces the seeded one; a new key is inserted.
SET LOCAL session_replication_role = replica;
SELECT lives_ok($$INSERT INTO saas.rate_limits VALUES ('free', 'user', 777, 77), ('starter', 'auth_ip', 5, 5)$$,
	'in a restore, dumped rate limits load over the seeded ones');
SELECT results_eq($$SELECT tier, scope, requests_per_minute, burst FROM saas.rate_limits
	WHERE (tier, scope) IN (('free', 'user'), ('starter', 'auth_ip')) ORDER BY 1, 2$$,
	$$VALUES ('free'::text, 'user'::text, 777, 77), ('starter', 'auth_ip', 5, 5)$$,
	'...the seeded row takes the dumped values, the new row is added');
SELECT is((SELECT count(*) FROM saas.rate_limits WHERE tier = 'free' AND scope = 'user'), 1::bigint,
	'...one row per key');
SELECT lives_ok($$INSERT INTO saas.integrations SELECT service, ref_key, name, 'http://10.0.0.1:9/v1', webhook_secret,
	event_types, max_retries, backoff_multiplier, base_backoff_ms, max_backoff_seconds, timeout_ms, max_in_flight,
	breaker_failure_rate, breaker_min_volume, breaker_window_seconds, breaker_reset_seconds, breaker_half_open_probes,
	requests_per_minute, burst_limit, sync_interval_seconds, retry_window_seconds, breaker_consecutive_failures,
	breaker_slow_call_ms, false FROM saas.integrations WHERE service = 'payment-service'$$,
	'in a restore, a dumped integration loads over the seeded one');
SELECT results_eq($$SELECT base_url, enabled, (SELECT count(*) FROM saas.integrations) FROM saas.integrations WHERE service = 'payment-service'$$,
	$$VALUES ('http://10.0.0.1:9/v1'::text, false, 3::bigint)$$,
	'...with its values, and still three integrations');
RESET session_replication_role;

-- A data-only restore without the setting (row_security off, triggers firing) is refused at
-- the first organization or user; with the setting the guard does not fire.
SET LOCAL row_security = off;
SELECT throws_ok($$INSERT INTO saas.organizations (name, slug) VALUES ('Restored', 'restored-guard')$$, '55000',
	'pg_saas cannot be restored with its triggers firing',
	'with row_security off and the triggers firing, inserting an organization is refused');
SELECT throws_ok($$INSERT INTO saas.users (org_id, email, first_name, last_name)
	VALUES (saas.platform_org_id(), 'guard@platform.test', 'G', 'R')$$, '55000', NULL,
	'...and so is inserting a user');
SELECT throws_ok($$INSERT INTO saas.jobs (org_id, service, kind, payload) SELECT id, 'user-service', 'x', '{}'
	FROM saas.organizations LIMIT 1$$, '55000', NULL,
	'...and so is inserting into any table pg_dump dumps (the job queue)');
SELECT is((SELECT count(*) FROM pg_trigger t JOIN pg_extension e ON t.tgrelid = ANY (e.extconfig)
	WHERE e.extname = 'pg_saas' AND t.tgname = 'restore_guard'),
	(SELECT count(*) FROM pg_extension e, unnest(e.extconfig) WHERE e.extname = 'pg_saas'),
	'every table pg_dump dumps has the guard');
SET LOCAL session_replication_role = replica;
SELECT lives_ok($$INSERT INTO saas.organizations (name, slug) VALUES ('Restored', 'restored-guard')$$,
	'in replica mode the guard does not fire');
RESET session_replication_role;
RESET row_security;

SELECT * FROM finish();
ROLLBACK;
