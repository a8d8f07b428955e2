-- Part 75: retention and metrics (docs/integrations.md, "Retention" and "Metrics").
--
-- Retention is the worker's (bgworker/retention.c, settings saas.retention_*):
-- these indexes let it find what is old enough without reading what is not,
-- so pruning costs the same whatever the history kept.
CREATE INDEX jobs_succeeded_idx ON saas.jobs (finished_at) WHERE state = 'succeeded';
CREATE INDEX webhook_events_applied_idx ON saas.webhook_events (received_at) WHERE applied_at IS NOT NULL;

CREATE FUNCTION saas._worker_metrics_text() RETURNS text
	AS 'MODULE_PATHNAME', 'saas_worker_metrics_text' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas._worker_metrics_text() IS
	'The worker''s counters in shared memory (calls, latency histograms, breakers, pruning), Prometheus text (private).';

-- GET /metrics (the relay appends this to its own metrics on every scrape).
-- Every figure is an aggregate over all organizations, with fixed label values
-- (service, state): no tenant's data and no tenant id. Each query reads the
-- live queue through a partial index (jobs_state_service_idx, jobs_due_idx,
-- webhook_events_pending_idx) or one row per organization (sync_state), never
-- the history of succeeded jobs or applied events.
CREATE FUNCTION saas.metrics_text() RETURNS text
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	out text := saas._worker_metrics_text();
	depth text := '';
	spent text := '';
	r record;
BEGIN
	-- One scan of the live queue serves both families (depth and attempts).
	FOR r IN
		SELECT i.service, s.state, coalesce(q.n, 0) AS n, coalesce(q.attempts, 0) AS attempts
		  FROM saas.integrations i
		 CROSS JOIN unnest(ARRAY['available', 'running', 'retryable', 'dead']) AS s(state)
		  LEFT JOIN (SELECT j.service, j.state, count(*) AS n, sum(j.attempt) AS attempts FROM saas.jobs j
					  WHERE j.state <> 'succeeded' GROUP BY 1, 2) q ON q.service = i.service AND q.state = s.state
		 ORDER BY 1, 2
	LOOP
		depth := depth || format(E'saas_jobs{service="%s",state="%s"} %s\n', r.service, r.state, r.n);
		IF r.state <> 'available' THEN
			spent := spent || format(E'saas_jobs_attempts{service="%s",state="%s"} %s\n', r.service, r.state, r.attempts);
		END IF;
	END LOOP;
	out := out || E'# HELP saas_jobs Jobs in the live queue by service and state (succeeded jobs are history: see saas_worker_calls_total).\n'
			   || E'# TYPE saas_jobs gauge\n' || depth
			   || E'# HELP saas_jobs_attempts Attempts already spent by the jobs in the live queue, by service and state.\n'
			   || E'# TYPE saas_jobs_attempts gauge\n' || spent;

	out := out || E'# HELP saas_jobs_oldest_due_seconds How long the oldest due job of the service has waited past its run_at (0: none due).\n'
			   || E'# TYPE saas_jobs_oldest_due_seconds gauge\n';
	FOR r IN
		SELECT i.service,
			   (SELECT greatest(0, extract(epoch FROM now() - min(j.run_at)))
				  FROM saas.jobs j
				 WHERE j.service = i.service AND j.state IN ('available', 'retryable') AND j.run_at <= now()) AS age
		  FROM saas.integrations i ORDER BY 1
	LOOP
		out := out || format(E'saas_jobs_oldest_due_seconds{service="%s"} %s\n', r.service, round(coalesce(r.age, 0), 3));
	END LOOP;

	out := out || E'# HELP saas_webhook_events_pending Webhook events accepted and not applied yet.\n'
			   || E'# TYPE saas_webhook_events_pending gauge\n'
			   || E'# HELP saas_webhook_events_oldest_pending_seconds Age of the oldest event not applied yet (0: none).\n'
			   || E'# TYPE saas_webhook_events_oldest_pending_seconds gauge\n';
	FOR r IN
		SELECT i.service, coalesce(q.n, 0) AS n, coalesce(q.age, 0) AS age
		  FROM saas.integrations i
		  LEFT JOIN (SELECT e.service, count(*) AS n, extract(epoch FROM now() - min(e.received_at)) AS age
					   FROM saas.webhook_events e WHERE e.applied_at IS NULL GROUP BY 1) q ON q.service = i.service
		 ORDER BY 1
	LOOP
		out := out || format(E'saas_webhook_events_pending{service="%s"} %s\n', r.service, r.n)
				   || format(E'saas_webhook_events_oldest_pending_seconds{service="%s"} %s\n', r.service, round(greatest(r.age, 0), 3));
	END LOOP;

	out := out || E'# HELP saas_sync_lag_seconds Pull sync: time since the least recently completed sync of a linked organization.\n'
			   || E'# TYPE saas_sync_lag_seconds gauge\n'
			   || E'# HELP saas_sync_organizations Pull sync: organizations tracked, and those whose sync never completed.\n'
			   || E'# TYPE saas_sync_organizations gauge\n';
	FOR r IN
		SELECT s.service, count(*) AS n, count(*) FILTER (WHERE s.last_sync IS NULL) AS never,
			   extract(epoch FROM now() - min(s.last_sync)) AS lag
		  FROM saas.sync_state s GROUP BY 1 ORDER BY 1
	LOOP
		out := out || format(E'saas_sync_lag_seconds{service="%s"} %s\n', r.service, round(greatest(coalesce(r.lag, 0), 0), 3))
				   || format(E'saas_sync_organizations{service="%s",sync="any"} %s\n', r.service, r.n)
				   || format(E'saas_sync_organizations{service="%s",sync="never_completed"} %s\n', r.service, r.never);
	END LOOP;
	RETURN out;
END
$$;
COMMENT ON FUNCTION saas.metrics_text() IS
	'The worker''s and the queue''s metrics in Prometheus text format (aggregates only), for GET /metrics.';
