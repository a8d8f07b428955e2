-- JWT: signing and verification helpers, strict parsing, and every way a
-- token can be wrong, each refused with its reason.
SELECT saas.jwt_verify(saas.jwt_sign('{"sub":"x","n":1}', 'secret'), 'secret') AS round_trip;
SELECT saas.jwt_sign('{"sub":"x"}', 'secret') = saas.jwt_sign('{"sub":"x"}', 'secret'::bytea) AS text_and_bytea_agree;
-- Known vector: header {"alg":"HS256","typ":"JWT"}, payload {"sub": "x"} (jsonb text form).
SELECT saas.jwt_sign('{"sub":"x"}', 'secret');
-- The same signature from an independent HMAC implementation (pgcrypto).
CREATE EXTENSION IF NOT EXISTS pgcrypto;
SELECT split_part(saas.jwt_sign('{"sub":"x"}', 'secret'), '.', 3) =
	   rtrim(translate(encode(hmac('eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiAieCJ9', 'secret', 'sha256'), 'base64'), '+/', '-_'), '=')
	   AS matches_pgcrypto;
-- wrong key, tampered payload, tampered signature
SELECT saas.jwt_verify(saas.jwt_sign('{"sub":"x"}', 'secret'), 'other');
SELECT saas.jwt_verify(split_part(saas.jwt_sign('{"sub":"x"}', 'secret'), '.', 1) || '.eyJzdWIiOiJ5In0.' ||
					   split_part(saas.jwt_sign('{"sub":"x"}', 'secret'), '.', 3), 'secret');
SELECT saas.jwt_verify(left(saas.jwt_sign('{"sub":"x"}', 'secret'), -2) || 'AA', 'secret');
-- time claims, with the default 30 s leeway
SELECT saas.jwt_verify(saas.jwt_sign(jsonb_build_object('exp', extract(epoch FROM now())::int - 3600), 'secret'), 'secret');
SELECT saas.jwt_verify(saas.jwt_sign(jsonb_build_object('exp', extract(epoch FROM now())::int - 10), 'secret'), 'secret') ? 'exp' AS within_leeway;
SELECT saas.jwt_verify(saas.jwt_sign(jsonb_build_object('nbf', extract(epoch FROM now())::int + 3600), 'secret'), 'secret');
SELECT saas.jwt_verify(saas.jwt_sign(jsonb_build_object('iat', extract(epoch FROM now())::int + 3600), 'secret'), 'secret');
SELECT saas.jwt_verify(saas.jwt_sign('{"exp":"tomorrow"}', 'secret'), 'secret');
-- alg none (empty signature), alg HS512 header, unsupported alg argument
SELECT saas.jwt_verify('eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0.', 'secret');
SELECT saas.jwt_verify('eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0', 'secret');
SELECT saas.jwt_verify('eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4In0.' || split_part(saas.jwt_sign('{"sub":"x"}', 'secret'), '.', 3), 'secret');
SELECT saas.jwt_sign('{"sub":"x"}', 'secret', 'none');
SELECT saas.jwt_verify(saas.jwt_sign('{"sub":"x"}', 'secret'), 'secret', 'RS256');
-- malformed: segments, padding, alphabet, JSON, header fields
SELECT saas.jwt_verify('', 'secret');
SELECT saas.jwt_verify('a.b', 'secret');
SELECT saas.jwt_verify('a.b.c.d', 'secret');
SELECT saas.jwt_verify(saas.jwt_sign('{"sub":"x"}', 'secret') || '=', 'secret');
SELECT saas.jwt_verify(overlay(saas.jwt_sign('{"sub":"x"}', 'secret') placing '+' from 50 for 1), 'secret');
SELECT saas.jwt_verify('bm90IGpzb24.eyJzdWIiOiJ4In0.AAAA', 'secret');
-- header with an unknown field ("crit") and with a duplicate alg
SELECT saas.jwt_verify('eyJhbGciOiJIUzI1NiIsImNyaXQiOlsiZXhwIl19.eyJzdWIiOiJ4In0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'secret');
SELECT saas.jwt_verify('eyJhbGciOiJIUzI1NiIsImFsZyI6Im5vbmUifQ.eyJzdWIiOiJ4In0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'secret');
SELECT saas.jwt_sign('[1,2]', 'secret');
SELECT saas.jwt_sign('{"sub":"x"}', '');
-- numeric claims out of range are invalid claims, not SQL errors; a
-- non-integer one is a NumericDate like any other (1.5 s after 1970: expired)
SELECT saas.jwt_verify(saas.jwt_sign('{"exp":1e30}', 'secret'), 'secret');
SELECT saas.jwt_verify(saas.jwt_sign('{"exp":1.5}', 'secret'), 'secret');

-- Tokens by the RFCs: what RFC 7519 and RFC 7515 allow, and libraries such
-- as jose emit, is valid. verdict: 'valid' or the reason for refusal.
CREATE FUNCTION t.jwt_verdict(tok text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM saas.jwt_verify(tok, 'secret');
	RETURN 'valid';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLERRM;
END
$$;
-- Non-integer NumericDates (RFC 7519 section 2). The checks compare whole
-- seconds; exp is rounded down, nbf and iat up, which gives the answer of the
-- exact value (leeway 30 s; s is now in whole seconds, e now with microseconds).
SELECT c.name || ' ' || c.claim_text AS claim,
	   t.jwt_verdict(saas.jwt_sign(jsonb_build_object('sub', 'x', c.name, c.val), 'secret'))
  FROM (SELECT extract(epoch FROM now()) AS e, floor(extract(epoch FROM now())) AS s) n,
	   LATERAL (VALUES
		(1, 'exp', 'in an hour, with microseconds', n.e + 3600),
		(2, 'exp', 'an hour ago, with microseconds', n.e - 3600),
		(3, 'exp', '29.5 s ago (within the leeway)', n.s - 29.5),
		(4, 'exp', '30.5 s ago (past the leeway)', n.s - 30.5),
		(5, 'nbf', 'now, with microseconds', n.e),
		(6, 'nbf', 'in 29.5 s (within the leeway)', n.s + 29.5),
		(7, 'nbf', 'in 30.5 s (past the leeway)', n.s + 30.5),
		(8, 'iat', 'now, with microseconds', n.e),
		(9, 'iat', 'in an hour and a quarter second', n.e + 3600.25)) c(i, name, claim_text, val)
 ORDER BY c.i;
-- Tokens made by hand (pgcrypto's HMAC), to control the header and the
-- payload text; the first is exactly what saas.jwt_sign makes.
CREATE FUNCTION t.jwt_b64url(b bytea) RETURNS text LANGUAGE sql AS $$
	SELECT rtrim(translate(replace(encode(b, 'base64'), E'\n', ''), '+/', '-_'), '=')
$$;
CREATE FUNCTION t.jwt_jws(header text, payload text) RETURNS text LANGUAGE sql AS $$
	SELECT si || '.' || t.jwt_b64url(hmac(si, 'secret', 'sha256'))
	  FROM (SELECT t.jwt_b64url(convert_to(header, 'UTF8')) || '.' ||
				   t.jwt_b64url(convert_to(payload, 'UTF8')) AS si) s
$$;
SELECT t.jwt_jws('{"alg":"HS256","typ":"JWT"}', '{"sub": "x"}') = saas.jwt_sign('{"sub":"x"}', 'secret') AS same_as_jwt_sign;
-- NumericDates as other libraries write them: exponent, fraction, both
-- (4.1e9 s is in 2099).
SELECT p AS payload, t.jwt_verdict(t.jwt_jws('{"alg":"HS256","typ":"JWT"}', p))
  FROM (VALUES ('{"sub":"x","exp":4.1e9}'), ('{"sub":"x","exp":4100000000.5}'),
			   ('{"sub":"x","exp":4.1000000005E+9,"iat":1.7e9,"nbf":1700000000.999}'),
			   ('{"sub":"x","exp":4.1e99}'), ('{"sub":"x","exp":-1.5}')) v(p);
-- typ is a media type, compared case-insensitively (RFC 7515 section 4.1.9),
-- "application/" implied; other types are refused.
SELECT typ, t.jwt_verdict(t.jwt_jws('{"alg":"HS256","typ":"' || typ || '"}', '{"sub":"x"}'))
  FROM (VALUES ('JWT'), ('jwt'), ('Jwt'), ('application/jwt'), ('Application/JWT'),
			   ('JWS'), ('at+jwt'), ('jwt '), ('jwtx')) v(typ);
