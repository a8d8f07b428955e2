-- The background worker serves one database (saas.database, fixed at server start); in any
-- other, integration jobs and webhook applies queue and wait. Say so when the extension is
-- created, as /healthz ("worker":"not_serving_this_database") and saas.integration_status do.
-- A WARNING, not a NOTICE: CREATE EXTENSION runs its script with client_min_messages raised
-- to warning, so a NOTICE from here would never be seen.
DO $$
DECLARE
	served text := pg_catalog.current_setting('saas.database', true);
BEGIN
	IF pg_catalog.current_setting('shared_preload_libraries') !~ '(^|[ ,])"?pg_saas"?($|[ ,])' THEN
		RAISE WARNING 'pg_saas is not in shared_preload_libraries: no background worker runs, integration jobs will wait'
			USING HINT = 'Add pg_saas to shared_preload_libraries, set saas.database, and restart the server.';
	ELSIF served IS DISTINCT FROM pg_catalog.current_database() THEN
		RAISE WARNING 'the pg_saas worker serves database "%", not "%": integration jobs queued here will wait',
			served, pg_catalog.current_database()
			USING HINT = pg_catalog.format('Set saas.database = %L and restart the server to serve this one.',
										   pg_catalog.current_database());
	END IF;
END
$$;
