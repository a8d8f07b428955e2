-- The rulebook, rule by path (docs/security.md, "Rules and where they hold").
-- Each rule is tried through every path that reaches the data here: plain
-- SQL as the application role with its own verified context ("sql"), the
-- SQL API functions ("api"), and the REST router saas.http ("http"). The
-- webhook appliers and the worker are tried in sql/webhooks_rules.sql and
-- test/tap/110_rules_worker.pl. Every refusal changes nothing: the check
-- queries after each block show the rows as they were.
SET client_min_messages = warning;
\set VERBOSITY terse

-- t.row: a user's role and status, read as the owner.
-- (PL/pgSQL, not SQL: Citus cannot plan a SQL function's parameters in a distributed query.)
CREATE FUNCTION t.usr(p_email text) RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
	RETURN (SELECT string_agg(o.slug || ':' || u.role || '/' || u.status, ', ' ORDER BY o.slug)
			  FROM saas.users u JOIN saas.organizations o ON o.id = u.org_id WHERE u.email = p_email);
END
$$;
CREATE FUNCTION t.org(p_slug text) RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
	RETURN (SELECT subscription_tier || ' ' || employee_limit || ' ' || features_enabled::text || ' ' || status
				   || ' ' || external_ids::text
			  FROM saas.organizations WHERE slug = p_slug);
END
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA t TO PUBLIC;

-- Fixtures: the operator, organization A (admins alice and carol, user bob),
-- organization B (admin mallory).
SELECT saas.create_super_admin('root@rules.test', 'correct horse battery root') IS NOT NULL AS operator;
SELECT saas.login('{"email":"root@rules.test","password":"correct horse battery root"}')->>'token' AS root \gset
SELECT t.register('rules-a', 'alice@rules-a.test') AS alice \gset
SELECT t.register('rules-b', 'mallory@rules-b.test') AS mallory \gset
SELECT t.claim(:'alice', 'org_id') AS org_a, t.claim(:'mallory', 'org_id') AS org_b,
	   t.claim(:'alice', 'sub') AS alice_id, t.claim(:'root', 'sub') AS root_id,
	   t.claim(:'root', 'org_id') AS platform \gset
SELECT (t.req('POST', '/users', :'alice', '{"email":"bob@rules-a.test","first_name":"Bob","last_name":"B","role":"user","password":"bobs long password"}')).body->>'id' AS bob_id \gset
SELECT (t.req('POST', '/users', :'alice', '{"email":"carol@rules-a.test","first_name":"Carol","last_name":"C","role":"admin","password":"carols long password"}')).body->>'id' AS carol_id \gset
SELECT saas.login('{"email":"bob@rules-a.test","password":"bobs long password"}')->>'token' AS bob \gset
SELECT saas.login('{"email":"carol@rules-a.test","password":"carols long password"}')->>'token' AS carol \gset
SELECT :'platform' = saas.platform_org_id()::text AS operator_in_platform_org;
SET ROLE regress_app;

--
-- 1. An admin cannot make anyone (itself included) a super_admin.
--
SELECT t.as(:'alice', format($$UPDATE saas.users SET role = 'super_admin' WHERE id = %L$$, :'alice_id')) AS sql;
SELECT t.as(:'alice', format($$SELECT saas.update_user(%L, '{"role":"super_admin"}')$$, :'alice_id')) AS api;
SELECT t.err('PUT', '/users/' || :'alice_id', :'alice', '{"role":"super_admin"}') AS http;
SELECT t.as(:'alice', format($$INSERT INTO saas.users (org_id, email, first_name, last_name, role)
	VALUES (%L, 'evil@rules-a.test', 'E', 'V', 'super_admin')$$, :'org_a')) AS sql_insert;
SELECT t.err('POST', '/users', :'alice', '{"email":"evil@rules-a.test","first_name":"E","last_name":"V","role":"super_admin"}') AS http_insert;
RESET ROLE;
SELECT t.usr('alice@rules-a.test') AS alice, t.usr('evil@rules-a.test') AS evil;
SET ROLE regress_app;

--
-- 2. An admin changes its organization's name and slug, nothing commercial.
--
SELECT t.as(:'alice', format($$UPDATE saas.organizations SET subscription_tier = 'enterprise' WHERE id = %L$$, :'org_a')) AS sql_tier;
SELECT t.as(:'alice', format($$UPDATE saas.organizations SET employee_limit = 100000 WHERE id = %L$$, :'org_a')) AS sql_limit;
SELECT t.as(:'alice', format($$UPDATE saas.organizations SET features_enabled = '{sso}' WHERE id = %L$$, :'org_a')) AS sql_features;
SELECT t.as(:'alice', format($$UPDATE saas.organizations SET status = 'suspended' WHERE id = %L$$, :'org_a')) AS sql_status;
SELECT t.as(:'alice', format($$UPDATE saas.organizations SET external_ids = '{"user_service":"x1"}' WHERE id = %L$$, :'org_a')) AS sql_external_ids;
SELECT t.as(:'alice', format($$SELECT saas.update_organization(%L, '{"employee_limit":100000}')$$, :'org_a')) AS api;
SELECT t.err('PUT', '/organizations/' || :'org_a', :'alice', '{"subscription_tier":"enterprise"}') AS http;
SELECT t.as(:'alice', format($$UPDATE saas.organizations SET name = 'Rules A Inc' WHERE id = %L$$, :'org_a')) AS sql_name_ok;
SELECT t.as(:'alice', $$INSERT INTO saas.organizations (name, slug) VALUES ('Mine', 'mine')$$) AS sql_create_org;
SELECT t.as(:'alice', format($$DELETE FROM saas.organizations WHERE id = %L$$, :'org_a')) AS sql_delete_own_org;
RESET ROLE;
SELECT t.org('rules-a') AS org_a_unchanged;
SET ROLE regress_app;

--
-- 3. Nobody suspends or deletes itself; the last active admin stays.
--
SELECT t.as(:'alice', format($$UPDATE saas.users SET status = 'suspended' WHERE id = %L$$, :'alice_id')) AS sql_self_suspend;
SELECT t.as(:'alice', format($$SELECT saas.update_user(%L, '{"status":"inactive"}')$$, :'alice_id')) AS api_self_deactivate;
SELECT t.as(:'alice', format($$DELETE FROM saas.users WHERE id = %L$$, :'alice_id')) AS sql_self_delete;
SELECT t.err('DELETE', '/users/' || :'alice_id', :'alice') AS http_self_delete;
-- carol demotes alice (allowed: carol stays); then carol cannot leave.
SELECT t.as(:'carol', format($$UPDATE saas.users SET role = 'user' WHERE id = %L$$, :'alice_id')) AS sql_demote_other;
SELECT t.as(:'carol', format($$UPDATE saas.users SET role = 'user' WHERE id = %L$$, :'carol_id')) AS sql_last_admin_demote;
SELECT t.as(:'carol', format($$SELECT saas.update_user(%L, '{"role":"user"}')$$, :'carol_id')) AS api_last_admin_demote;
SELECT t.err('PUT', '/users/' || :'carol_id', :'carol', '{"role":"user"}') AS http_last_admin_demote;
RESET ROLE;
SELECT t.usr('alice@rules-a.test') AS alice, t.usr('carol@rules-a.test') AS carol;
SET ROLE regress_app;

--
-- 4. Tokens reflect the facts now: alice was demoted, so her admin token
--    is over (the demotion ended her sessions); a new login is a user.
--
SELECT t.err('POST', '/users', :'alice', '{"email":"x@rules-a.test","first_name":"X","last_name":"X","role":"admin"}') AS demoted_token;
SELECT t.err('GET', '/audit-logs', :'alice') AS demoted_audit;
SELECT saas.login('{"email":"alice@rules-a.test","password":"correct horse battery"}')->>'token' AS alice \gset
SELECT t.claim(:'alice', 'role') AS alice_role_now,
	   t.err('POST', '/users', :'alice', '{"email":"x@rules-a.test","first_name":"X","last_name":"X","role":"user"}') AS alice_create;
-- A plain user: only its own names; never role, status, email, ids, others.
SELECT t.as(:'bob', format($$UPDATE saas.users SET role = 'admin' WHERE id = %L$$, :'bob_id')) AS bob_role;
SELECT t.as(:'bob', format($$UPDATE saas.users SET email = 'boss@rules-a.test' WHERE id = %L$$, :'bob_id')) AS bob_email;
SELECT t.as(:'bob', format($$UPDATE saas.users SET last_login = now() - interval '1 year' WHERE id = %L$$, :'bob_id')) AS bob_last_login;
SELECT t.as(:'bob', format($$UPDATE saas.users SET first_name = 'Robert' WHERE id = %L$$, :'bob_id')) AS bob_names;
-- Deactivation ends tokens, even placed in saas.context by hand.
SELECT t.as(:'carol', format($$UPDATE saas.users SET status = 'inactive' WHERE id = %L$$, :'bob_id')) AS carol_deactivates_bob;
SELECT t.err('GET', '/users', :'bob') AS bob_http;
BEGIN;
SELECT set_config('saas.context', :'bob', true) IS NOT NULL AS placed;
SELECT saas.current_org_id() IS NULL AS no_org, count(*) AS users_visible FROM saas.users;
ROLLBACK;

--
-- 5. Sessions: logout ends one token, logout-all every one, a password
--    change every one; all are audited without secrets.
--
SELECT saas.login('{"email":"carol@rules-a.test","password":"carols long password"}')->>'token' AS carol2 \gset
SELECT status FROM t.req('POST', '/auth/logout', :'carol');
SELECT t.err('GET', '/users', :'carol') AS after_logout, (t.req('GET', '/users', :'carol2')).status AS other_session;
SELECT t.err('POST', '/auth/logout', :'carol') AS logout_twice;
SELECT t.err('GET', '/auth/logout', :'carol2') AS wrong_method;
SELECT status FROM t.req('POST', '/auth/logout-all', :'carol2');
SELECT t.err('GET', '/users', :'carol2') AS after_logout_all;
SELECT saas.login('{"email":"carol@rules-a.test","password":"carols long password"}')->>'token' AS carol \gset
SELECT (t.req('PUT', '/users/' || :'carol_id', :'carol', '{"password":"carols newer password","current_password":"carols long password"}')).status AS password_changed;
SELECT t.err('GET', '/users', :'carol') AS after_password_change;
SELECT saas.login('{"email":"carol@rules-a.test","password":"carols newer password"}')->>'token' AS carol \gset
BEGIN;
SELECT saas.authenticate(:'carol') IS NOT NULL AS authenticated;
SELECT action, actor_role, changes, changes::text ~ 'argon2|password_hash' AS leaks_secret
  FROM saas.audit_log WHERE action IN ('logout', 'logout_all', 'password_change') ORDER BY seq;
SELECT saas.logout();
ROLLBACK;
-- The SQL API's logout, committed: the token is over.
BEGIN;
SELECT saas.authenticate(:'carol') IS NOT NULL AS authenticated;
SELECT saas.logout();
COMMIT;
SELECT t.err('GET', '/users', :'carol') AS after_sql_logout;
SELECT saas.login('{"email":"carol@rules-a.test","password":"carols newer password"}')->>'token' AS carol \gset

--
-- 6. Organization suspension ends its tokens; only a super_admin suspends.
--
SELECT t.err('PUT', '/organizations/' || :'org_b', :'root', '{"status":"suspended"}') AS root_suspends_b;
SELECT t.err('GET', '/users', :'mallory') AS mallory_after_suspension;
SELECT t.err('POST', '/auth/login', NULL, '{"email":"mallory@rules-b.test","password":"correct horse battery"}') AS mallory_login;
SELECT (t.req('PUT', '/organizations/' || :'org_b', :'root', '{"status":"active"}')).status AS root_reactivates_b;
SELECT saas.login('{"email":"mallory@rules-b.test","password":"correct horse battery"}')->>'token' AS mallory \gset

--
-- 7. The platform organization: reserved slug, never a tenant's; only a
--    super_admin touches a super_admin.
--
SELECT t.err('POST', '/auth/register', NULL, '{"organization":{"name":"Platform","slug":"platform"},"email":"squat@rules.test","password":"correct horse battery","first_name":"S","last_name":"Q"}') AS register_platform_slug;
SELECT r.status, r.body->'organization'->>'slug' AS derived_slug,
	   r.body->'organization'->>'id' = :'platform' AS is_platform
  FROM t.req('POST', '/auth/register', NULL, '{"organization":{"name":"Platform"},"email":"squat@rules.test","password":"correct horse battery","first_name":"S","last_name":"Q"}') r;
SELECT t.err('POST', '/organizations', :'root', '{"name":"P","slug":"platform","admin_user":{"email":"p@rules.test","password":"correct horse battery","first_name":"P","last_name":"P"}}') AS create_platform_slug;
SELECT t.err('PUT', '/organizations/' || :'platform', :'root', '{"status":"suspended"}') AS suspend_platform;
SELECT t.err('DELETE', '/organizations/' || :'platform', :'root') AS delete_platform;
SELECT t.err('PUT', '/organizations/' || :'org_a', :'root', '{"slug":"platform"}') AS take_platform_slug;
-- An admin cannot reach a super_admin at all (another organization: 404).
SELECT t.err('PUT', '/users/' || :'root_id', :'carol', '{"password":"a hijacked password"}') AS admin_resets_root;
SELECT t.as(:'carol', format($$UPDATE saas.users SET first_name = 'Hijacked' WHERE id = %L$$, :'root_id')) AS sql_admin_root;
-- A second super_admin is created by a super_admin only (the operator's
-- function is the bootstrap, owner only); a super_admin may reset another's
-- password, an admin never.
RESET ROLE;
SELECT saas.create_super_admin('root2@rules.test', 'correct horse battery two') AS root2_id \gset
SET ROLE regress_app;
SELECT (t.req('PUT', '/users/' || :'root2_id', :'root', '{"password":"reset by root one"}')).status AS root_resets_root2;
SELECT t.as(:'root', format($$UPDATE saas.users SET role = 'admin' WHERE id = %L$$, :'root2_id')) AS root_demotes_root2;

--
-- 8. External ids are owned: plain tokens only, unique per service across
--    the platform, an organization's set by a super_admin only.
--
SELECT t.err('PUT', '/users/' || :'bob_id', :'carol', '{"external_user_ids":{"user_service":"../../v2/customers/x"}}') AS http_path;
SELECT t.err('PUT', '/users/' || :'bob_id', :'carol', '{"external_user_ids":{"user_service":"a b"}}') AS http_space;
SELECT t.err('PUT', '/users/' || :'bob_id', :'carol', '{"external_user_ids":{"user_service":"x?cascade=all"}}') AS http_query;
SELECT t.err('PUT', '/users/' || :'bob_id', :'carol', '{"external_user_ids":{"other_service":"x1"}}') AS http_key;
SELECT t.as(:'carol', format($$UPDATE saas.users SET external_user_ids = '{"user_service":"../x"}' WHERE id = %L$$, :'bob_id')) AS sql_path;
SELECT (t.req('PUT', '/users/' || :'bob_id', :'carol', '{"external_user_ids":{"user_service":"usr_bob"}}')).status AS carol_links_bob;
SELECT t.err('POST', '/users', :'mallory', '{"email":"steal@rules-b.test","first_name":"S","last_name":"T","role":"user","external_user_ids":{"user_service":"usr_bob"}}') AS http_steal;
SELECT t.as(:'mallory', format($$UPDATE saas.users SET external_user_ids = '{"user_service":"usr_bob"}' WHERE org_id = %L$$, :'org_b')) AS sql_steal;
SELECT (t.req('PUT', '/organizations/' || :'org_a', :'root', '{"external_ids":{"user_service":"org-ref-a"}}')).status AS root_sets_a;
SELECT t.err('PUT', '/organizations/' || :'org_b', :'root', '{"external_ids":{"user_service":"org-ref-a"}}') AS root_duplicate_ref;
SELECT t.err('PUT', '/organizations/' || :'org_b', :'root', format('{"external_ids":{"user_service":"%s"}}', :'org_a')) AS ref_is_other_org;
SELECT t.err('PUT', '/organizations/' || :'org_b', :'mallory', '{"external_ids":{"user_service":"org-ref-b"}}') AS admin_sets_ref;
RESET ROLE;
SELECT t.org('rules-a') AS org_a, t.org('rules-b') AS org_b;
SELECT service_key, ref FROM saas._user_refs ORDER BY ref;
SET ROLE regress_app;

--
-- 9. Login with an email another tenant also uses: the password decides,
--    and nothing tells the email exists elsewhere.
--
SELECT (t.req('POST', '/users', :'mallory', '{"email":"carol@rules-a.test","first_name":"Fake","last_name":"Carol","role":"user","password":"mallorys own password"}')).status AS copy_created;
SELECT t.claim(saas.login('{"email":"carol@rules-a.test","password":"carols newer password"}')->>'token', 'org_id') = :'org_a' AS real_carol_logs_into_a;
SELECT t.claim(saas.login('{"email":"carol@rules-a.test","password":"mallorys own password"}')->>'token', 'org_id') = :'org_b' AS copy_logs_into_b;
SELECT t.err('POST', '/auth/login', NULL, '{"email":"carol@rules-a.test","password":"not the password"}') AS wrong_password;
SELECT t.err('POST', '/auth/login', NULL, '{"email":"nobody@rules-a.test","password":"not the password"}') AS unknown_email;
SELECT t.claim(saas.login('{"email":"carol@rules-a.test","password":"carols newer password","organization":"rules-a"}')->>'token', 'org_id') = :'org_a' AS with_slug;
SELECT t.err('POST', '/auth/login', NULL, '{"email":"carol@rules-a.test","password":"carols newer password","organization":"rules-b"}') AS slug_of_the_copy;
-- The same email and the same password in two organizations: the caller
-- knows both accounts, and is asked which one.
SELECT (t.req('POST', '/users', :'carol', '{"email":"twin@rules.test","first_name":"T","last_name":"A","role":"user","password":"the twins password"}')).status AS twin_a,
	   (t.req('POST', '/users', :'mallory', '{"email":"twin@rules.test","first_name":"T","last_name":"B","role":"user","password":"the twins password"}')).status AS twin_b;
SELECT t.err('POST', '/auth/login', NULL, '{"email":"twin@rules.test","password":"the twins password"}') AS ambiguous;
SELECT t.claim(saas.login('{"email":"twin@rules.test","password":"the twins password","organization":"rules-b"}')->>'token', 'org_id') = :'org_b' AS twin_with_slug;
RESET ROLE;

--
-- 10. Tokens by the RFCs, through saas.authenticate: a fractional NumericDate
--     (as jose emits) and a lower-case typ are valid.
--
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE FUNCTION t.mint(header jsonb, claims jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	k record;
	si text;
BEGIN
	SELECT kid, secret INTO k FROM saas._signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1;
	si := rtrim(translate(encode(convert_to((header || jsonb_build_object('kid', k.kid))::text, 'UTF8'), 'base64'), E'+/\n', '-_'), '=')
		|| '.' || rtrim(translate(encode(convert_to(claims::text, 'UTF8'), 'base64'), E'+/\n', '-_'), '=');
	RETURN si || '.' || rtrim(translate(encode(hmac(convert_to(si, 'UTF8'), k.secret, 'sha256'), 'base64'), E'+/\n', '-_'), '=');
END
$$;
SELECT t.mint('{"alg":"HS256","typ":"jwt"}', jsonb_build_object(
	'iss', current_setting('saas.jwt_issuer'), 'aud', current_setting('saas.jwt_audience'),
	'sub', t.claim(:'carol', 'sub'), 'org_id', t.claim(:'carol', 'org_id'), 'role', 'admin',
	'gen', (t.claim(:'carol', 'gen'))::bigint, 'jti', 'fractional-1',
	'iat', extract(epoch FROM now())::numeric(20,3) - 0.5, 'nbf', extract(epoch FROM now())::numeric(20,3) - 0.25,
	'exp', extract(epoch FROM now())::numeric(20,3) + 600.5)) AS jose_style \gset
SET ROLE regress_app;
BEGIN;
SELECT saas.authenticate(:'jose_style') ->> 'role' AS fractional_dates_and_lower_typ, saas.current_role() AS role_now;
ROLLBACK;
RESET ROLE;

--
-- 11. The context is checked in parallel workers too (current_org_id() is
--     PARALLEL SAFE and reads the user's state there).
--
SET ROLE regress_app;
BEGIN;
SET LOCAL force_parallel_mode = on;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SELECT saas.authenticate(:'carol') IS NOT NULL AS authenticated;
SELECT count(*) AS users_of_a, count(DISTINCT org_id) AS orgs FROM saas.users;
ROLLBACK;
RESET ROLE;

--
-- 12. Attacks found by testing from outside (test/attack), kept as
--     regressions.
--
-- a) A caller's operator ahead of pg_catalog never runs in the owner's
--    queries (the session check, key and limit loads are planned and run
--    with search_path pinned).
CREATE SCHEMA rules_evil AUTHORIZATION regress_app;
SET ROLE regress_app;
CREATE FUNCTION rules_evil.eq(a text, b text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	IF current_user <> 'regress_app' THEN
		RAISE EXCEPTION 'the caller''s operator ran as %', current_user;
	END IF;
	RETURN a OPERATOR(pg_catalog.=) b;
END
$$;
CREATE OPERATOR rules_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = rules_evil.eq);
SET search_path = rules_evil, pg_catalog, public;
SELECT saas.login('{"email":"carol@rules-a.test","password":"carols newer password","organization":"rules-a"}')->>'token' AS carol \gset
BEGIN;
SELECT saas.authenticate(:'carol') IS NOT NULL AS authenticated_under_hostile_path;
SELECT count(*) > 0 AS sees_rows FROM saas.users;
ROLLBACK;
RESET search_path;
RESET ROLE;
DROP SCHEMA rules_evil CASCADE;

-- b) A delete whose rows passed row-level security cannot slip past the
--    rules by clearing or replacing the context in the middle of the
--    statement.
SET ROLE regress_app;
SELECT saas.login('{"email":"mallory@rules-b.test","password":"correct horse battery"}')->>'token' AS mallory \gset
-- (A join filter runs after the scan of users, with its row-level security,
-- has let the row through.)
SELECT t.as(:'carol', format($$SET LOCAL enable_seqscan = off;
	DELETE FROM saas.users u USING (VALUES ('x')) v(x)
	 WHERE u.id = %L AND set_config('saas.context', '', true) <> v.x$$, :'carol_id')) AS delete_self_context_cleared;
SELECT t.as(:'carol', format($$SET LOCAL enable_seqscan = off;
	DELETE FROM saas.users u USING (VALUES ('x')) v(x)
	 WHERE u.id = %L AND set_config('saas.context', %L, true) <> v.x$$, :'carol_id', :'mallory')) AS delete_self_context_swapped;
SELECT t.as(:'carol', format($$UPDATE saas.users SET role = 'user' WHERE id = %L AND set_config('saas.context', '', true) IS NOT NULL$$, :'carol_id')) AS update_context_cleared;
RESET ROLE;
SELECT t.usr('carol@rules-a.test') AS carol_is_still_admin;
SET ROLE regress_app;

-- c) The history of a row is the database's: a client-set created_at
--    (which would push a real account out of the login's candidates) is
--    replaced by now(). (Its directory entry first, as the API writes it:
--    on Citus a user's row is refused without; a no-op on a single node.)
SELECT t.as(:'mallory', format($$SELECT saas._dir_set(%L, '01900000-0000-7000-8000-00000000c0b1', 'root@rules.test', '{}');
	INSERT INTO saas.users (id, org_id, email, first_name, last_name, created_at, version)
	VALUES ('01900000-0000-7000-8000-00000000c0b1', %L, 'root@rules.test', 'Fake', 'Root', '1970-01-01', 99)$$, :'org_b', :'org_b')) AS backdated_copy;
RESET ROLE;
SELECT created_at > now() - interval '1 minute' AS created_now, version
  FROM saas.users WHERE org_id = :'org_b' AND email = 'root@rules.test';
SET ROLE regress_app;
SELECT t.claim(saas.login('{"email":"root@rules.test","password":"correct horse battery root"}')->>'token', 'role') AS root_still_logs_in;

-- d) A transaction kept open does not keep a token alive: the facts are
--    re-read per statement (here, a second session demotes carol while
--    carol's transaction is open; 4 s later carol is no longer an admin).
RESET ROLE;
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT dblink_connect('other', format('dbname=%s host=%s port=%s user=%s', current_database(),
	split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_user)) AS other_session;
SELECT (t.req('POST', '/users', :'carol', '{"email":"dora@rules-a.test","first_name":"Dora","last_name":"D","role":"admin","password":"doras long password"}')).status AS second_admin;
SET ROLE regress_app;
BEGIN;
SELECT saas.authenticate(:'carol') ->> 'role' AS carol_at_start;
RESET ROLE;
SELECT v AS demoted_elsewhere FROM dblink('other', format($$SELECT set_config('saas.context', '', false) IS NULL;
	UPDATE saas.users SET role = 'user' WHERE email = 'carol@rules-a.test' AND org_id = %L RETURNING role$$, :'org_a')) AS r(v text);
SELECT pg_sleep(4.5);
SET ROLE regress_app;
SELECT saas.current_role() IS DISTINCT FROM 'admin' AS no_longer_admin,
	   t.sql(format($$INSERT INTO saas.users (org_id, email, first_name, last_name, role)
			VALUES (%L, 'backdoor@rules-a.test', 'B', 'D', 'admin')$$, :'org_a')) AS backdoor;
ROLLBACK;
RESET ROLE;
SELECT dblink_disconnect('other');
