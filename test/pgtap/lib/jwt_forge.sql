-- Helpers for the pgTAP files that build tokens by hand: base64url, reading a
-- token's header and claims, and signing an arbitrary header and claims with
-- an arbitrary secret (pgcrypto's hmac). Included with \ir; the functions live
-- in pg_temp, so they vanish with the session and never touch schema saas.
-- Call them as pg_temp.name(...).

-- b64url: unpadded base64url, as in a compact JWT.
CREATE FUNCTION pg_temp.b64url(b bytea) RETURNS text LANGUAGE sql IMMUTABLE
	RETURN rtrim(translate(encode(b, 'base64'), E'+/\n', '-_'), '=');

-- b64url_decode: the inverse (padding added back).
CREATE FUNCTION pg_temp.b64url_decode(t text) RETURNS bytea LANGUAGE sql IMMUTABLE
	RETURN decode(rpad(translate(t, '-_', '+/'), (length(t) + 3) / 4 * 4, '='), 'base64');

-- jwt_header / jwt_claims: the decoded parts of a compact token (not verified).
CREATE FUNCTION pg_temp.jwt_header(tok text) RETURNS jsonb LANGUAGE sql IMMUTABLE
	RETURN convert_from(pg_temp.b64url_decode(split_part(tok, '.', 1)), 'UTF8')::jsonb;
CREATE FUNCTION pg_temp.jwt_claims(tok text) RETURNS jsonb LANGUAGE sql IMMUTABLE
	RETURN convert_from(pg_temp.b64url_decode(split_part(tok, '.', 2)), 'UTF8')::jsonb;

-- jwt_forge: header.claims.HMAC-SHA256(secret); with a NULL secret the
-- signature part is empty (an "alg":"none" token).
CREATE FUNCTION pg_temp.jwt_forge(header jsonb, claims jsonb, secret bytea) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN pg_temp.b64url(convert_to(header::text, 'UTF8')) || '.'
	|| pg_temp.b64url(convert_to(claims::text, 'UTF8')) || '.'
	|| coalesce(pg_temp.b64url(public.hmac(
		convert_to(pg_temp.b64url(convert_to(header::text, 'UTF8')) || '.'
				   || pg_temp.b64url(convert_to(claims::text, 'UTF8')), 'UTF8'),
		secret, 'sha256')), '');

-- jwt_claims_for: well-formed claims for (user, org, role), valid from
-- now + from_s to now + until_s seconds.
CREATE FUNCTION pg_temp.jwt_claims_for(sub uuid, org uuid, role text,
									   from_s int DEFAULT -60, until_s int DEFAULT 3600)
RETURNS jsonb LANGUAGE sql STABLE
RETURN jsonb_build_object(
	'iss', current_setting('saas.jwt_issuer'),
	'aud', current_setting('saas.jwt_audience'),
	'sub', sub, 'org_id', org, 'role', role,
	'iat', extract(epoch FROM now())::bigint + from_s,
	'nbf', extract(epoch FROM now())::bigint + from_s,
	'exp', extract(epoch FROM now())::bigint + until_s,
	'jti', gen_random_uuid());
