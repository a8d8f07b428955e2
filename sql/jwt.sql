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
-- numeric claims out of range or not integral are invalid claims, not SQL errors
SELECT saas.jwt_verify(saas.jwt_sign('{"exp":1e30}', 'secret'), 'secret');
SELECT saas.jwt_verify(saas.jwt_sign('{"exp":1.5}', 'secret'), 'secret');
