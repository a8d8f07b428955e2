-- Tenant context: verified, per transaction, fail closed, and unforgeable
-- by any setting a client can change. Runs as an application role.
SELECT t.register('ctx-a', 'admin@ctx-a.test') AS tok_a \gset
SELECT t.register('ctx-b', 'admin@ctx-b.test') AS tok_b \gset
SET ROLE regress_app;

-- No context: zero rows everywhere, NULL context functions, no error.
SELECT count(*) AS orgs, saas.current_org_id() IS NULL AS no_org,
	   saas.current_user_id() IS NULL AS no_user, saas.current_role() IS NULL AS no_role
  FROM saas.organizations;
SELECT count(*) AS users FROM saas.users;

-- authenticate sets the context for this transaction only.
BEGIN;
SELECT saas.authenticate(:'tok_a') ->> 'role' AS role;
SELECT count(*) AS users_a, bool_and(email LIKE '%ctx-a.test') AS only_a FROM saas.users;
SELECT slug FROM saas.organizations;
SELECT saas.current_role();
COMMIT;
SELECT count(*) AS after_commit FROM saas.users;

-- Spoofed settings: none of them reveals anything.
SELECT set_config('saas.org_id', t.claim(:'tok_b', 'org_id'), false);
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id":"' || t.claim(:'tok_b', 'org_id') || '","role":"admin"}', true) IS NOT NULL AS set_claims;
SELECT count(*) AS users_visible FROM saas.users;
ROLLBACK;
-- A forged token in the setting: tampered payload, wrong signature, alg none.
BEGIN;
SELECT set_config('saas.context', split_part(:'tok_a', '.', 1) || '.' || split_part(:'tok_b', '.', 2) || '.' || split_part(:'tok_a', '.', 3), true) IS NOT NULL AS spliced;
SELECT count(*) AS users_visible, saas.current_org_id() IS NULL AS no_org FROM saas.users;
SELECT set_config('saas.context', 'eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0.', true) IS NOT NULL AS alg_none;
SELECT count(*) AS users_visible FROM saas.users;
ROLLBACK;
SET saas.context = 'not a token';
SET saas.context = 'abc.def.ghi';
SELECT count(*) AS users_visible FROM saas.users;
RESET saas.context;

-- authenticate refuses bad tokens, saying why, and leaves no context.
BEGIN;
SELECT saas.authenticate(left(:'tok_a', -4) || 'AAAA');
ROLLBACK;
SELECT saas.authenticate('eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0.');
SELECT saas.authenticate(NULL);
SELECT saas.authenticate('x');
-- a token signed with a foreign secret, with and without a kid
SELECT saas.authenticate(saas.jwt_sign(jsonb_build_object('sub', t.claim(:'tok_a', 'sub'), 'org_id', t.claim(:'tok_a', 'org_id'),
	'role', 'admin', 'iss', 'pg_saas', 'aud', 'pg_saas_api', 'exp', extract(epoch FROM now())::int + 60), 'guessed secret'));
-- a header whose kid is an injection attempt
SELECT saas.authenticate('eyJhbGciOiJIUzI1NiIsImtpZCI6IicgT1IgMT0xLS0ifQ.' || split_part(:'tok_a', '.', 2) || '.' || split_part(:'tok_a', '.', 3));
-- a super_admin role claim cannot be added to a valid token
SELECT saas.authenticate(split_part(:'tok_a', '.', 1) || '.' ||
	rtrim(translate(replace(encode(convert_to(replace(convert_from(decode(rpad(translate(split_part(:'tok_a', '.', 2), '-_', '+/'),
		(length(split_part(:'tok_a', '.', 2)) + 3) / 4 * 4, '='), 'base64'), 'UTF8'), '"admin"', '"super_admin"'), 'UTF8'), 'base64'), E'\n', ''), '+/', '-_'), '=')
	|| '.' || split_part(:'tok_a', '.', 3));

-- Writes across tenants: as org A's admin, B's rows cannot be touched.
BEGIN;
SELECT saas.authenticate(:'tok_a') IS NOT NULL AS authenticated;
WITH u AS (UPDATE saas.users SET first_name = 'Mallory' WHERE org_id::text = t.claim(:'tok_b', 'org_id') RETURNING 1)
SELECT count(*) AS updated FROM u;
WITH d AS (DELETE FROM saas.users WHERE org_id::text = t.claim(:'tok_b', 'org_id') RETURNING 1)
SELECT count(*) AS deleted FROM d;
WITH u AS (UPDATE saas.organizations SET name = 'pwned' WHERE id::text = t.claim(:'tok_b', 'org_id') RETURNING 1)
SELECT count(*) AS org_updated FROM u;
SAVEPOINT s;
INSERT INTO saas.users (org_id, email, first_name, last_name) VALUES (t.claim(:'tok_b', 'org_id')::uuid, 'x@ctx-b.test', 'X', 'Y');
ROLLBACK TO s;
INSERT INTO saas.organizations (name, slug) VALUES ('rogue', 'rogue');
ROLLBACK;
-- Private tables are not reachable at all.
SELECT count(*) FROM saas._credentials;
SELECT count(*) FROM saas._signing_keys;
-- The trusted-context marker cannot be claimed from SQL.
SELECT saas._context_trusted() AS trusted;
RESET ROLE;
SELECT count(*) AS b_users_untouched FROM saas.users WHERE email LIKE '%ctx-b.test' AND first_name = 'First';
