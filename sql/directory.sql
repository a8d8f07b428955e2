-- The directories of users on a single node (extension/sql/23_directory.sql):
-- _user_emails (login and registration read it) and _user_refs stay exactly
-- the users' emails and external ids through every path: the API, the SQL
-- API, the application's own SQL, deletions of users and organizations.
-- (On Citus: test/suites/citus/40_directory.sh.)
SET client_min_messages = warning;
\set VERBOSITY terse

-- t.dir_exact: both directories hold exactly what the users rows say.
CREATE FUNCTION t.dir_exact() RETURNS boolean LANGUAGE sql SECURITY DEFINER AS $$
	SELECT (SELECT coalesce(array_agg((org_id, id, email)::text ORDER BY org_id, id), '{}') FROM saas.users)
		   = (SELECT coalesce(array_agg((org_id, user_id, email)::text ORDER BY org_id, user_id), '{}') FROM saas._user_emails)
	   AND (SELECT coalesce(array_agg((u.org_id, u.id, e.key, e.value)::text ORDER BY e.key, e.value), '{}')
			  FROM saas.users u, jsonb_each_text(u.external_user_ids) e)
		   = (SELECT coalesce(array_agg((org_id, user_id, service_key, ref)::text ORDER BY service_key, ref), '{}') FROM saas._user_refs)
$$;
CREATE FUNCTION t.login(email text, pw text, org text DEFAULT NULL) RETURNS text LANGUAGE sql AS $$
	SELECT r.status || coalesce(' ' || (r.body->'error'->>'code'), '')
	  FROM t.req('POST', '/auth/login', NULL, jsonb_strip_nulls(jsonb_build_object('email', email, 'password', pw, 'organization', org))::text) r
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA t TO PUBLIC;

SET ROLE regress_app;
SELECT t.register('dir-a', 'ann@dir.test') AS a \gset
SELECT t.register('dir-b', 'bob@dir.test') AS b \gset
SELECT t.dir_exact() AS exact_after_register;
SELECT t.err('POST', '/auth/register', NULL, '{"organization":{"name":"Dir C"},"email":"ANN@dir.test","password":"correct horse battery","first_name":"A","last_name":"N"}') AS register_taken_email;

-- A rename: the old email no longer logs in, the new one does; the claim keeps its age.
SELECT (t.req('POST', '/users', :'a', '{"email":"cy@dir.test","first_name":"C","last_name":"Y","role":"user","password":"cys long password"}')).body->>'id' AS cy \gset
SELECT t.login('cy@dir.test', 'cys long password') AS cy_login;
RESET ROLE;
SELECT created_at AS cy_since FROM saas._user_emails WHERE user_id = :'cy' \gset
SET ROLE regress_app;
SELECT (t.req('PUT', '/users/' || :'cy', :'a', '{"email":"cy2@dir.test"}')).status AS renamed;
SELECT t.login('cy@dir.test', 'cys long password') AS old_email, t.login('cy2@dir.test', 'cys long password') AS new_email;
RESET ROLE;
SELECT email, created_at = :'cy_since' AS same_age FROM saas._user_emails WHERE user_id = :'cy';
SET ROLE regress_app;
-- The application's own SQL: the trigger writes the directory here.
SELECT t.as(:'a', format($$UPDATE saas.users SET email = 'cy3@dir.test' WHERE id = %L$$, :'cy')) AS sql_rename;
-- (On Citus the statement above is refused, by design: there the application's own SQL writes
-- the entries first with saas._dir_set, as this one does; a no-op on a single node.
-- test/suites/citus/expected/directory.out holds Citus's answers.)
SELECT t.as(:'a', format($$SELECT saas._dir_set(%L, %L, 'cy3@dir.test', NULL); UPDATE saas.users SET email = 'cy3@dir.test' WHERE id = %L$$,
	t.claim(:'a', 'org_id'), :'cy', :'cy')) AS sql_rename_entries_first;
SELECT t.dir_exact() AS exact_after_sql_rename, t.login('cy3@dir.test', 'cys long password') AS sql_renamed_login;

-- One email in two organizations: the password decides, or the slug.
SELECT (t.req('POST', '/users', :'b', '{"email":"cy3@dir.test","first_name":"C","last_name":"Y","role":"user","password":"cys long password"}')).status AS same_email_elsewhere;
SELECT t.login('cy3@dir.test', 'cys long password') AS shared, t.login('cy3@dir.test', 'cys long password', 'dir-b') AS with_slug;

-- External ids: unique across organizations, freed by a change and by a deletion.
SELECT (t.req('POST', '/users', :'a', '{"email":"dee@dir.test","first_name":"D","last_name":"E","role":"user","external_user_ids":{"user_service":"x-1"}}')).body->>'id' AS dee \gset
SELECT t.err('POST', '/users', :'b', '{"email":"eve@dir.test","first_name":"E","last_name":"V","role":"user","external_user_ids":{"user_service":"x-1"}}') AS taken_elsewhere;
SELECT (t.req('PUT', '/users/' || :'dee', :'a', '{"external_user_ids":{"user_service":"x-2"}}')).status AS relinked;
SELECT (t.req('POST', '/users', :'b', '{"email":"eve@dir.test","first_name":"E","last_name":"V","role":"user","external_user_ids":{"user_service":"x-1"}}')).status AS freed_id_linked;
SELECT (t.req('DELETE', '/users/' || :'dee', :'a')).status AS deleted, (t.req('DELETE', '/users/' || :'cy', :'a')).status AS deleted_cy;
SELECT t.dir_exact() AS exact_after_deletes, t.login('cy3@dir.test', 'cys long password', 'dir-a') AS deleted_login;
SELECT t.as(:'b', format($$INSERT INTO saas.users (org_id, email, first_name, last_name, external_user_ids)
	VALUES (%L, 'fay@dir.test', 'F', 'A', '{"user_service":"x-2"}')$$, t.claim(:'b', 'org_id'))) AS sql_insert_freed_id;
-- The application role has no privilege on the directories here (Citus grants it, see saas.distribute()).
SELECT t.as(:'b', format($$INSERT INTO saas._user_emails (email, org_id, user_id) VALUES ('x@dir.test', %L, gen_random_uuid())$$,
	t.claim(:'b', 'org_id'))) AS direct_entry;
RESET ROLE;
-- Deleting an organization removes its entries.
DELETE FROM saas.organizations WHERE slug = 'dir-b';
SELECT t.dir_exact() AS exact_after_org_delete,
	   (SELECT count(*) FROM saas._user_emails e WHERE NOT EXISTS (SELECT 1 FROM saas.organizations o WHERE o.id = e.org_id)) AS orphans;
