-- Part 92: what the admin dashboard (web/admin/, docs/dashboard.md) reads that the API did not
-- serve before: the worker's calls per service and minute over the last hour (the chart of the
-- integrations view) and the webhook events received. Part 90 has run: every grant here is
-- explicit, and each function is revoked from PUBLIC first.

-- The worker's calls by minute, from shared memory (bgworker/call_history.c). Private: platform
-- wide figures, read through saas.integration_calls_json(), which checks the role.
CREATE FUNCTION saas._call_history(minutes integer)
	RETURNS TABLE (service text, minute timestamptz, calls bigint, errors bigint,
				   latency_avg_ms double precision, latency_max_ms bigint)
	AS 'MODULE_PATHNAME', 'saas_call_history' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION saas._call_history(integer) IS
	'The worker''s calls per service and minute over the last minutes (1-60): calls, errors (anything but a 2xx), average and largest latency of the calls that reached the wire (private).';
REVOKE ALL ON FUNCTION saas._call_history(integer) FROM PUBLIC;

-- GET /integrations/calls: one point per service and minute, every minute present (zero when the
-- worker made no call), oldest first. Admins and super_admins: the figures are per service for
-- the whole platform, as the latency of GET /integrations/status is; no organization's data.
CREATE FUNCTION saas.integration_calls_json(minutes integer DEFAULT 60) RETURNS jsonb
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	out jsonb := '{}';
	r record;
	last_minute timestamptz := date_trunc('minute', now());
BEGIN
	IF saas.current_role() IS NULL THEN
		RAISE EXCEPTION 'authentication required' USING ERRCODE = 'SA401';
	ELSIF saas.current_role() NOT IN ('admin', 'super_admin') THEN
		RAISE EXCEPTION 'role "%" may not read integration calls', saas.current_role() USING ERRCODE = 'SA403';
	ELSIF saas._context_api_key() IS NOT NULL AND NOT saas._scope_allows('integrations:read') THEN
		RAISE EXCEPTION 'this API key lacks the scope integrations:read' USING ERRCODE = 'SA403';
	END IF;
	IF minutes IS NULL OR minutes < 1 OR minutes > 60 THEN
		RAISE EXCEPTION 'minutes must be from 1 to 60' USING ERRCODE = 'SA400',
			DETAIL = '[{"field":"minutes","message":"must be an integer from 1 to 60"}]';
	END IF;
	FOR r IN
		SELECT i.service,
			   jsonb_agg(jsonb_build_object(
					'minute', to_char(m.minute AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
					'calls', coalesce(h.calls, 0), 'errors', coalesce(h.errors, 0),
					'latencyMsAvg', round(h.latency_avg_ms::numeric, 1), 'latencyMsMax', h.latency_max_ms)
				 ORDER BY m.minute) AS points
		  FROM saas.integrations i
		 CROSS JOIN generate_series(last_minute - make_interval(mins => minutes - 1), last_minute,
									interval '1 minute') AS m(minute)
		  LEFT JOIN saas._call_history(minutes) h ON h.service = i.service AND h.minute = m.minute
		 GROUP BY i.service
	LOOP
		out := out || jsonb_build_object(
			CASE r.service WHEN 'user-service' THEN 'userService' WHEN 'payment-service' THEN 'paymentService'
				ELSE 'communicationService' END, r.points);
	END LOOP;
	RETURN jsonb_build_object('minutes', minutes, 'services', out);
END
$$;
COMMENT ON FUNCTION saas.integration_calls_json(integer) IS
	'GET /integrations/calls: the worker''s calls, errors and latency per service and minute over the last minutes (1-60, default 60), platform wide (admin, super_admin).';
REVOKE ALL ON FUNCTION saas.integration_calls_json(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION saas.integration_calls_json(integer) TO saas_api;

-- GET /webhook-events: the organization's received events, newest first, read as the caller
-- (SECURITY INVOKER: the table's policy shows admins their own organization's rows only). The
-- page key is (received_at, service, event_id): events of one delivery share received_at. after
-- is the key of the last row of the previous page, "<received_at in µs> <service> <hex event_id>"
-- (the router has checked its form); the answer's next_cursor is the base64url of the next one.
CREATE FUNCTION saas.list_webhook_events(service text, state text, after text, page_limit integer)
	RETURNS jsonb
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	-- the organization as a value: on Citus the query is then routed to its shard
	org uuid := saas.current_org_id();
	a_us numeric;
	a_ts timestamptz;
	a_svc text;
	a_evt text;
	rows jsonb;
	n integer;
	last record;
	next_key text;
BEGIN
	IF saas.current_role() IS NULL THEN
		RAISE EXCEPTION 'authentication required' USING ERRCODE = 'SA401';
	ELSIF saas.current_role() NOT IN ('admin', 'super_admin') THEN
		RAISE EXCEPTION 'role "%" may not list webhook events', saas.current_role() USING ERRCODE = 'SA403';
	END IF;
	IF page_limit IS NULL OR page_limit < 1 OR page_limit > 200 THEN
		RAISE EXCEPTION 'limit must be from 1 to 200' USING ERRCODE = 'SA400',
			DETAIL = '[{"field":"limit","message":"must be an integer from 1 to 200"}]';
	END IF;
	IF after IS NOT NULL THEN
		IF after !~ '^[0-9]{1,20} [a-z-]{1,40} ([0-9a-f]{2}){1,200}$' THEN
			RAISE EXCEPTION 'bad cursor' USING ERRCODE = 'SA400',
				DETAIL = '[{"field":"cursor","message":"is not a valid cursor"}]';
		END IF;
		a_us := split_part(after, ' ', 1)::numeric;
		-- whole seconds and microseconds apart: a double of all the digits would round
		a_ts := to_timestamp(0) + make_interval(secs => floor(a_us / 1000000)::double precision)
			+ make_interval(secs => ((a_us % 1000000) / 1000000)::double precision);
		a_svc := split_part(after, ' ', 2);
		a_evt := convert_from(decode(split_part(after, ' ', 3), 'hex'), 'UTF8');
	END IF;
	SELECT coalesce(jsonb_agg(to_jsonb(e) - 'k' ORDER BY e.k), '[]'), count(*)
	  INTO rows, n
	  FROM (SELECT w.service, w.event_id, w.event_type,
				   to_char(w.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at,
				   to_char(w.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS received_at,
				   to_char(w.applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS applied_at,
				   w.apply_result, w.entity_ref,
				   row_number() OVER (ORDER BY w.received_at DESC, w.service, w.event_id) AS k
			  FROM saas.webhook_events w
			 WHERE w.org_id OPERATOR(pg_catalog.=) org
			   AND (list_webhook_events.service IS NULL OR w.service = list_webhook_events.service)
			   AND (list_webhook_events.state IS NULL
					OR (list_webhook_events.state = 'pending' AND w.applied_at IS NULL)
					OR (list_webhook_events.state = 'applied' AND w.applied_at IS NOT NULL
						AND w.apply_result IS NOT DISTINCT FROM 'applied')
					OR (list_webhook_events.state = 'rejected' AND w.applied_at IS NOT NULL
						AND w.apply_result IS DISTINCT FROM 'applied'))
			   AND (after IS NULL OR w.received_at < a_ts
					OR (w.received_at = a_ts AND (w.service, w.event_id) > (a_svc, a_evt)))
			 ORDER BY w.received_at DESC, w.service, w.event_id
			 LIMIT page_limit + 1) e;
	IF n > page_limit THEN
		rows := rows - page_limit;		-- the extra row only says there is a next page
		SELECT w.received_at, w.service, w.event_id INTO last
		  FROM saas.webhook_events w
		 WHERE w.org_id OPERATOR(pg_catalog.=) org
		   AND w.service = rows -> (page_limit - 1) ->> 'service'
		   AND w.event_id = rows -> (page_limit - 1) ->> 'event_id';
		next_key := floor(extract(epoch FROM last.received_at) * 1000000)::bigint::text || ' ' || last.service
			|| ' ' || encode(convert_to(last.event_id, 'UTF8'), 'hex');
		next_key := rtrim(translate(encode(convert_to(next_key, 'UTF8'), 'base64'), E'+/\n', '-_'), '=');
	END IF;
	RETURN jsonb_build_object('data', rows, 'next_cursor', next_key);
END
$$;
COMMENT ON FUNCTION saas.list_webhook_events(text, text, text, integer) IS
	'GET /webhook-events (admin): the organization''s received webhook events, newest first, with when they were applied and the result; filters service and state (pending, applied, rejected).';
REVOKE ALL ON FUNCTION saas.list_webhook_events(text, text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION saas.list_webhook_events(text, text, text, integer) TO saas_api;
