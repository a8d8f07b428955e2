-- Part 70: the job queue's API, integration status, and the outbound flows
-- that enqueue jobs when users and organizations change through the API.

CREATE FUNCTION saas._breaker_status(OUT service text, OUT circuit text, OUT calls_1m integer,
	OUT failures_1m integer, OUT last_error text, OUT p50_ms integer, OUT p95_ms integer,
	OUT last_success timestamptz, OUT last_failure timestamptz, OUT worker_running boolean)
	RETURNS SETOF record AS 'MODULE_PATHNAME', 'saas_breaker_status' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas._breaker_status() IS 'Circuit breakers'' shared state per service (private).';

CREATE FUNCTION saas._in_sync() RETURNS boolean
	AS 'MODULE_PATHNAME', 'saas_in_sync' LANGUAGE C STABLE;
COMMENT ON FUNCTION saas._in_sync() IS 'True while the worker applies changes that came from a service (so they are not pushed back).';
CREATE FUNCTION saas._worker_incarnations() RETURNS bigint[]
	AS 'MODULE_PATHNAME', 'saas_worker_incarnations' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas._worker_incarnations() IS 'Lease owners of the worker processes alive now: a starting worker process takes over the running jobs of any other.';

-- Status per service: OK, DEGRADED (recent failures or dead jobs), RETRYING
-- (jobs waiting to be retried, or probing), DOWN (circuit open).
CREATE FUNCTION saas._integration_status_rows(p_org uuid)
	RETURNS TABLE (service text, status text, last_sync timestamptz, circuit text, queued bigint,
				   retrying bigint, dead bigint, last_error text, p50_ms integer, p95_ms integer)
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
BEGIN
	-- One aggregate per table, joined to the services after: on Citus each is a plain
	-- query on the shards (routed to one when p_org is given). EXECUTE plans it with p_org
	-- bound, which Citus needs (it cannot plan a parameter it does not know).
	RETURN QUERY EXECUTE $q$
	WITH q AS (
		SELECT j.service,
			   count(*) FILTER (WHERE j.state IN ('available', 'running')) AS queued,
			   count(*) FILTER (WHERE j.state = 'retryable') AS retrying,
			   count(*) FILTER (WHERE j.state = 'dead') AS dead
		  FROM saas.jobs j
		 WHERE j.state <> 'succeeded' AND ($1 IS NULL OR j.org_id = $1)
		 GROUP BY j.service),
	s AS (
		SELECT x.service, max(x.last_sync) AS last_sync
		  FROM saas.sync_state x
		 WHERE $1 IS NULL OR x.org_id = $1
		 GROUP BY x.service),
	e AS (
		-- the live queue only (a succeeded job has no error)
		SELECT DISTINCT ON (j.service) j.service, j.last_error
		  FROM saas.jobs j
		 WHERE $1 IS NOT NULL AND j.org_id = $1 AND j.last_error IS NOT NULL AND j.state <> 'succeeded'
		 ORDER BY j.service, j.updated_at DESC)
	SELECT i.service,
		   CASE WHEN b.circuit = 'open' THEN 'DOWN'
				WHEN b.circuit = 'half_open' OR coalesce(q.retrying, 0) > 0 THEN 'RETRYING'
				WHEN coalesce(b.failures_1m, 0) > 0 OR coalesce(q.dead, 0) > 0 THEN 'DEGRADED'
				ELSE 'OK' END,
		   s.last_sync,
		   coalesce(b.circuit, 'closed'),
		   coalesce(q.queued, 0), coalesce(q.retrying, 0), coalesce(q.dead, 0),
		   CASE WHEN $1 IS NULL THEN b.last_error ELSE e.last_error END,
		   coalesce(b.p50_ms, 0), coalesce(b.p95_ms, 0)
	  FROM saas.integrations i
	  LEFT JOIN saas._breaker_status() b ON b.service = i.service
	  LEFT JOIN q ON q.service = i.service
	  LEFT JOIN s ON s.service = i.service
	  LEFT JOIN e ON e.service = i.service
	$q$ USING p_org;
END
$$;
COMMENT ON FUNCTION saas._integration_status_rows(uuid) IS 'Integration status per service; queue counts of one organization, or of all when NULL (private).';

-- worker: whether the background worker serves this database (saas.database); elsewhere jobs wait.
CREATE VIEW saas.integration_status AS
	SELECT s.*, CASE WHEN pg_catalog.current_setting('saas.database', true) IS NOT DISTINCT FROM pg_catalog.current_database()
					 THEN 'serves this database'
					 ELSE 'NOT SERVED: the worker serves database ' || coalesce(pg_catalog.current_setting('saas.database', true), '(none)') END AS worker
	  FROM saas._integration_status_rows(NULL) s;
COMMENT ON VIEW saas.integration_status IS
	'Health of each external service for operators: status (OK, DEGRADED, RETRYING, DOWN), last sync, circuit, queue counts, last error, latency.';

-- GET /integrations/status: admins see their organization's queue, super_admin all.
CREATE FUNCTION saas.integration_status_json() RETURNS jsonb
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	r record;
	out jsonb := '{}';
	scope uuid;
BEGIN
	IF saas.current_role() IS NULL THEN
		RAISE EXCEPTION 'authentication required' USING ERRCODE = 'SA401';
	ELSIF saas.current_role() NOT IN ('admin', 'super_admin') THEN
		RAISE EXCEPTION 'role "%" may not read integration status', saas.current_role() USING ERRCODE = 'SA403';
	ELSIF NOT saas._scope_allows('integrations:read') THEN	-- an API key's scopes (92_api_keys.sql)
		RAISE EXCEPTION 'this API key lacks the scope integrations:read' USING ERRCODE = 'SA403';
	END IF;
	scope := CASE WHEN saas.current_role() = 'super_admin' THEN NULL ELSE saas.current_org_id() END;
	FOR r IN SELECT * FROM saas._integration_status_rows(scope) LOOP
		out := out || jsonb_build_object(
			CASE r.service WHEN 'user-service' THEN 'userService' WHEN 'payment-service' THEN 'paymentService'
				ELSE 'communicationService' END,
			jsonb_build_object('status', r.status,
				'lastSync', to_char(r.last_sync AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
				'circuit', r.circuit, 'queued', r.queued, 'retrying', r.retrying, 'dead', r.dead,
				'lastError', r.last_error, 'latencyMs', jsonb_build_object('p50', r.p50_ms, 'p95', r.p95_ms)));
	END LOOP;
	RETURN out;
END
$$;
COMMENT ON FUNCTION saas.integration_status_json() IS 'GET /integrations/status: the status document (admin: own queue counts; super_admin: all).';

-- Revive a dead job (admin of its organization, or the owner).
CREATE FUNCTION saas.retry_job(id uuid) RETURNS jsonb
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	j saas.jobs;
	owner_call boolean := saas.current_role() IS NULL
		AND pg_catalog.pg_has_role(session_user, (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_saas'), 'MEMBER');
	scope uuid;
	job_org uuid;
BEGIN
	IF NOT owner_call AND coalesce(saas.current_role(), '') NOT IN ('admin', 'super_admin') THEN
		RAISE EXCEPTION 'only an admin may retry jobs' USING ERRCODE = CASE WHEN saas.current_role() IS NULL THEN 'SA401' ELSE 'SA403' END;
	END IF;
	-- The job's organization first, then the row locked by its key: on Citus (jobs
	-- distributed by org_id) FOR UPDATE runs only routed to one shard.
	scope := CASE WHEN owner_call THEN NULL ELSE saas.current_org_id() END;
	SELECT x.org_id INTO job_org FROM saas.jobs x
	 WHERE x.id = retry_job.id AND (scope IS NULL OR x.org_id = scope);
	IF FOUND THEN
		SELECT * INTO j FROM saas.jobs x WHERE x.org_id = job_org AND x.id = retry_job.id FOR UPDATE;
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'job not found' USING ERRCODE = 'SA404';
	END IF;
	IF j.state <> 'dead' THEN
		RAISE EXCEPTION 'only a dead job can be retried; this one is %', j.state USING ERRCODE = 'SA409';
	END IF;
	UPDATE saas.jobs x SET state = 'available', attempt = 0, run_at = now(), last_error = NULL,
		   finished_at = NULL, updated_at = now()
	 WHERE x.org_id = j.org_id AND x.id = j.id RETURNING * INTO j;
	PERFORM saas._wake_worker();
	RETURN jsonb_build_object('id', j.id, 'service', j.service, 'kind', j.kind, 'state', j.state, 'attempt', j.attempt);
END
$$;
COMMENT ON FUNCTION saas.retry_job(uuid) IS 'POST /jobs/:id/retry: revives a dead job (attempts reset) and wakes the worker.';

-- Bulk recovery after an incident (admin: own organization; the owner: all).
CREATE FUNCTION saas.retry_jobs(service text DEFAULT NULL, state text DEFAULT 'dead',
								since timestamptz DEFAULT NULL) RETURNS jsonb
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	owner_call boolean := saas.current_role() IS NULL
		AND pg_catalog.pg_has_role(session_user, (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_saas'), 'MEMBER');
	-- The organization as a value, so that Citus routes an admin's update to its shard.
	scope uuid := CASE WHEN owner_call THEN NULL ELSE saas.current_org_id() END;
	n bigint;
BEGIN
	IF NOT owner_call AND coalesce(saas.current_role(), '') NOT IN ('admin', 'super_admin') THEN
		RAISE EXCEPTION 'only an admin may retry jobs' USING ERRCODE = CASE WHEN saas.current_role() IS NULL THEN 'SA401' ELSE 'SA403' END;
	END IF;
	IF retry_jobs.state IS NULL OR retry_jobs.state NOT IN ('dead', 'retryable') THEN
		RAISE EXCEPTION 'state must be dead or retryable' USING ERRCODE = '22023';
	END IF;
	IF retry_jobs.service IS NOT NULL AND NOT EXISTS (SELECT 1 FROM saas.integrations i WHERE i.service = retry_jobs.service) THEN
		RAISE EXCEPTION 'unknown service "%"', retry_jobs.service USING ERRCODE = '22023';
	END IF;
	-- Dead jobs start over (attempts reset); retryable ones are made due now.
	UPDATE saas.jobs x SET state = 'available', run_at = now(), updated_at = now(), finished_at = NULL,
		   attempt = CASE WHEN x.state = 'dead' THEN 0 ELSE x.attempt END,
		   last_error = CASE WHEN x.state = 'dead' THEN NULL ELSE x.last_error END
	 WHERE x.state = retry_jobs.state
	   AND (retry_jobs.service IS NULL OR x.service = retry_jobs.service)
	   AND (retry_jobs.since IS NULL OR coalesce(x.finished_at, x.updated_at) >= retry_jobs.since)
	   AND (scope IS NULL OR x.org_id = scope);
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n > 0 THEN
		PERFORM saas._wake_worker();
	END IF;
	RETURN jsonb_build_object('retried', n);
END
$$;
COMMENT ON FUNCTION saas.retry_jobs(text, text, timestamptz) IS
	'POST /jobs/retry: revives dead jobs (attempts reset), or makes retryable ones due now, filtered by service and time of their last outcome; returns {"retried": n}.';

CREATE FUNCTION saas._wake_worker() RETURNS void
	AS 'MODULE_PATHNAME', 'saas_wake_worker' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas._wake_worker() IS 'Wakes the worker when the current transaction commits (private).';

-- Enqueue a call (private): idempotent by (org, idempotency key).
CREATE FUNCTION saas._enqueue(p_org uuid, p_service text, p_kind text, p_method text, p_path text,
							  p_body jsonb, p_key text, p_on_success jsonb DEFAULT NULL) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
BEGIN
	INSERT INTO saas.jobs (org_id, service, kind, payload, max_attempts, idempotency_key)
	SELECT p_org, p_service, p_kind,
		   jsonb_strip_nulls(jsonb_build_object('method', p_method, 'path', p_path, 'body', p_body, 'on_success', p_on_success)),
		   i.max_retries + 1, p_key
	  FROM saas.integrations i WHERE i.service = p_service AND i.enabled
	ON CONFLICT (org_id, idempotency_key) DO NOTHING;
	IF FOUND THEN
		PERFORM saas._wake_worker();
	END IF;
END
$$;
COMMENT ON FUNCTION saas._enqueue(uuid, text, text, text, text, jsonb, text, jsonb) IS 'Adds a job to the queue, once per idempotency key (private).';

-- After a successful call: remember the service's ids, chain the next call.
CREATE FUNCTION saas._job_succeeded(p_org uuid, p_job uuid, p_on_success jsonb, p_response text) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	resp jsonb;
	ref text;
	ext jsonb;
BEGIN
	BEGIN
		resp := p_response::jsonb;
	EXCEPTION WHEN OTHERS THEN
		RETURN;
	END;
	ref := coalesce(resp -> 'data' ->> (p_on_success ->> 'from'), resp ->> (p_on_success ->> 'from'));
	IF ref IS NULL THEN
		RETURN;
	END IF;
	-- The organization was deleted while the call ran: what the call created
	-- at the service is removed again, and nothing is chained.
	IF NOT EXISTS (SELECT 1 FROM saas.organizations o WHERE o.id = p_org) THEN
		IF p_on_success ? 'set_user_ref' THEN
			PERFORM saas._enqueue(p_org, 'user-service', 'user.delete', 'DELETE', '/users/' || ref, NULL,
				'user-delete:' || (p_on_success ->> 'user_id'));
		END IF;
		RETURN;
	END IF;
	IF p_on_success ? 'set_org_ref' THEN
		UPDATE saas.organizations SET external_ids = external_ids || jsonb_build_object(p_on_success ->> 'set_org_ref', ref)
		 WHERE id = p_org AND external_ids ->> (p_on_success ->> 'set_org_ref') IS DISTINCT FROM ref;
	END IF;
	IF p_on_success ? 'set_org_ref_from' AND resp -> 'data' ->> (p_on_success ->> 'set_org_ref_from') IS NOT NULL THEN
		UPDATE saas.organizations
		   SET external_ids = external_ids || jsonb_build_object(p_on_success ->> 'org_ref_key',
										resp -> 'data' ->> (p_on_success ->> 'set_org_ref_from'))
		 WHERE id = p_org AND NOT external_ids ? (p_on_success ->> 'org_ref_key');
	END IF;
	IF p_on_success ? 'set_user_ref' THEN
		-- On Citus the directory entry is written first (23_directory.sql).
		SELECT u.external_user_ids || jsonb_build_object(p_on_success ->> 'set_user_ref', ref) INTO ext
		  FROM saas.users u WHERE u.org_id = p_org AND u.id = (p_on_success ->> 'user_id')::uuid FOR UPDATE;
		IF FOUND THEN
			PERFORM saas._dir_set(p_org, (p_on_success ->> 'user_id')::uuid, NULL, ext);
		END IF;
		UPDATE saas.users SET external_user_ids = external_user_ids || jsonb_build_object(p_on_success ->> 'set_user_ref', ref)
		 WHERE org_id = p_org AND id = (p_on_success ->> 'user_id')::uuid;
	END IF;
	IF p_on_success ? 'then' THEN
		PERFORM saas._enqueue(p_org, p_on_success -> 'then' ->> 'service', p_on_success -> 'then' ->> 'kind', 'POST',
			p_on_success -> 'then' ->> 'path',
			(p_on_success -> 'then' -> 'body') || jsonb_build_object(p_on_success ->> 'from', ref),
			p_on_success -> 'then' ->> 'key');
	END IF;
END
$$;
COMMENT ON FUNCTION saas._job_succeeded(uuid, uuid, jsonb, text) IS 'Records what a successful call returned (service ids) and chains follow-up calls (private).';

-- Outbound flows. Changes the worker applies from a service are not pushed back.
CREATE FUNCTION saas._users_outbound() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	org_ref text;
	ref text;
BEGIN
	IF saas._in_sync() THEN
		RETURN NULL;
	END IF;
	IF TG_OP = 'INSERT' THEN
		-- Without a reference of its own at a service, an organization is known
		-- there by its id (webhook ingest maps such ids back to it).
		SELECT coalesce(o.external_ids ->> 'user_service', o.id::text) INTO org_ref FROM saas.organizations o WHERE o.id = NEW.org_id;
		PERFORM saas._enqueue(NEW.org_id, 'user-service', 'user.push', 'POST', '/users',
			jsonb_build_object('organization_id', org_ref, 'email', NEW.email, 'first_name', NEW.first_name,
							   'last_name', NEW.last_name, 'status', NEW.status),
			'user-create:' || NEW.id,
			jsonb_build_object('set_user_ref', 'user_service', 'user_id', NEW.id, 'from', 'user_id'));
		SELECT coalesce(o.external_ids ->> 'communication_service', o.id::text) INTO org_ref FROM saas.organizations o WHERE o.id = NEW.org_id;
		PERFORM saas._enqueue(NEW.org_id, 'communication-service', 'message.welcome', 'POST', '/messages',
			jsonb_build_object('organization_id', org_ref, 'recipient', NEW.email, 'template', 'welcome'),
			'welcome:' || NEW.id);
		-- The organization's first admin becomes its billing contact at the payment service.
		IF NEW.role = 'admin' AND NOT EXISTS (SELECT 1 FROM saas.organizations o
											   WHERE o.id = NEW.org_id AND o.external_ids ? 'payment_customer') THEN
			PERFORM saas._enqueue(NEW.org_id, 'payment-service', 'customer.create', 'POST', '/customers',
				jsonb_build_object('organization_id',
								   (SELECT coalesce(o.external_ids ->> 'payment_service', o.id::text)
									  FROM saas.organizations o WHERE o.id = NEW.org_id),
								   'email', NEW.email,
								   'name', (SELECT o.name FROM saas.organizations o WHERE o.id = NEW.org_id)),
				'customer:' || NEW.org_id,
				jsonb_build_object('set_org_ref', 'payment_customer', 'from', 'customer_id',
					'then', jsonb_build_object('service', 'payment-service', 'kind', 'subscription.create',
						'path', '/subscriptions', 'key', 'subscription:' || NEW.org_id,
						'body', (SELECT CASE WHEN o.subscription_tier = 'free'
											 THEN jsonb_build_object('plan', 'free', 'amount', 0)
											 ELSE jsonb_build_object('plan', o.subscription_tier) END
								   FROM saas.organizations o WHERE o.id = NEW.org_id))));
		END IF;
	ELSIF TG_OP = 'UPDATE' THEN
		ref := NEW.external_user_ids ->> 'user_service';
		IF ref IS NOT NULL AND (NEW.email, NEW.first_name, NEW.last_name, NEW.status)
				IS DISTINCT FROM (OLD.email, OLD.first_name, OLD.last_name, OLD.status) THEN
			PERFORM saas._enqueue(NEW.org_id, 'user-service', 'user.push', 'PUT', '/users/' || ref,
				jsonb_build_object('email', NEW.email, 'first_name', NEW.first_name, 'last_name', NEW.last_name,
								   'status', NEW.status),
				'user-update:' || NEW.id || ':' || NEW.version);
		END IF;
	ELSE
		ref := OLD.external_user_ids ->> 'user_service';
		-- Also when the whole organization is deleted (its users go by cascade):
		-- jobs outlive the organization, so the user is removed at the service.
		IF ref IS NOT NULL THEN
			PERFORM saas._enqueue(OLD.org_id, 'user-service', 'user.delete', 'DELETE', '/users/' || ref, NULL,
				'user-delete:' || OLD.id);
		END IF;
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION saas._users_outbound() IS 'Enqueues pushes of API changes to the user service and the welcome message (private).';
CREATE TRIGGER users_outbound AFTER INSERT OR UPDATE OR DELETE ON saas.users
	FOR EACH ROW EXECUTE FUNCTION saas._users_outbound();

-- Deleting an organization: its active subscriptions are canceled at the
-- payment service (its linked users are removed at the user service by
-- users_outbound as they go by cascade), through jobs enqueued in the
-- deleting transaction. saas.jobs has no foreign key to organizations, so
-- these jobs outlive the row; the calls not made yet for the organization
-- (available, retryable, dead) are void and go. BEFORE DELETE: the
-- subscriptions are still there (their cascade runs after the row is gone);
-- a delete the rules refuse rolls all of it back.
CREATE FUNCTION saas._organizations_deleted() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	s record;
BEGIN
	-- On Citus every copy of organizations fires this: the node of the
	-- organization's rows does it, once, on its local shards.
	IF NOT saas._org_shards_here(OLD.id) THEN
		RETURN OLD;
	END IF;
	DELETE FROM saas.jobs j WHERE j.org_id = OLD.id AND j.state IN ('available', 'retryable', 'dead');
	FOR s IN SELECT x.subscription_ref FROM saas.subscriptions x
			  WHERE x.org_id = OLD.id AND x.status <> 'canceled' ORDER BY x.subscription_ref LOOP
		PERFORM saas._enqueue(OLD.id, 'payment-service', 'subscription.cancel', 'DELETE',
			'/subscriptions/' || s.subscription_ref, NULL, 'subscription-cancel:' || s.subscription_ref);
	END LOOP;
	RETURN OLD;
END
$$;
COMMENT ON FUNCTION saas._organizations_deleted() IS
	'Enqueues the cancellation of a deleted organization''s active subscriptions and drops its pending calls (private).';
CREATE TRIGGER organizations_outbound BEFORE DELETE ON saas.organizations
	FOR EACH ROW EXECUTE FUNCTION saas._organizations_deleted();

-- Relinking an organization to another reference at a service starts its
-- pull sync over: the cursor was the old reference's, so the users already
-- at the new one would never be read.
CREATE FUNCTION saas._organizations_relinked() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
BEGIN
	IF NOT saas._org_shards_here(NEW.id) THEN
		RETURN NULL;			-- another copy of organizations (Citus): done on the node of its rows
	END IF;
	DELETE FROM saas.sync_state s USING saas.integrations i
	 WHERE s.org_id = NEW.id AND s.service = i.service
	   AND (NEW.external_ids ->> i.ref_key) IS DISTINCT FROM (OLD.external_ids ->> i.ref_key);
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION saas._organizations_relinked() IS 'Resets the pull sync of an organization whose reference at a service changed (private).';
-- Only the user service is pulled (bgworker/sync.c reads its reference, user_service), so
-- only that reference resets a cursor. Another service's reference written back by a call
-- (a payment customer) touches no other table: on Citus this trigger runs on the copies of
-- organizations on the worker nodes, from where sync_state (distributed) cannot be reached.
CREATE TRIGGER organizations_relinked AFTER UPDATE OF external_ids ON saas.organizations
	FOR EACH ROW WHEN ((OLD.external_ids -> 'user_service') IS DISTINCT FROM (NEW.external_ids -> 'user_service'))
	EXECUTE FUNCTION saas._organizations_relinked();
