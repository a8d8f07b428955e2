-- Upgrading a distributed installation (extension/sql/98_citus_upgrade.sql, docs/operations.md,
-- "Upgrade of a Citus cluster"), on a single node: saas.distribute_upgrade() refuses without
-- Citus and is the owner's alone, like saas._shards_sync(), which does nothing where Citus is
-- not installed. The Citus side is tested by test/suites/citus/97_upgrade.sh.
--
-- Needs: pgtap, pg_saas, and the role app (LOGIN, IN ROLE saas_api).
\set ON_ERROR_STOP 1
BEGIN;
SELECT plan(7);

SELECT throws_ok($$SELECT * FROM saas.distribute_upgrade()$$, '55000',
	'saas.distribute_upgrade() needs Citus, which is not installed in this database',
	'distribute_upgrade() without Citus is refused (55000), changing nothing');
SELECT is((SELECT row(s.shards, s.changes)::text FROM saas._shards_sync() s), '(0,0)',
	'_shards_sync() without Citus sees no shard and changes nothing');
SELECT is(has_function_privilege('app', 'saas.distribute_upgrade()', 'EXECUTE'), false,
	'saas_api has no EXECUTE on distribute_upgrade()');
SELECT is(has_function_privilege('app', 'saas._shards_sync()', 'EXECUTE'), false,
	'saas_api has no EXECUTE on _shards_sync()');
SELECT is(has_function_privilege('public', 'saas.distribute_upgrade()', 'EXECUTE'), false,
	'PUBLIC has no EXECUTE on distribute_upgrade()');

SET LOCAL ROLE app;
SELECT throws_ok($$SELECT * FROM saas.distribute_upgrade()$$, '42501', NULL,
	'saas_api calling distribute_upgrade() is refused (42501)');
SELECT throws_ok($$SELECT * FROM saas._shards_sync()$$, '42501', NULL,
	'saas_api calling _shards_sync() is refused (42501)');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
