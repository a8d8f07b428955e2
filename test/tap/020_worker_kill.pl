# The worker is killed with SIGKILL while a batch of calls is in flight.
# The postmaster restarts every backend (that is what SIGKILL of a backend
# means) and the worker comes back. The calls that were in flight did take
# effect at the service (the sim applies a request even when the client is
# gone). The new worker takes their jobs over at once (their lease names the
# dead worker's incarnation), not after the lease runs out (38 s here), and
# the retry, with the same Idempotency-Key, is a replay: every job ends
# succeeded and each key took effect exactly once.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }

my $n = 50;
my $node = saas_node('kill', 'restart_after_crash = on');
my $sim = start_sim();
# Lease = 2 * timeout + 30 s = 38 s; the sim answers after 3 s; 20 calls per round.
point_integrations($node, $sim, 'timeout_ms = 4000, base_backoff_ms = 200, max_backoff_seconds = 2, max_retries = 10');
$node->safe_psql('postgres', q{UPDATE saas.integrations SET max_in_flight = 20 WHERE service = 'user-service'});
sim_faults($sim, 'user-service', { latency_ms => 3000 });
my $org = new_org($node, 'kill');
ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_saas worker'}, '1', 20),
	'the worker runs');
my $pid1 = worker_pid($node);

enqueue_users($node, $org, $n, 'kill', 'org_kill');
ok(wait_until(sub { (sim_stats($sim, 'user-service')->{requests} // 0) >= 20 }, 20, 'calls in flight'),
	'a round of 20 calls reached the user service (which answers after 3 s)');
my $running = q1($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.user' AND state = 'running'});
ok($running > 0, "jobs are running when the worker is killed ($running)");
# Remember which: they must wait for their lease, then run again.
$node->safe_psql('postgres', q{CREATE TABLE tap_in_flight AS
	SELECT org_id, id, lease_until FROM saas.jobs WHERE kind = 'tap.user' AND state = 'running'});
is(kill('KILL', $pid1), 1, "SIGKILL sent to the worker (pid $pid1)");

ok(wait_until(sub { log_has($node, qr/all server processes terminated; reinitializing/) }, 20, 'the restart'),
	'the postmaster restarts all backends after the kill');
ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_saas worker'}, '1', 30),
	'the worker comes back');
my $pid2 = worker_pid($node);
isnt($pid2, $pid1, "it is a new process ($pid2)");
is(q1($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.user'}), $n, "all $n jobs are still there");
my $in_flight = q1($node, q{SELECT count(*) FROM tap_in_flight});
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs j WHERE kind = 'tap.user' AND state = 'succeeded'
	AND NOT EXISTS (SELECT 1 FROM tap_in_flight f WHERE f.id = j.id)}, $n - $in_flight, 30),
	'the jobs that were not in flight are done by the new worker');
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.user' AND state = 'succeeded'}, $n, 30),
	"all $n jobs succeed, the dead worker's too, well before their leases run out");
is(job_states($node, 'tap.user'), "succeeded=$n", 'none is dead, running or waiting');
is(q1($node, q{SELECT count(*) FROM saas.jobs j JOIN tap_in_flight f USING (org_id, id)
	WHERE j.attempt = 2 AND j.finished_at < f.lease_until}), $in_flight,
	'they ran again, once, before their lease ran out (taken over by the new incarnation)');
ok(log_has($node, qr/took over \d+ running jobs of a worker process that is gone/), 'the worker logs the takeover');
is(q1($node, q{SELECT count(*) FROM saas.jobs j WHERE kind = 'tap.user' AND attempt = 1
	AND NOT EXISTS (SELECT 1 FROM tap_in_flight f WHERE f.id = j.id)}), $n - $in_flight, 'the others took one attempt');
my $st = sim_stats($sim, 'user-service');
is($st->{effects}, $n, "the user service applied exactly $n changes: one per Idempotency-Key");
is($st->{idempotent_replays}, $in_flight, "every call made again was a replay at the service ($st->{idempotent_replays})");
my $users = http('GET', "$sim->{url}/_sim/users?organization_id=org_kill")->{json};
my $count = ref $users eq 'HASH' ? scalar @{ $users->{users} // $users->{data} // [] } : ref $users eq 'ARRAY' ? scalar @$users : -1;
is($count, $n, "the user service holds $n users of the organization, no duplicate");
ok(!log_has($node, qr/PANIC/), 'no PANIC');
$node->stop;
done_testing();
