-- test/relay/stub.sql: a stand-in for the extension's saas.http(), for the relay's tests only.
--
-- Loaded into a database of its own (no pg_saas there), so that saas-http can be tested before,
-- and independently of, the real router.  By default it echoes what it received as JSON; paths
-- under /_stub/ make it misbehave on purpose:
--   /_stub/sleep/<seconds>      sleep, then echo
--   /_stub/raise/<sqlstate>     raise an error with that SQLSTATE
--   /_stub/respond              answer with the request body's {"status", "headers", "body"}
--   /_stub/status/<code>        answer that status with a small body (none for 204)
--   /_stub/norows               return no row
--   /_stub/nullstatus           return a row whose status is NULL
--   /_stub/big/<bytes>          a text body of that many bytes
--   /_stub/terminate            terminate the calling backend (connection lost mid-call)
-- Every call is counted in saas.stub_calls, so that tests can tell whether a request reached it.

CREATE SCHEMA saas;

CREATE TABLE saas.stub_calls (
	id bigserial PRIMARY KEY,
	method text,
	path text,
	at timestamptz DEFAULT pg_catalog.clock_timestamp()
);

-- Parameter names differ from the output columns: PL/pgSQL forbids one name for both.
CREATE FUNCTION saas.http(p_method text, p_path text, p_headers jsonb, p_body text)
RETURNS TABLE(status int, headers jsonb, body text)
LANGUAGE plpgsql AS $$
DECLARE
	route text := split_part(p_path, '?', 1);
	cmd text := split_part(route, '/', 3);
	arg text := split_part(route, '/', 4);
	req jsonb;
BEGIN
	INSERT INTO saas.stub_calls(method, path) VALUES (p_method, p_path);
	IF route LIKE '/\_stub/%' THEN
		CASE cmd
		WHEN 'sleep' THEN
			PERFORM pg_catalog.pg_sleep(arg::float8);
		WHEN 'raise' THEN
			RAISE EXCEPTION 'stub raised %', arg USING ERRCODE = arg;
		WHEN 'respond' THEN
			req := p_body::jsonb;
			RETURN QUERY SELECT (req->>'status')::int, req->'headers', req->>'body';
			RETURN;
		WHEN 'status' THEN
			RETURN QUERY SELECT arg::int,
				jsonb_build_object('Content-Type', 'application/json', 'X-Stub', 'status'),
				CASE WHEN arg = '204' THEN NULL ELSE '{"status":' || arg || '}' END;
			RETURN;
		WHEN 'norows' THEN
			RETURN;
		WHEN 'nullstatus' THEN
			RETURN QUERY SELECT NULL::int, '{}'::jsonb, 'x'::text;
			RETURN;
		WHEN 'big' THEN
			RETURN QUERY SELECT 200, '{"Content-Type": "text/plain"}'::jsonb, repeat('x', arg::int);
			RETURN;
		WHEN 'terminate' THEN
			PERFORM pg_catalog.pg_terminate_backend(pg_catalog.pg_backend_pid());
		ELSE
			NULL;
		END CASE;
	END IF;
	RETURN QUERY SELECT 200,
		jsonb_build_object('Content-Type', 'application/json', 'X-Stub', 'echo'),
		jsonb_build_object('method', p_method, 'path', p_path, 'headers', p_headers,
						   'body', p_body)::text;
END
$$;

REVOKE ALL ON FUNCTION saas.http(text, text, jsonb, text) FROM PUBLIC;
GRANT USAGE ON SCHEMA saas TO relay_test_api;
GRANT EXECUTE ON FUNCTION saas.http(text, text, jsonb, text) TO relay_test_api;
GRANT INSERT ON saas.stub_calls TO relay_test_api;
GRANT USAGE ON SEQUENCE saas.stub_calls_id_seq TO relay_test_api;
