-- 30_http, API side (role app): GET /users?limit=50 through saas.http, the statement the relay
-- prepares (shim/pool.c). An answer other than 200 aborts the run with its status in the
-- error message (the cast fails), so errors or 429s can never pass for throughput.
SELECT status, headers,
       CASE WHEN status = 200 THEN body ELSE ('unexpected HTTP status ' || status || ': ' || body)::int::text END
  FROM saas.http(:method, :path, :hdr::pg_catalog.jsonb, NULL);
