-- Part 65: applying webhook events to internal state. Called by the worker,
-- one event at a time, under a trusted context for the event's organization.
-- An event older (by its timestamp) than the newest one already applied to
-- the same entity changes nothing. Errors are caught and recorded on the
-- event, so one bad event never blocks the queue.

-- saas._user_for_remote: the user a remote user of the user service is:
-- the one linked to its id, else an unlinked user with its email that is a
-- plain user or that this platform created there itself (its create job
-- exists: the event is the echo of our push, arriving before the id was
-- written back), else none. Any other admin's email, or a user linked to
-- another remote user, is a conflict, never a silent link.
-- One statement, locking the row it decides on: the write-back of the id
-- (the create job's success, recorded by another worker process) may commit
-- at any moment, and the decision must see either all of it or none.
CREATE FUNCTION saas._user_for_remote(p_org uuid, p_ref text, p_email text) RETURNS uuid
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	uid uuid;
	linkable boolean;
BEGIN
	SELECT u.id,
		   u.external_user_ids ->> 'user_service' IS NOT DISTINCT FROM p_ref
		   OR (NOT u.external_user_ids ? 'user_service'
			   AND (u.role = 'user' OR EXISTS (SELECT 1 FROM saas.jobs j
												WHERE j.org_id = p_org AND j.idempotency_key = 'user-create:' || u.id)))
	  INTO uid, linkable
	  FROM saas.users u
	 WHERE u.org_id = p_org
	   AND (u.external_user_ids ->> 'user_service' = p_ref OR u.email = lower(p_email))
	 ORDER BY u.external_user_ids ->> 'user_service' IS NOT DISTINCT FROM p_ref DESC
	 LIMIT 1
	   FOR UPDATE OF u;
	IF uid IS NOT NULL AND NOT linkable THEN
		PERFORM saas._rule_refuse('409', 'the email belongs to a user that is an admin or linked to another remote user');
	END IF;
	RETURN uid;
END
$$;
COMMENT ON FUNCTION saas._user_for_remote(uuid, text, text) IS
	'The local user of a remote user-service user: linked by id, or a linkable plain user by email; a conflict otherwise (private).';

CREATE FUNCTION saas._apply_event(p_org uuid, p_service text, p_event text) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	ev saas.webhook_events;
	d jsonb;
	newer timestamptz;
	uid uuid;
	result text := 'applied';
	ch jsonb;
	ext jsonb;
BEGIN
	SELECT * INTO ev FROM saas.webhook_events
	 WHERE org_id = p_org AND service = p_service AND event_id = p_event FOR UPDATE;
	IF NOT FOUND OR ev.applied_at IS NOT NULL THEN
		RETURN 'skipped';
	END IF;
	d := ev.payload -> 'data';

	BEGIN
		IF ev.entity_ref IS NOT NULL THEN
			SELECT last_event_at INTO newer FROM saas.entity_versions
			 WHERE org_id = p_org AND service = p_service AND entity_ref = ev.entity_ref FOR UPDATE;
			IF newer IS NOT NULL AND newer > ev.occurred_at THEN
				UPDATE saas.webhook_events SET applied_at = now(), apply_result = 'stale: newer state already applied'
				 WHERE org_id = p_org AND service = p_service AND event_id = p_event;
				RETURN 'stale';
			END IF;
		END IF;

		CASE ev.event_type
		WHEN 'user.created' THEN
			uid := saas._user_for_remote(p_org, d ->> 'user_id', d ->> 'email');
			-- On Citus the directory entries are written first (23_directory.sql).
			IF uid IS NULL THEN
				uid := saas.uuid_generate_v7();
				PERFORM saas._dir_set(p_org, uid, d ->> 'email', jsonb_build_object('user_service', d ->> 'user_id'));
				INSERT INTO saas.users (org_id, id, email, first_name, last_name, role, status, external_user_ids)
				VALUES (p_org, uid, lower(d ->> 'email'), coalesce(d ->> 'first_name', '-'), coalesce(d ->> 'last_name', '-'),
						'user', CASE WHEN d ->> 'status' IN ('active', 'inactive', 'suspended') THEN d ->> 'status' ELSE 'active' END,
						jsonb_build_object('user_service', d ->> 'user_id'));
			ELSE
				SELECT u.external_user_ids || jsonb_build_object('user_service', d ->> 'user_id') INTO ext
				  FROM saas.users u WHERE u.org_id = p_org AND u.id = uid;
				PERFORM saas._dir_set(p_org, uid, NULL, ext);
				UPDATE saas.users SET
					external_user_ids = external_user_ids || jsonb_build_object('user_service', d ->> 'user_id'),
					first_name = coalesce(d ->> 'first_name', first_name),
					last_name = coalesce(d ->> 'last_name', last_name)
				 WHERE org_id = p_org AND id = uid;
			END IF;
		WHEN 'user.updated' THEN
			-- The service sends data.changes (and data.previous_values); a flat
			-- data is read the same way.
			ch := CASE WHEN pg_catalog.jsonb_typeof(d -> 'changes') = 'object' THEN d -> 'changes' ELSE d END;
			IF ch ->> 'email' IS NOT NULL THEN
				SELECT u.id INTO uid FROM saas.users u
				 WHERE u.org_id = p_org AND u.external_user_ids ->> 'user_service' = d ->> 'user_id' FOR UPDATE;
				IF FOUND THEN
					PERFORM saas._dir_set(p_org, uid, ch ->> 'email', NULL);
				END IF;
			END IF;
			UPDATE saas.users SET
				first_name = coalesce(ch ->> 'first_name', first_name),
				last_name = coalesce(ch ->> 'last_name', last_name),
				email = coalesce(lower(ch ->> 'email'), email),
				status = CASE WHEN ch ->> 'status' IN ('active', 'inactive', 'suspended') THEN ch ->> 'status' ELSE status END
			 WHERE org_id = p_org AND external_user_ids ->> 'user_service' = d ->> 'user_id';
			IF NOT FOUND THEN result := 'ignored: unknown user'; END IF;
		WHEN 'user.deleted' THEN
			SELECT u.id INTO uid FROM saas.users u
			 WHERE u.org_id = p_org AND u.external_user_ids ->> 'user_service' = d ->> 'user_id'
			   AND u.role <> 'super_admin' FOR UPDATE;
			IF FOUND THEN
				PERFORM saas._dir_drop(p_org, uid);
			END IF;
			DELETE FROM saas.users WHERE org_id = p_org AND external_user_ids ->> 'user_service' = d ->> 'user_id'
			   AND role <> 'super_admin';
			IF NOT FOUND THEN result := 'ignored: unknown user'; END IF;
		WHEN 'user.activated', 'user.deactivated' THEN
			UPDATE saas.users SET status = CASE WHEN ev.event_type = 'user.activated' THEN 'active' ELSE 'inactive' END
			 WHERE org_id = p_org AND external_user_ids ->> 'user_service' = d ->> 'user_id';
			IF NOT FOUND THEN result := 'ignored: unknown user'; END IF;
		WHEN 'subscription.created', 'subscription.updated', 'subscription.canceled' THEN
			-- subscription.updated says what changed in data.changes (and what it
			-- was in data.previous_values), beside the current status: the state
			-- is data with the changes laid over it.
			IF pg_catalog.jsonb_typeof(d -> 'changes') = 'object' THEN
				d := (d - '{changes,previous_values}'::text[]) || (d -> 'changes');
			END IF;
			INSERT INTO saas.subscriptions (org_id, subscription_ref, customer_ref, plan, status, amount, currency, last_event_at, details)
			VALUES (p_org, d ->> 'subscription_id', d ->> 'customer_id', d ->> 'plan',
					CASE WHEN ev.event_type = 'subscription.canceled' THEN 'canceled' ELSE coalesce(d ->> 'status', 'active') END,
					(d ->> 'amount')::numeric, d ->> 'currency', ev.occurred_at, d)
			ON CONFLICT (org_id, subscription_ref) DO UPDATE SET
				customer_ref = coalesce(EXCLUDED.customer_ref, saas.subscriptions.customer_ref),
				plan = coalesce(EXCLUDED.plan, saas.subscriptions.plan),
				status = EXCLUDED.status,
				amount = coalesce(EXCLUDED.amount, saas.subscriptions.amount),
				currency = coalesce(EXCLUDED.currency, saas.subscriptions.currency),
				last_event_at = EXCLUDED.last_event_at, updated_at = EXCLUDED.updated_at,
				details = saas.subscriptions.details || EXCLUDED.details;
			IF ev.event_type <> 'subscription.canceled' AND d ->> 'plan' IN ('free', 'starter', 'professional', 'enterprise') THEN
				UPDATE saas.organizations SET subscription_tier = d ->> 'plan'
				 WHERE id = p_org AND subscription_tier IS DISTINCT FROM d ->> 'plan';
			END IF;
		WHEN 'payment.succeeded', 'payment.failed', 'invoice.created' THEN
			UPDATE saas.subscriptions SET
				-- (searched CASEs: Citus deparses a simple CASE over a parameter wrongly,
				-- "operator does not exist: text = boolean")
				billing_status = CASE WHEN ev.event_type = 'payment.succeeded' THEN 'paid'
							WHEN ev.event_type = 'payment.failed' THEN 'past_due' ELSE 'invoiced' END,
				last_event_at = greatest(last_event_at, ev.occurred_at), updated_at = now(),
				details = details || jsonb_build_object(replace(ev.event_type, '.', '_'), d)
			 WHERE org_id = p_org
			   AND subscription_ref = coalesce(d ->> 'subscription_id',
					(SELECT s.subscription_ref FROM saas.subscriptions s WHERE s.org_id = p_org
					  ORDER BY s.last_event_at DESC LIMIT 1));
			IF NOT FOUND THEN result := 'ignored: no subscription'; END IF;
		WHEN 'message.sent', 'message.delivered', 'message.bounced', 'message.opened', 'message.clicked' THEN
			INSERT INTO saas.notifications (org_id, message_ref, kind, status, last_event_at, details)
			VALUES (p_org, d ->> 'message_id', d ->> 'template', split_part(ev.event_type, '.', 2), ev.occurred_at, d)
			ON CONFLICT (org_id, message_ref) DO UPDATE SET
				status = EXCLUDED.status, last_event_at = EXCLUDED.last_event_at, updated_at = EXCLUDED.updated_at,
				details = saas.notifications.details || EXCLUDED.details;
		ELSE
			result := 'ignored: unknown event type';
		END CASE;

		-- The entity's version moves only when the event changed something, or
		-- for a deletion (a tombstone: a late creation must not resurrect it).
		IF ev.entity_ref IS NOT NULL
		   AND (result = 'applied' OR ev.event_type IN ('user.deleted', 'subscription.canceled')) THEN
			INSERT INTO saas.entity_versions (org_id, service, entity_ref, last_event_at)
			VALUES (p_org, p_service, ev.entity_ref, ev.occurred_at)
			ON CONFLICT (org_id, service, entity_ref) DO UPDATE SET last_event_at = EXCLUDED.last_event_at;
		END IF;
		-- Newer events about this entity that arrived before it existed are applied again now.
		IF result = 'applied' AND ev.entity_ref IS NOT NULL
		   AND ev.event_type IN ('user.created', 'subscription.created') THEN
			UPDATE saas.webhook_events w SET applied_at = NULL, apply_result = NULL
			 WHERE w.org_id = p_org AND w.service = p_service AND w.entity_ref = ev.entity_ref
			   AND w.occurred_at > ev.occurred_at AND w.apply_result LIKE 'ignored: unknown%';
		END IF;
		IF result = 'applied' AND ev.event_type = 'subscription.created' THEN
			UPDATE saas.webhook_events w SET applied_at = NULL, apply_result = NULL
			 WHERE w.org_id = p_org AND w.service = p_service
			   AND w.apply_result = 'ignored: no subscription' AND w.occurred_at > ev.occurred_at;
		END IF;
	EXCEPTION WHEN OTHERS THEN
		-- What the rules refuse (SA4xx, constraints) is rejected for good, with
		-- the reason; anything else is a failure.
		IF SQLSTATE LIKE 'SA4%' OR SQLSTATE LIKE '23%' THEN
			result := 'rejected: ' || SQLERRM;
		ELSE
			result := 'failed: ' || SQLERRM;
		END IF;
	END;

	UPDATE saas.webhook_events SET applied_at = now(), apply_result = result
	 WHERE org_id = p_org AND service = p_service AND event_id = p_event;
	RETURN result;
END
$$;
COMMENT ON FUNCTION saas._apply_event(uuid, text, text) IS
	'Applies one ingested webhook event to internal state (users, subscriptions, notifications); called by the worker (private).';

-- Pull sync: one page of the user service's users for an organization.
-- Returns the newest last_updated seen, for the next sync's cursor.
CREATE FUNCTION saas._sync_users(p_org uuid, p_page jsonb) RETURNS timestamptz
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	u jsonb;
	uid uuid;
	newest timestamptz;
	st text;
	cur saas.users;
BEGIN
	FOR u IN SELECT * FROM jsonb_array_elements(coalesce(p_page -> 'data' -> 'users', p_page -> 'users', '[]')) LOOP
		BEGIN
			st := CASE WHEN u ->> 'status' IN ('active', 'inactive', 'suspended') THEN u ->> 'status' ELSE 'active' END;
			uid := saas._user_for_remote(p_org, u ->> 'user_id', u ->> 'email');
			-- On Citus the directory entries are written first (23_directory.sql).
			IF uid IS NULL THEN
				uid := saas.uuid_generate_v7();
				PERFORM saas._dir_set(p_org, uid, u ->> 'email', jsonb_build_object('user_service', u ->> 'user_id'));
				INSERT INTO saas.users (org_id, id, email, first_name, last_name, role, status, external_user_ids)
				VALUES (p_org, uid, lower(u ->> 'email'), coalesce(u ->> 'first_name', '-'), coalesce(u ->> 'last_name', '-'),
						'user', st, jsonb_build_object('user_service', u ->> 'user_id'));
			ELSE
				SELECT * INTO cur FROM saas.users x WHERE x.org_id = p_org AND x.id = uid;
				IF (cur.external_user_ids ->> 'user_service', cur.email)
				   IS DISTINCT FROM (u ->> 'user_id', coalesce(lower(u ->> 'email'), cur.email)) THEN
					PERFORM saas._dir_set(p_org, uid, coalesce(lower(u ->> 'email'), cur.email),
										  cur.external_user_ids || jsonb_build_object('user_service', u ->> 'user_id'));
				END IF;
				UPDATE saas.users SET
					external_user_ids = external_user_ids || jsonb_build_object('user_service', u ->> 'user_id'),
					email = coalesce(lower(u ->> 'email'), email),
					first_name = coalesce(u ->> 'first_name', first_name),
					last_name = coalesce(u ->> 'last_name', last_name),
					status = CASE WHEN role = 'user' THEN st ELSE status END
				 WHERE org_id = p_org AND id = uid
				   AND (external_user_ids ->> 'user_service', email, first_name, last_name, status)
					   IS DISTINCT FROM (u ->> 'user_id', coalesce(lower(u ->> 'email'), email),
										 coalesce(u ->> 'first_name', first_name), coalesce(u ->> 'last_name', last_name),
										 CASE WHEN role = 'user' THEN st ELSE status END);
			END IF;
			newest := greatest(newest, (u ->> 'last_updated')::timestamptz);
		EXCEPTION WHEN OTHERS THEN
			RAISE WARNING 'pg_saas sync: user % of organization % not applied: %', u ->> 'user_id', p_org, SQLERRM;
		END;
	END LOOP;
	RETURN newest;
END
$$;
COMMENT ON FUNCTION saas._sync_users(uuid, jsonb) IS 'Upserts one page of users read from the user service (pull sync, private).';

CREATE FUNCTION saas._sync_done(p_org uuid, p_service text, p_cursor timestamptz) RETURNS void
	LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
	INSERT INTO saas.sync_state (org_id, service, last_sync, cursor_time)
	VALUES (p_org, p_service, pg_catalog.now(), p_cursor)
	ON CONFLICT (org_id, service) DO UPDATE
	   SET last_sync = EXCLUDED.last_sync,
		   cursor_time = coalesce(EXCLUDED.cursor_time, saas.sync_state.cursor_time)
$$;
COMMENT ON FUNCTION saas._sync_done(uuid, text, timestamptz) IS 'Marks a completed pull sync: lastSync moves only here (private).';
