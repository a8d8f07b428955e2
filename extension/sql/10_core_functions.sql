-- Part 10: the C functions everything else stands on: ids, tenant context, JWT, passwords.

CREATE FUNCTION saas.uuid_generate_v7() RETURNS uuid
	AS 'MODULE_PATHNAME', 'saas_uuid_generate_v7' LANGUAGE C VOLATILE PARALLEL SAFE STRICT;
COMMENT ON FUNCTION saas.uuid_generate_v7() IS 'A new time-ordered UUID (version 7, RFC 9562).';

CREATE FUNCTION saas._random_bytes(integer) RETURNS bytea
	AS 'MODULE_PATHNAME', 'saas_random_bytes_sql' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION saas._random_bytes(integer) IS 'Cryptographically strong random bytes (private).';

-- Tenant context: verified, cached per transaction, read by every policy.
CREATE FUNCTION saas.authenticate(token text) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_authenticate' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION saas.authenticate(text) IS
	'Verifies a JWT and makes it the tenant context of the current transaction; returns its claims.';

CREATE FUNCTION saas.current_org_id() RETURNS uuid
	AS 'MODULE_PATHNAME', 'saas_current_org_id' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION saas.current_org_id() IS 'Organization of the verified tenant context, or NULL.';

CREATE FUNCTION saas.current_user_id() RETURNS uuid
	AS 'MODULE_PATHNAME', 'saas_current_user_id' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION saas.current_user_id() IS 'User of the verified tenant context, or NULL.';

CREATE FUNCTION saas.current_role() RETURNS text
	AS 'MODULE_PATHNAME', 'saas_current_role' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION saas.current_role() IS 'Application role (super_admin, admin, user) of the verified tenant context, or NULL.';

CREATE FUNCTION saas._context_trusted() RETURNS boolean
	AS 'MODULE_PATHNAME', 'saas_context_trusted' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION saas._context_trusted() IS 'True while the extension''s own C code acts (registration, the worker).';

-- pgjwt-style helpers. STABLE, not IMMUTABLE: verification reads the clock.
CREATE FUNCTION saas.jwt_sign(claims jsonb, secret bytea, alg text DEFAULT 'HS256') RETURNS text
	AS 'MODULE_PATHNAME', 'saas_jwt_sign' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION saas.jwt_sign(jsonb, bytea, text) IS 'Signs claims as a compact HS256 JWT with the given secret.';
CREATE FUNCTION saas.jwt_sign(claims jsonb, secret text, alg text DEFAULT 'HS256') RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN saas.jwt_sign(claims, pg_catalog.convert_to(secret, 'UTF8'), alg);
COMMENT ON FUNCTION saas.jwt_sign(jsonb, text, text) IS 'Signs claims as a compact HS256 JWT with the given text secret.';

CREATE FUNCTION saas.jwt_verify(token text, secret bytea, alg text DEFAULT 'HS256') RETURNS jsonb
	AS 'MODULE_PATHNAME', 'saas_jwt_verify' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION saas.jwt_verify(text, bytea, text) IS
	'Verifies a compact JWT (signature, alg, exp, nbf) and returns its claims, or raises an error that says why.';
CREATE FUNCTION saas.jwt_verify(token text, secret text, alg text DEFAULT 'HS256') RETURNS jsonb
	LANGUAGE sql STABLE STRICT PARALLEL SAFE
	RETURN saas.jwt_verify(token, pg_catalog.convert_to(secret, 'UTF8'), alg);
COMMENT ON FUNCTION saas.jwt_verify(text, text, text) IS 'jwt_verify with a text secret.';

-- Passwords: argon2id, PHC strings.
CREATE FUNCTION saas.hash_password(password text) RETURNS text
	AS 'MODULE_PATHNAME', 'saas_hash_password' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION saas.hash_password(text) IS 'argon2id hash of a password in PHC string format (checks the password policy).';
CREATE FUNCTION saas.verify_password(password text, phc text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'saas_verify_password' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION saas.verify_password(text, text) IS 'True when password matches the argon2id PHC string.';

CREATE FUNCTION saas._signing_keys_changed() RETURNS trigger
	AS 'MODULE_PATHNAME', 'saas_signing_keys_changed' LANGUAGE C;
COMMENT ON FUNCTION saas._signing_keys_changed() IS 'Statement trigger: tells every backend to reload a cached configuration table (signing keys, rate limits) (private).';

-- The platform organization (the operators', home of every super_admin) has a
-- fixed id and the slug "platform", which no tenant can take.
CREATE FUNCTION saas.platform_org_id() RETURNS uuid
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN '00000000-0000-0000-0000-000000000001'::uuid;
COMMENT ON FUNCTION saas.platform_org_id() IS 'Id of the platform organization (the operators'', home of every super_admin).';

-- External ids: the keys of the services, each a plain token. Anything else
-- (slashes, dots first, spaces, query characters) would end up in an
-- outbound URL or spoof a mapping, so it is refused where it is written.
CREATE FUNCTION saas._external_ids_valid(ids jsonb) RETURNS boolean
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN pg_catalog.jsonb_typeof(ids) = 'object'
		AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_each(ids) AS e(k, v)
						 WHERE e.k NOT IN ('user_service', 'payment_service', 'communication_service', 'payment_customer')
							OR pg_catalog.jsonb_typeof(e.v) <> 'string'
							OR NOT (e.v OPERATOR(pg_catalog.#>>) '{}') OPERATOR(pg_catalog.~) '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$');
COMMENT ON FUNCTION saas._external_ids_valid(jsonb) IS
	'True when every key names a service and every value is a plain token (letters, digits, _ . : -; 1 to 128) (private).';

CREATE FUNCTION saas._invoker_privileged() RETURNS boolean
	AS 'MODULE_PATHNAME', 'saas_invoker_privileged_sql' LANGUAGE C STABLE;
COMMENT ON FUNCTION saas._invoker_privileged() IS
	'True when the statement''s invoker (outside any SECURITY DEFINER step) is a superuser or the extension owner: only they change rows without a tenant context (private).';
