-- Shared fixtures for the regress suites: an application login role and
-- helpers that call saas.http and print only stable parts of the answers.
SET client_min_messages = warning;
DO $$
BEGIN
	CREATE ROLE regress_app LOGIN IN ROLE saas_api;
EXCEPTION WHEN duplicate_object THEN NULL;
END
$$;
CREATE SCHEMA IF NOT EXISTS t;
GRANT USAGE ON SCHEMA t TO PUBLIC;

-- t.req: one API call with an optional bearer token and JSON body.
CREATE FUNCTION t.req(method text, path text, tok text DEFAULT NULL, body text DEFAULT NULL,
					  extra jsonb DEFAULT '{}')
RETURNS TABLE (status int, headers jsonb, body jsonb) LANGUAGE sql AS $$
	SELECT h.status, h.headers, h.body::jsonb
	  FROM saas.http(method, path,
					 jsonb_strip_nulls(jsonb_build_object(
						'authorization', CASE WHEN tok IS NOT NULL THEN 'Bearer ' || tok END,
						'content-type', CASE WHEN body IS NOT NULL THEN 'application/json' END)) || extra,
					 body) h
$$;

-- t.err: status and error code/message/fields of an answer.
CREATE FUNCTION t.err(method text, path text, tok text DEFAULT NULL, body text DEFAULT NULL,
					  extra jsonb DEFAULT '{}')
RETURNS text LANGUAGE sql AS $$
	SELECT r.status || ' ' || coalesce(r.body->'error'->>'code', '-') || ': '
		   || coalesce(r.body->'error'->>'message', '')
		   || coalesce(' [' || (SELECT string_agg(d->>'field' || ' ' || (d->>'message'), '; ')
								  FROM jsonb_array_elements(r.body->'error'->'details') d) || ']', '')
	  FROM t.req(method, path, tok, body, extra) r
$$;

-- t.register: a new organization and its admin; returns the token.
CREATE FUNCTION t.register(org text, email text) RETURNS text LANGUAGE sql AS $$
	SELECT (saas.register(jsonb_build_object(
		'organization', jsonb_build_object('name', org, 'slug', org),
		'email', email, 'password', 'correct horse battery',
		'first_name', 'First', 'last_name', 'Last')))->>'token'
$$;

-- t.claim: a claim of a token, read without verification (test helper only). IMMUTABLE: Citus
-- refuses a volatile function in the WHERE clause of an UPDATE or DELETE.
CREATE FUNCTION t.claim(tok text, claim text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT convert_from(decode(rpad(translate(split_part(tok, '.', 2), '-_', '+/'),
					   (length(split_part(tok, '.', 2)) + 3) / 4 * 4, '='), 'base64'), 'UTF8')::jsonb ->> claim
$$;
-- t.sql: run a statement as the caller; 'ok (n rows)' or SQLSTATE: message.
CREATE FUNCTION t.sql(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	EXECUTE stmt;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN 'ok (' || n || ' rows)';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
-- t.as: the same inside a transaction-local context (the token's).
CREATE FUNCTION t.as(tok text, stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM saas.authenticate(tok);
	RETURN t.sql(stmt);
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
-- t.apply_where: apply the events a condition picks, in an order, as the worker does (owner).
-- The events are read first, then applied one by one: on Citus a function that writes
-- cannot be called from inside a query over a distributed table.
CREATE FUNCTION t.apply_where(p_where text, p_order text) RETURNS TABLE (event_id text, apply_result text)
LANGUAGE plpgsql AS $$
DECLARE
	e record;
BEGIN
	FOR e IN EXECUTE 'SELECT e.org_id, e.service, e.event_id FROM saas.webhook_events e WHERE ' || p_where
					 || ' ORDER BY ' || p_order
	LOOP
		event_id := e.event_id;
		apply_result := saas._apply_event(e.org_id, e.service, e.event_id);
		RETURN NEXT;
	END LOOP;
END
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA t TO PUBLIC;
SELECT 'setup done' AS result;
