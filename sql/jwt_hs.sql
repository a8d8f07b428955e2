-- The pgjwt-style helpers take HS384 and HS512 as well as HS256 (as pgjwt
-- does); the algorithm is the caller's, never the token's. Tokens pg_saas
-- issues stay HS256, pinned per key: the context verifier refuses a token
-- saying HS384 or HS512 even when it is signed with the signing key.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

-- Known vectors (computed with Python's hmac): header {"alg":"HS384"|"HS512","typ":"JWT"},
-- payload {"sub": "x"} (jsonb's text form), secret "secret".
SELECT saas.jwt_sign('{"sub":"x"}', 'secret', 'HS384') =
	   'eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCJ9.eyJzdWIiOiAieCJ9.nq0DAzTbxYBETA1x3JlvoyXhpldPkABfcDIY9HU0OgIqNFN1K3wd54-rAbXo4lvy'
	   AS hs384_vector;
SELECT saas.jwt_sign('{"sub":"x"}', 'secret', 'HS512') =
	   'eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiAieCJ9.fMPxy8OaqPC7qfrhy3GlcxU8fEB4knQC-6ncAObU7USpHVWR8YO3nZvmgb798-lbepHrtNeexpAbSn8pRbF7VQ'
	   AS hs512_vector;
-- The same signatures from an independent HMAC implementation (pgcrypto), for a bytea key.
CREATE FUNCTION t.hs_b64url(b bytea) RETURNS text LANGUAGE sql AS $$
	SELECT rtrim(translate(replace(encode(b, 'base64'), E'\n', ''), '+/', '-_'), '=')
$$;
SELECT a.alg, split_part(saas.jwt_sign('{"n":1}', '\x00ff10'::bytea, a.alg), '.', 3) =
	   t.hs_b64url(hmac(convert_to(split_part(saas.jwt_sign('{"n":1}', '\x00ff10'::bytea, a.alg), '.', 1) || '.' ||
								   split_part(saas.jwt_sign('{"n":1}', '\x00ff10'::bytea, a.alg), '.', 2), 'UTF8'),
						'\x00ff10'::bytea, a.h)) AS matches_pgcrypto
  FROM (VALUES ('HS256', 'sha256'), ('HS384', 'sha384'), ('HS512', 'sha512')) a(alg, h);

-- Round trips, each algorithm verifying its own tokens only.
SELECT a.alg, saas.jwt_verify(saas.jwt_sign('{"sub":"x","n":2}', 'k', a.alg), 'k', a.alg) AS claims
  FROM (VALUES ('HS256'), ('HS384'), ('HS512')) a(alg);
SELECT saas.jwt_verify(saas.jwt_sign('{"sub":"x"}', 'secret', 'HS512'), 'secret');
SELECT saas.jwt_verify(saas.jwt_sign('{"sub":"x"}', 'secret', 'HS512'), 'secret', 'HS384');
SELECT saas.jwt_verify(saas.jwt_sign('{"sub":"x"}', 'secret'), 'secret', 'HS512');
-- wrong key, tampered payload, a truncated or an HS256-length signature under HS512
SELECT saas.jwt_verify(saas.jwt_sign('{"sub":"x"}', 'secret', 'HS512'), 'other', 'HS512');
SELECT saas.jwt_verify(split_part(saas.jwt_sign('{"sub":"x"}', 'secret', 'HS384'), '.', 1) || '.eyJzdWIiOiJ5In0.' ||
					   split_part(saas.jwt_sign('{"sub":"x"}', 'secret', 'HS384'), '.', 3), 'secret', 'HS384');
SELECT saas.jwt_verify(left(saas.jwt_sign('{"sub":"x"}', 'secret', 'HS512'), -43), 'secret', 'HS512');
SELECT saas.jwt_verify('eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiAieCJ9.' ||
					   split_part(saas.jwt_sign('{"sub":"x"}', 'secret'), '.', 3), 'secret', 'HS512');
-- time claims hold for every algorithm
SELECT saas.jwt_verify(saas.jwt_sign(jsonb_build_object('exp', extract(epoch FROM now())::int - 3600), 'secret', 'HS384'), 'secret', 'HS384');
-- algorithms refused as arguments: none, asymmetric ones, case variants
SELECT saas.jwt_sign('{"sub":"x"}', 'secret', 'none');
SELECT saas.jwt_sign('{"sub":"x"}', 'secret', 'hs512');
SELECT saas.jwt_verify(saas.jwt_sign('{"sub":"x"}', 'secret'), 'secret', 'none');
SELECT saas.jwt_verify(saas.jwt_sign('{"sub":"x"}', 'secret'), 'secret', 'RS512');
-- alg none presented to an HS512 verification
SELECT saas.jwt_verify('eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0.', 'secret', 'HS512');
-- a signature longer than any HMAC
SELECT saas.jwt_verify(saas.jwt_sign('{"sub":"x"}', 'secret', 'HS512') || 'AAAA', 'secret', 'HS512');

-- pg_saas's own tokens: HS256, pinned per key. A real token re-signed with
-- the signing key under HS384 or HS512 (header alg changed, same kid and
-- claims) is refused by saas.authenticate and is no context in saas.context.
SELECT t.register('jwths', 'admin@jwths.test') AS tok \gset
SELECT convert_from(decode(rpad(translate(split_part(:'tok', '.', 1), '-_', '+/'),
	   (length(split_part(:'tok', '.', 1)) + 3) / 4 * 4, '='), 'base64'), 'UTF8')::jsonb ->> 'alg' AS issued_alg;
CREATE FUNCTION t.claim_header(tok text, name text) RETURNS text LANGUAGE sql AS $$
	SELECT convert_from(decode(rpad(translate(split_part(tok, '.', 1), '-_', '+/'),
		   (length(split_part(tok, '.', 1)) + 3) / 4 * 4, '='), 'base64'), 'UTF8')::jsonb ->> name
$$;
CREATE FUNCTION t.resign(tok text, p_alg text, p_hash text) RETURNS text LANGUAGE sql AS $$
	SELECT si || '.' || t.hs_b64url(hmac(convert_to(si, 'UTF8'), k.secret, p_hash))
	  FROM saas._signing_keys k,
		   LATERAL (SELECT t.hs_b64url(convert_to(jsonb_build_object('alg', p_alg, 'typ', 'JWT', 'kid', k.kid)::text, 'UTF8'))
						   || '.' || split_part(tok, '.', 2) AS si) s
	 WHERE k.kid = t.claim_header(tok, 'kid')
$$;
-- control: the same construction under HS256 is accepted (the test can tell)
SELECT saas.authenticate(t.resign(:'tok', 'HS256', 'sha256')) ->> 'role' AS hs256_resigned;
SELECT saas.authenticate(t.resign(:'tok', 'HS384', 'sha384'));
SELECT saas.authenticate(t.resign(:'tok', 'HS512', 'sha512'));
SELECT t.resign(:'tok', 'HS512', 'sha512') AS tok512 \gset
SET ROLE regress_app;
BEGIN;
SELECT set_config('saas.context', :'tok512', true) IS NOT NULL AS set_hs512;
SELECT count(*) AS users_visible, saas.current_org_id() IS NULL AS no_context FROM saas.users;
ROLLBACK;
RESET ROLE;
