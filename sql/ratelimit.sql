-- Rate limiting: GCRA in shared memory, per email and client address on
-- /auth/*, per user on authenticated calls, with RateLimit-* headers and 429.
SELECT t.register('rl-a', 'admin@rl-a.test') AS tok \gset
-- The limiter itself: burst 3 at 60/min, the 4th is refused with Retry-After.
SELECT allowed, "limit", remaining, retry_after_s > 0 AS must_wait
  FROM generate_series(1, 4) i, LATERAL saas.rate_limit_check('test', 'k1' || left(i::text, 0), 60, 3);
SELECT allowed FROM saas.rate_limit_check('test', 'other-key', 60, 3);
SET ROLE regress_app;
SELECT saas.rate_limit_check('test', 'k1', 60, 3);
-- /auth/login per email: 10 attempts pass (and fail on the password), the 11th is 429.
-- (x-attempt makes each row a distinct call: constant calls would be evaluated once)
WITH attempts AS MATERIALIZED (
	SELECT i, r.status, r.headers->>'RateLimit-Limit' AS lim, r.headers->>'RateLimit-Remaining' AS remaining,
		   r.headers ? 'Retry-After' AS retry_after, r.body->'error'->>'code' AS code
	  FROM generate_series(1, 11) i,
		   LATERAL t.req('POST', '/auth/login', NULL, '{"email":"Victim@rl-a.test","password":"guess guess guess"}',
						 jsonb_build_object('x-attempt', i)) r)
SELECT * FROM attempts WHERE i IN (1, 10, 11) ORDER BY i;
-- the limit is per email (case-insensitive): another email is not affected
SELECT status FROM t.req('POST', '/auth/login', NULL, '{"email":"other@rl-a.test","password":"guess guess guess"}');
-- per client address, given by the relay in x-client-addr: burst 20, so 5 of 25
-- quick requests are refused (invalid bodies: no password hashing slows them)
SELECT count(*) FILTER (WHERE r.status = 429) AS refused_for_ip,
	   count(*) FILTER (WHERE r.status = 400) AS answered
  FROM generate_series(1, 25) i,
	   LATERAL t.req('POST', '/auth/login', NULL, '{}',
					 jsonb_build_object('x-client-addr', '203.0.113.9', 'x-attempt', i)) r;
-- Authenticated calls carry the per-user headers of the organization's tier (free: burst 60).
SELECT r.status, r.headers->>'RateLimit-Limit' AS lim, (r.headers->>'RateLimit-Remaining')::int < 60 AS counted,
	   (r.headers->>'RateLimit-Reset')::int >= 0 AS reset
  FROM t.req('GET', '/users', :'tok') r;
RESET ROLE;
-- Limits are a table; a change reaches the limiter at once.
UPDATE saas.rate_limits SET burst = 2, requests_per_minute = 2 WHERE tier = 'free' AND scope = 'user';
SELECT t.register('rl-b', 'admin@rl-b.test') AS tok_b \gset
SELECT array_agg(r.status ORDER BY i) AS statuses
  FROM generate_series(1, 3) i, LATERAL t.req('GET', '/users', :'tok_b', NULL, jsonb_build_object('x-attempt', i)) r;
UPDATE saas.rate_limits SET burst = 60, requests_per_minute = 600 WHERE tier = 'free' AND scope = 'user';
