# saas.worker_processes = 3: the worker and two drainers share the queue.
# All three claim jobs; a service's max_in_flight holds over all of them
# together; a drainer stopped in the middle of its calls comes back and takes
# over its own jobs at once, and only those: the calls in flight of the
# processes still alive are not made again.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }

my $n = 60;
my $cap = 7;
my $node = saas_node('procs', 'saas.worker_processes = 3');
my $sim = start_sim();
# Lease = 2 * timeout + 30 s = 40 s: a take-over that waited for it would show.
point_integrations($node, $sim, 'timeout_ms = 5000, base_backoff_ms = 200, max_backoff_seconds = 2, max_retries = 10');
$node->safe_psql('postgres', qq{UPDATE saas.integrations SET max_in_flight = $cap WHERE service = 'user-service'});
sim_faults($sim, 'user-service', { latency_ms => 1500 });
my $org = new_org($node, 'procs');

ok(wait_for($node, q{SELECT string_agg(backend_type, ',' ORDER BY backend_type) FROM pg_stat_activity
	WHERE backend_type IN ('pg_saas worker', 'pg_saas drainer')},
	'pg_saas drainer,pg_saas drainer,pg_saas worker', 20), 'the worker and two drainers run');
is(q1($node, q{SELECT cardinality(saas._worker_incarnations())}), 3, 'three live incarnations in shared memory');

enqueue_users($node, $org, $n, 'procs', 'org_procs');

# While the calls take 1.5 s each, sample what is running.
my ($peak, %owners) = (0);
for (1 .. 40)
{
	my $r = qtry($node, q{SELECT count(*) || ' ' || coalesce(string_agg(DISTINCT lease_owner::text, ','), '')
		FROM saas.jobs WHERE kind = 'tap.user' AND state = 'running'}) // '0 ';
	my ($cnt, $own) = split / /, $r, 2;
	$peak = $cnt if $cnt > $peak;
	$owners{$_} = 1 for grep { length } split /,/, ($own // '');
	usleep(50_000);
}
ok($peak > 0 && $peak <= $cap, "at most max_in_flight = $cap jobs running at once over all processes (peak $peak)");
is(scalar(keys %owners), 3, 'all three processes claimed jobs (three lease owners)');

# Stop a drainer while its calls are in flight.
ok(wait_for($node, q{SELECT count(*) >= 5 FROM saas.jobs WHERE kind = 'tap.user' AND state = 'running'}, 't', 20),
	'calls are in flight');
my $drainer = q1($node, q{SELECT min(pid) FROM pg_stat_activity WHERE backend_type = 'pg_saas drainer'});
$node->safe_psql('postgres', "SELECT pg_terminate_backend($drainer)");
ok(wait_for($node, "SELECT count(*) FROM pg_stat_activity WHERE pid = $drainer", '0', 10), 'the drainer is gone');
# What runs now: the dead drainer's jobs stay so until its successor takes them over (5 s).
$node->safe_psql('postgres', q{CREATE TABLE tap_running AS
	SELECT org_id, id, lease_owner FROM saas.jobs WHERE kind = 'tap.user' AND state = 'running'});
# Its incarnation left shared memory with it: the owner among the running jobs that is not live.
my $dead = q1($node, q{SELECT coalesce(string_agg(DISTINCT lease_owner::text, ','), '') FROM tap_running
	WHERE NOT lease_owner = ANY (saas._worker_incarnations())});
like($dead, qr/^-?\d+$/, "one incarnation among the running jobs is gone ($dead)");
my $dead_jobs = q1($node, "SELECT count(*) FROM tap_running WHERE lease_owner = $dead");
my $live_jobs = q1($node, "SELECT count(*) FROM tap_running WHERE lease_owner <> $dead");
ok($dead_jobs > 0, "the drainer had $dead_jobs calls in flight; the live processes $live_jobs");

ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_saas drainer'}, '2', 20),
	'the drainer is restarted');
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.user' AND state = 'succeeded'}, $n, 60),
	"all $n jobs succeed");
is(job_states($node, 'tap.user'), "succeeded=$n", 'none is dead, running or waiting');
is(q1($node, qq{SELECT count(*) FROM saas.jobs j JOIN tap_running r USING (org_id, id)
	WHERE r.lease_owner = $dead AND j.attempt = 2}), $dead_jobs,
	'the stopped drainer\'s jobs were taken over and called once more');
is(q1($node, qq{SELECT count(*) FROM saas.jobs j JOIN tap_running r USING (org_id, id)
	WHERE r.lease_owner <> $dead AND j.attempt = 1}), $live_jobs,
	'the live processes\' jobs were not taken over: one call each');
is(q1($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.user' AND attempt > 2}), 0, 'no job ran a third time');
my $st = sim_stats($sim, 'user-service');
is($st->{effects}, $n, "the user service applied exactly $n changes: one per Idempotency-Key");
is($st->{idempotent_replays}, $dead_jobs, "only the taken-over calls were made again, as replays ($st->{idempotent_replays})");
ok(log_has($node, qr/took over \d+ running jobs of a worker process that is gone/), 'the take-over is logged');
ok(!log_has($node, qr/PANIC|terminated by signal/), 'no crash');
$node->stop;
done_testing();
