-- Foundation benchmark helpers (database bench_foundation; run as a superuser).
--
-- bench.mint builds an HS256 JWT the way a token issuer outside the database would: it reads
-- nothing of pg_saas but the active signing key it is given, and signs with pgcrypto's hmac().
-- That gives benchmarks as many distinct valid tokens as they need without saas.login, whose
-- argon2id check costs ~50 ms a token.

CREATE SCHEMA bench;
GRANT USAGE ON SCHEMA bench TO saas_api;

-- What was loaded, so a later bench reuses it.
CREATE TABLE bench.meta (orgs int NOT NULL, users_per_org int NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now());

-- base64url without padding (encode(..., 'base64') also wraps lines every 76 characters).
CREATE FUNCTION bench.b64url(b bytea) RETURNS text LANGUAGE sql IMMUTABLE STRICT
RETURN pg_catalog.translate(pg_catalog.encode(b, 'base64'), E'+/=\n', '-_');

-- The active key: the newest that is not retired (the one saas.login signs with).
CREATE FUNCTION bench.active_key(OUT kid text, OUT secret bytea) LANGUAGE sql STABLE AS $$
	SELECT k.kid, k.secret FROM saas._signing_keys k
	 WHERE k.retired_at IS NULL ORDER BY k.created_at DESC LIMIT 1
$$;

-- A token with the claims saas.login issues: iss, aud, sub, org_id, role, iat, nbf, exp (+1 h), jti.
-- Compact JSON, like the extension's own tokens, so that lengths (and parse costs) match.
CREATE FUNCTION bench.mint(org uuid, sub uuid, role text, jti text, kid text, secret bytea)
RETURNS text LANGUAGE sql STABLE
RETURN (
	SELECT si || '.' || bench.b64url(public.hmac(pg_catalog.convert_to(si, 'UTF8'), secret, 'sha256'))
	  FROM (SELECT bench.b64url(pg_catalog.convert_to(
					pg_catalog.format('{"alg":"HS256","typ":"JWT","kid":"%s"}', kid), 'UTF8'))
				   || '.' ||
				   bench.b64url(pg_catalog.convert_to(pg_catalog.format(
					'{"iss":"pg_saas","aud":"pg_saas_api","sub":"%s","org_id":"%s","role":"%s","iat":%s,"nbf":%s,"exp":%s,"jti":"%s"}',
					sub, org, role, t, t, t + 3600, jti), 'UTF8')) AS si
			  FROM (SELECT extract(epoch FROM pg_catalog.now())::bigint AS t) n) s);

-- A token for the admin (the first user) of bench org number k, with its org and user ids.
CREATE FUNCTION bench.org_token(k int, OUT token text, OUT org_id uuid, OUT user_id uuid)
LANGUAGE sql STABLE AS $$
	SELECT bench.mint(u.org_id, u.id, 'admin', pg_catalog.gen_random_uuid()::text, a.kid, a.secret),
		   u.org_id, u.id
	  FROM saas.organizations o
	  JOIN saas.users u ON u.org_id = o.id AND u.email = 'user1@' || o.slug || '.example.com',
		   bench.active_key() a
	 WHERE o.slug = 'bench-org-' || pg_catalog.lpad(k::text, 3, '0')
$$;

-- Per-call costs of the tenant context, measured inside one backend so that no client round
-- trip is counted. Each round times a baseline loop and the loop under test back to back
-- over the same rows; the cost is (t_test - t_base) / calls. Returns one row per round and
-- figure; the caller takes the median.
--   auth_cached:   saas.authenticate(t) with the same token, calls times
--   auth_uncached: saas.authenticate(t) over calls distinct tokens (bench.tokens)
--   current_org:   saas.current_org_id() 10 x calls times with a verified context
CREATE FUNCTION bench.context_costs(calls int, rounds int)
RETURNS TABLE (figure text, rnd int, base_us numeric, test_us numeric, per_call_us numeric)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	tok text;
	t0 timestamptz;
	t1 timestamptz;
	t2 timestamptz;
	m int := calls * 10;	-- current_org_id is ~100x cheaper: more calls for the same resolution
BEGIN
	SELECT t.tok INTO tok FROM bench.tokens t WHERE t.n = 1;
	FOR r IN 1..rounds LOOP
		-- same token every call
		t0 := pg_catalog.clock_timestamp();
		PERFORM pg_catalog.count(pg_catalog.length(tok)) FROM pg_catalog.generate_series(1, calls);
		t1 := pg_catalog.clock_timestamp();
		PERFORM pg_catalog.count(saas.authenticate(tok)) FROM pg_catalog.generate_series(1, calls);
		t2 := pg_catalog.clock_timestamp();
		figure := 'auth_cached'; rnd := r;
		base_us := extract(epoch FROM t1 - t0) * 1e6; test_us := extract(epoch FROM t2 - t1) * 1e6;
		per_call_us := (test_us - base_us) / calls;
		RETURN NEXT;

		-- a different token every call
		t0 := pg_catalog.clock_timestamp();
		PERFORM pg_catalog.count(pg_catalog.length(t.tok)) FROM bench.tokens t WHERE t.n <= calls;
		t1 := pg_catalog.clock_timestamp();
		PERFORM pg_catalog.count(saas.authenticate(t.tok)) FROM bench.tokens t WHERE t.n <= calls;
		t2 := pg_catalog.clock_timestamp();
		figure := 'auth_uncached'; rnd := r;
		base_us := extract(epoch FROM t1 - t0) * 1e6; test_us := extract(epoch FROM t2 - t1) * 1e6;
		per_call_us := (test_us - base_us) / calls;
		RETURN NEXT;

		-- the function every policy calls, with a verified context in force
		PERFORM saas.authenticate(tok);
		t0 := pg_catalog.clock_timestamp();
		PERFORM pg_catalog.count('00000000-0000-0000-0000-000000000000'::uuid) FROM pg_catalog.generate_series(1, m);
		t1 := pg_catalog.clock_timestamp();
		PERFORM pg_catalog.count(saas.current_org_id()) FROM pg_catalog.generate_series(1, m);
		t2 := pg_catalog.clock_timestamp();
		figure := 'current_org'; rnd := r;
		base_us := extract(epoch FROM t1 - t0) * 1e6; test_us := extract(epoch FROM t2 - t1) * 1e6;
		per_call_us := (test_us - base_us) / m;
		RETURN NEXT;
	END LOOP;
END
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA bench TO saas_api;
REVOKE EXECUTE ON FUNCTION bench.active_key(), bench.mint(uuid, uuid, text, text, text, bytea),
	bench.org_token(int) FROM PUBLIC, saas_api;
