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
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA t TO PUBLIC;
SELECT 'setup done' AS result;
