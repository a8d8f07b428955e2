# DROP EXTENSION and CREATE EXTENSION while the worker runs (even with calls
# in flight): no backend crashes, DROP does not hang on the worker, the
# worker notices the extension is gone and waits, and once the extension is
# back it works again. A configuration reload (SIGHUP) keeps the same worker,
# which keeps working.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }

my $node = saas_node('dropext');
my $sim = start_sim();
my $settings = 'timeout_ms = 3000, base_backoff_ms = 200, max_backoff_seconds = 1, max_retries = 5';
point_integrations($node, $sim, $settings);
my $org = new_org($node, 'dropext');
ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_saas worker'}, '1', 20), 'the worker runs');
my $pid = worker_pid($node);

# 1. Calls in flight (the service answers after 1.5 s), then DROP EXTENSION.
sim_faults($sim, 'user-service', { latency_ms => 1500 });
enqueue_users($node, $org, 10, 'd1', 'org_d');
ok(wait_for($node, q{SELECT count(*) > 0 FROM saas.jobs WHERE kind = 'tap.user' AND state = 'running'}, 't', 10),
	'calls are in flight');
my $t0 = Time::HiRes::time();
my ($rc, $out, $err) = $node->psql('postgres', 'DROP EXTENSION pg_saas CASCADE', timeout => 60);
my $took = Time::HiRes::time() - $t0;
is($rc, 0, 'DROP EXTENSION pg_saas succeeds while the worker runs') or diag($err);
ok($took < 15, sprintf('...without waiting long for the worker (%.1f s)', $took));
Time::HiRes::sleep(3);	# the in-flight calls end; the worker finds the tables gone
ok(log_has($node, qr/extension pg_saas is not installed in "postgres"; waiting/), 'the worker says it waits for the extension');
ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_saas worker'}, '1', 15),
	'a worker is running without the extension');
my $pid_waiting = worker_pid($node);
sleep 6;
is(worker_pid($node), $pid_waiting, 'it waits quietly (no restart loop)');
ok(!log_has($node, qr/terminated by signal|PANIC|server process .* was terminated/), 'no backend crashed');
my $log = PostgreSQL::Test::Utils::slurp_file($node->logfile);
my @exits = ($log =~ /^.*background worker "pg_saas worker" \(PID \d+\) exited with exit code \d+.*$/mg);
my %wpid = map { /PID (\d+)/ ? ($1 => 1) : () } @exits;
my @errors = grep { /\[(\d+)\].*(ERROR|FATAL)/ && $wpid{$1} } split /\n/, $log;
note(join("\n", 'worker exits and errors:', @exits, @errors));
is(scalar(@exits), 0, 'the worker did not exit with an error when the extension went away');

# 2. CREATE EXTENSION again: the worker picks it up and works.
$node->safe_psql('postgres', 'CREATE EXTENSION pg_saas');
sim_heal($sim, 'user-service');
point_integrations($node, $sim, $settings);
$org = new_org($node, 'dropext2');
enqueue_users($node, $org, 5, 'd2', 'org_d2');
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.user' AND state = 'succeeded'}, '5', 20),
	'after CREATE EXTENSION the worker runs new jobs');
is(q1($node, q{SELECT count(*) FROM saas._breaker_status() WHERE worker_running}), '3', 'the status sees the worker running');

# 3. DROP and CREATE in one transaction, twice in a row, while idle.
for my $i (1 .. 2)
{
	$node->safe_psql('postgres', 'BEGIN; DROP EXTENSION pg_saas CASCADE; CREATE EXTENSION pg_saas; COMMIT;');
}
point_integrations($node, $sim, $settings);
$org = new_org($node, 'dropext3');
enqueue_users($node, $org, 5, 'd3', 'org_d3');
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.user' AND state = 'succeeded'}, '5', 20),
	'after DROP + CREATE in one transaction the worker runs new jobs');

# 4. SIGHUP.
my $pid_before = worker_pid($node);
$node->reload;
Time::HiRes::sleep(1.5);
is(worker_pid($node), $pid_before, 'after a reload the same worker runs');
enqueue_users($node, $org, 5, 'd4', 'org_d3');
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.user' AND state = 'succeeded'}, '10', 20),
	'and keeps working');
ok(!log_has($node, qr/terminated by signal|PANIC/), 'no backend crashed');
is(sim_stats($sim, 'user-service')->{effects} >= 20, 1, 'the service saw the calls');
$node->stop;
done_testing();
