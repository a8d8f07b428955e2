-- Rate limiting that cannot be dodged (docs/security.md, "Rate limiting"):
-- every spelling of an email that the login lookup folds together spends one
-- budget; a key whose budget is in use keeps it however many other keys are
-- aimed at its slots; when a window has no room, the newcomer waits.

-- 1. Spellings. K (U+212A KELVIN SIGN) and İ (U+0130) are lower()ed to k and
-- i, so the login lookup finds kelvin@rl-k.test for all of them (the test
-- cluster runs in C.UTF-8); the per-email limit must count them as one.
SELECT lower(E'\u212Aelv\u0130n@RL-K.test') = 'kelvin@rl-k.test' AS lookup_folds_them;
SELECT t.register('rl-k', 'kelvin@rl-k.test') IS NOT NULL AS registered;
-- auth_email allows 10 per minute (burst 10): 3 logins by 3 spellings, 7
-- wrong passwords by more spellings, then the 11th attempt is 429.
WITH spellings(i, email, password) AS (VALUES
	(1, 'kelvin@rl-k.test', 'correct horse battery'),
	(2, '\u212Aelvin@rl-k.test', 'correct horse battery'),
	(3, 'kelv\u0130n@rl-k.test', 'correct horse battery'),
	(4, 'KELV\u0130N@RL-K.TEST', 'guess guess guess'),
	(5, '\u212AELV\u0130N@rl-k.test', 'guess guess guess'),
	(6, 'KELVIN@rl-\u212A.test', 'guess guess guess'),
	(7, 'Kelvin@rl-k.test', 'guess guess guess'),
	(8, 'kelv\u0130n@RL-\u212A.TEST', 'guess guess guess'),
	(9, 'kElViN@rl-k.test', 'guess guess guess'),
	(10, '\u212Aelv\u0130n@rl-k.test', 'guess guess guess'),
	(11, '\u212Aelvin@rl-k.test', 'correct horse battery')),
attempts AS MATERIALIZED (
	SELECT s.i, s.email, r.status, r.headers->>'RateLimit-Remaining' AS remaining,
		   r.headers ? 'Retry-After' AS retry_after
	  FROM spellings s,
		   LATERAL t.req('POST', '/auth/login', NULL,
						 '{"email":"' || s.email || '","password":"' || s.password || '"}',
						 jsonb_build_object('x-attempt', s.i)) r)
SELECT * FROM attempts ORDER BY i;
-- another email still has its own budget
SELECT status FROM t.req('POST', '/auth/login', NULL, '{"email":"kelvin2@rl-k.test","password":"guess guess guess"}');

-- 2. Slots. Which keys share a window depends on the cluster's secret, so an
-- attacker cannot aim keys at a victim. The test can: this owner-only helper
-- (not in the install script, never granted) searches with the secret.
DO $$
BEGIN
	IF to_regprocedure('saas._rate_limit_colliders(text,text,integer)') IS NULL THEN
		CREATE FUNCTION saas._rate_limit_colliders(scope text, key text, n integer) RETURNS text[]
			AS '$libdir/pg_saas', 'saas_rate_limit_colliders' LANGUAGE C VOLATILE STRICT;
		COMMENT ON FUNCTION saas._rate_limit_colliders(text, text, integer) IS
			'Test only: n keys whose rate-limit window is that of scope:key (needs the secret; owner only).';
	END IF;
	REVOKE ALL ON FUNCTION saas._rate_limit_colliders(text, text, integer) FROM PUBLIC;
END
$$;
SET ROLE regress_app;
SELECT saas._rate_limit_colliders('atk', 'victim', 1);
RESET ROLE;
-- The victim: burst 2 at 1 per minute, spent, so limited for a minute.
SELECT i, allowed, remaining
  FROM generate_series(1, 3) i, LATERAL saas.rate_limit_check('atk', 'victim' || left(i::text, 0), 1, 2);
-- 41 keys whose window is the victim's (16 slots).
CREATE TEMP TABLE colliders AS
	SELECT k, n FROM unnest(saas._rate_limit_colliders('atk', 'victim', 41)) WITH ORDINALITY AS c(k, n);
SELECT count(DISTINCT k) AS colliders FROM colliders;
-- Quick keys (full again a microsecond after each request) come and go in
-- the window's other slots: every one is served, and the victim stays limited.
SELECT count(*) FILTER (WHERE r.allowed) AS served
  FROM colliders c, LATERAL saas.rate_limit_check('atk', c.k, 60000000, 1) r
 WHERE c.n <= 40;
SELECT allowed, retry_after_s > 0 AS must_wait FROM saas.rate_limit_check('atk', 'victim', 1, 2);
-- Slow keys (1 per minute: each holds its slot for a minute) fill the rest of
-- the window; the ones that find no room are refused, told when to retry,
-- and none of them displaces the victim.
SELECT count(*) FILTER (WHERE r.allowed) BETWEEN 1 AND 15 AS at_most_15_placed,
	   count(*) FILTER (WHERE NOT r.allowed) >= 25 AS the_rest_refused,
	   bool_and(r.allowed OR r.retry_after_s BETWEEN 1 AND 60) AS refused_told_when
  FROM colliders c, LATERAL saas.rate_limit_check('atk', c.k, 1, 1) r
 WHERE c.n <= 40;
-- The victim's budget was not reset to make room.
SELECT allowed, remaining, retry_after_s > 0 AS must_wait FROM saas.rate_limit_check('atk', 'victim', 1, 2);
-- A newcomer to the full window is limited (429 through the API), not the victim forgiven.
SELECT r.allowed, r.remaining, r.retry_after_s BETWEEN 1 AND 60 AS retry_within_a_minute
  FROM colliders c, LATERAL saas.rate_limit_check('atk', c.k, 1000, 1000) r
 WHERE c.n = 41;
-- Keys elsewhere are not affected.
SELECT allowed FROM saas.rate_limit_check('atk', 'bystander', 1, 2);
