-- The dashboard's SQL (extension/sql/92_dashboard.sql): who may run what, and the database
-- as the guard whatever the path. saas._call_history is the owner's; the two public functions
-- check the role themselves, and the webhook events are read through row-level security.
--
-- Needs: pgtap, pg_saas, and the role app (LOGIN, IN ROLE saas_api).
\set ON_ERROR_STOP 1

SELECT plan(22);

SELECT substr(md5(random()::text), 1, 8) AS run \gset

SELECT r->>'token' AS tok_a, r->'organization'->>'id' AS org_a
  FROM saas.register(jsonb_build_object(
	'organization', jsonb_build_object('name', 'Dash A ' || :'run'),
	'email', 'a-' || :'run' || '@dash.test', 'password', 'correct horse battery A',
	'first_name', 'Ada', 'last_name', 'Admin')) r \gset
SELECT r->>'token' AS tok_b, r->'organization'->>'id' AS org_b
  FROM saas.register(jsonb_build_object(
	'organization', jsonb_build_object('name', 'Dash B ' || :'run'),
	'email', 'b-' || :'run' || '@dash.test', 'password', 'correct horse battery B',
	'first_name', 'Bea', 'last_name', 'Admin')) r \gset
BEGIN;
SELECT saas.authenticate(:'tok_a') IS NOT NULL AS ignore \gset
SELECT saas.create_user(jsonb_build_object('email', 'u-' || :'run' || '@dash.test',
	'first_name', 'Ugo', 'last_name', 'User', 'role', 'user',
	'password', 'correct horse battery U'))->>'id' AS user_u \gset
COMMIT;
SELECT saas.login(jsonb_build_object('email', 'u-' || :'run' || '@dash.test',
	'password', 'correct horse battery U'))->>'token' AS tok_u \gset
INSERT INTO saas.webhook_events (org_id, service, event_id, event_type, occurred_at, payload)
SELECT o, 'user-service', 'pgtap-' || o || '-' || i, 'user.updated', now(), '{}'
  FROM unnest(ARRAY[:'org_a'::uuid, :'org_b'::uuid]) o, generate_series(1, 3) i;

-- privileges
SELECT ok(NOT has_function_privilege('saas_api', 'saas._call_history(integer)', 'EXECUTE'),
	'saas_api may not run saas._call_history (platform figures from shared memory)');
SELECT ok(NOT has_function_privilege('public', 'saas._call_history(integer)', 'EXECUTE'),
	'nor may PUBLIC');
SELECT ok(has_function_privilege('saas_api', 'saas.integration_calls_json(integer)', 'EXECUTE')
	AND has_function_privilege('saas_api', 'saas.list_webhook_events(text,text,text,integer)', 'EXECUTE'),
	'saas_api runs the two public functions');
SELECT ok(NOT has_function_privilege('public', 'saas.integration_calls_json(integer)', 'EXECUTE')
	AND NOT has_function_privilege('public', 'saas.list_webhook_events(text,text,text,integer)', 'EXECUTE'),
	'PUBLIC runs neither');
SELECT is((SELECT prosecdef FROM pg_proc WHERE oid = 'saas.integration_calls_json(integer)'::regprocedure),
	true, 'integration_calls_json is SECURITY DEFINER');
SELECT ok((SELECT proconfig @> ARRAY['search_path=pg_catalog, saas, pg_temp'] FROM pg_proc
	WHERE oid = 'saas.integration_calls_json(integer)'::regprocedure), 'with search_path pinned');
SELECT is((SELECT prosecdef FROM pg_proc WHERE oid = 'saas.list_webhook_events(text,text,text,integer)'::regprocedure),
	false, 'list_webhook_events runs as the caller (row-level security applies)');

-- without a context, with a forged one, as a plain user
SET ROLE app;
SELECT throws_ok($$SELECT saas.integration_calls_json()$$, 'SA401', NULL, 'calls: no context is 401');
SELECT throws_ok($$SELECT saas.list_webhook_events(NULL, NULL, NULL, 10)$$, 'SA401', NULL, 'events: no context is 401');
SELECT throws_ok($$SELECT saas._call_history(60)$$, '42501', NULL, 'the private function is refused to saas_api');
SELECT set_config('saas.context', 'eyJhbGciOiJub25lIn0.eyJyb2xlIjoic3VwZXJfYWRtaW4ifQ.', false) IS NOT NULL AS ignore \gset
SELECT throws_ok($$SELECT saas.list_webhook_events(NULL, NULL, NULL, 10)$$, 'SA401', NULL,
	'events: a forged (alg none) context is no context');
SELECT set_config('saas.context', '', false) IS NOT NULL AS ignore \gset
BEGIN;
SELECT saas.authenticate(:'tok_u') IS NOT NULL AS ignore \gset
SELECT throws_ok($$SELECT saas.integration_calls_json()$$, 'SA403', NULL, 'calls: a user is 403');
SELECT throws_ok($$SELECT saas.list_webhook_events(NULL, NULL, NULL, 10)$$, 'SA403', NULL, 'events: a user is 403');
ROLLBACK;

-- as admin of A
BEGIN;
SELECT saas.authenticate(:'tok_a') IS NOT NULL AS ignore \gset
SELECT is((SELECT count(*) FROM jsonb_each(saas.integration_calls_json() -> 'services'))::int, 3,
	'calls: every service');
SELECT is(jsonb_array_length(saas.integration_calls_json(60) -> 'services' -> 'userService'), 60,
	'calls: a point per minute of the hour');
SELECT is(jsonb_array_length(saas.integration_calls_json(1) -> 'services' -> 'paymentService'), 1,
	'calls: one minute');
SELECT throws_ok($$SELECT saas.integration_calls_json(0)$$, 'SA400', NULL, 'calls: 0 minutes is 400');
SELECT throws_ok($$SELECT saas.integration_calls_json(61)$$, 'SA400', NULL, 'calls: 61 minutes is 400');
SELECT is((SELECT count(*) FROM jsonb_array_elements(saas.list_webhook_events(NULL, NULL, NULL, 200) -> 'data') e
	WHERE e->>'event_id' LIKE 'pgtap-' || :'org_a' || '-%')::int, 3, 'events: its own organization''s');
SELECT is((SELECT count(*) FROM jsonb_array_elements(saas.list_webhook_events(NULL, NULL, NULL, 200) -> 'data') e
	WHERE e->>'event_id' LIKE 'pgtap-' || :'org_b' || '-%')::int, 0, 'events: none of another organization');
SELECT throws_ok($$SELECT saas.list_webhook_events(NULL, NULL, '1 user-service zz', 10)$$, 'SA400', NULL,
	'events: a malformed page key is 400');
ROLLBACK;
RESET ROLE;

-- the owner: the ring answers (empty without the worker's calls), and checks its argument
SELECT throws_ok($$SELECT * FROM saas._call_history(0)$$, '22023', NULL, '_call_history: 0 minutes refused');

SELECT * FROM finish();
