-- pg_saas 0.1.0 -> 0.2.0, after the new parts: changes to objects of 0.1.0 that need the new
-- parts' objects (see 0.1.0--0.2.0.sql).

-- Part 70: the integration status refuses an API key without integrations:read (part 92).
CREATE OR REPLACE FUNCTION saas.integration_status_json() RETURNS jsonb
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

-- Part 95: distribute() places the new parts' tables too.
CREATE OR REPLACE FUNCTION saas._distribution_plan(OUT relation regclass, OUT placement text, OUT ord integer)
	RETURNS SETOF record LANGUAGE sql IMMUTABLE
	SET search_path = pg_catalog, saas, pg_temp
AS $$
	-- In creation order: a reference table before the tables that refer to it, saas.users
	-- (the colocation anchor) before the tables colocated with it.
	SELECT t.relation::regclass, t.placement, t.ord
	  FROM (VALUES
		('saas.organizations', 'reference', 1),
		('saas._user_refs', 'reference', 2),
		('saas._signing_keys', 'reference', 3),
		('saas.integrations', 'reference', 4),
		('saas.rate_limits', 'reference', 5),
		('saas._user_emails', 'reference', 6),
		('saas.users', 'distributed', 10),
		('saas._credentials', 'distributed', 11),
		('saas._sessions', 'distributed', 12),
		('saas._revoked_tokens', 'distributed', 13),
		('saas.webhook_events', 'distributed', 14),
		('saas.subscriptions', 'distributed', 15),
		('saas.notifications', 'distributed', 16),
		('saas.entity_versions', 'distributed', 17),
		('saas.sync_state', 'distributed', 18),
		('saas.audit_log', 'distributed', 19),
		('saas._audit_heads', 'distributed', 20),
		('saas.jobs', 'distributed', 21),
		('saas._audit_outbox', 'distributed', 22),
		('saas._invitations', 'distributed', 23),
		('saas._password_resets', 'distributed', 24),
		('saas._refresh_tokens', 'distributed', 25),
		('saas.sso_connections', 'distributed', 26),
		('saas._sso_secrets', 'distributed', 27),
		('saas._sso_requests', 'distributed', 28),
		('saas._sso_identities', 'distributed', 29),
		('saas.api_keys', 'distributed', 30),
		('saas._api_key_secrets', 'distributed', 31),
		('saas._breaker_events', 'local', 40)
	  ) AS t(relation, placement, ord)
	 ORDER BY t.ord
$$;