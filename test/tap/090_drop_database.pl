# DROP DATABASE of the database the worker serves: the worker steps aside
# instead of making DROP DATABASE fail ("being accessed by other users"),
# and once a database of that name exists again with the extension, a worker
# serves it.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

my $node = PostgreSQL::Test::Cluster->new('dropdb');
$node->init;
$node->append_conf('postgresql.conf', join("\n",
	"shared_preload_libraries = 'pg_saas'", "saas.database = 'served'",
	"log_min_messages = warning", "jit = off", ''));
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE served');
$node->safe_psql('served', 'CREATE EXTENSION pg_saas');

sub worker_in
{
	my ($db) = @_;
	return scalar $node->safe_psql('postgres',
		qq{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_saas worker' AND datname = '$db'});
}

sub wait_worker
{
	my ($db, $want, $secs) = @_;
	for (1 .. $secs * 5)
	{
		return 1 if worker_in($db) eq $want;
		Time::HiRes::sleep(0.2);
	}
	return 0;
}

ok(wait_worker('served', '1', 20), 'the worker serves the database');

my $t0 = Time::HiRes::time();
my ($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE served', timeout => 60);
my $took = Time::HiRes::time() - $t0;
is($rc, 0, 'DROP DATABASE of the served database succeeds') or diag($err);
ok($took < 10, sprintf('...within seconds (%.1f s)', $took));
my $log = slurp_file($node->logfile);
like($log, qr/database "served" is being dropped; the worker leaves it/, 'the worker says it stepped aside');

$node->safe_psql('postgres', 'CREATE DATABASE served');
$node->safe_psql('served', 'CREATE EXTENSION pg_saas');
ok(wait_worker('served', '1', 30), 'with the database back, a worker serves it again');
unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC/, 'no backend crashed');
$node->stop;
done_testing();
