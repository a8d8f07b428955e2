# 30 % lost responses (issue 9, "state that converges"): the services apply
# the change, then the worker sees no answer: the user service closes the
# connection with no answer (lost_response: drop), the communication service
# hangs until the worker's call times out (lost_response: hang). A call that
# may have taken effect is a service failure: retried with the same
# Idempotency-Key until an answer says what happened, and not dead while its
# retry window lasts, even after its few attempts (max_retries = 2) are
# spent. At the end every job has succeeded on an answer of the service, and
# the service's state matches the jobs: one effect per job (a retry after a
# lost answer is a replay), no duplicate, no job dead whose user or message
# exists. Bounded: about 10-20 s.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }

my $n = 100;
my $node = saas_node('lost');
my $sim = start_sim();
point_integrations($node, $sim, 'timeout_ms = 1000, base_backoff_ms = 100, max_backoff_seconds = 1, max_retries = 2');
my $org = new_org($node, 'lost');
ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_saas worker'}, '1', 20), 'the worker runs');
is(q1($node, q{SELECT min(retry_window_seconds) FROM saas.integrations}), '259200', 'the retry window is 3 days (the default)');

sim_faults($sim, 'user-service', { lost_response_rate => 0.3, lost_response => 'drop' });
sim_faults($sim, 'communication-service', { lost_response_rate => 0.3, lost_response => 'hang' });
enqueue_users($node, $org, $n, 'lost', 'org_lost');
$node->safe_psql('postgres', qq{
	SELECT count(saas._enqueue('$org', 'communication-service', 'tap.msg', 'POST', '/messages',
		jsonb_build_object('organization_id', 'org_lost', 'recipient', 'm' || n || '\@tap.test', 'template', 'welcome'),
		'tap.msg-' || n))
	  FROM generate_series(1, $n) n;});

ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind IN ('tap.user', 'tap.msg') AND state IN ('succeeded', 'dead')},
	2 * $n, 50), 'every job finishes');
is(job_states($node, 'tap.user'), "succeeded=$n", 'user jobs: all succeeded, none dead');
is(job_states($node, 'tap.msg'), "succeeded=$n", 'message jobs: all succeeded, none dead');
is(q1($node, q{SELECT count(*) FROM saas.jobs WHERE kind IN ('tap.user', 'tap.msg')
	AND (last_status IS NULL OR last_status NOT BETWEEN 200 AND 299)}), '0',
	'each success was recorded from an answer of the service (2xx), none without one');
my $retried = q1($node, q{SELECT count(*) FROM saas.jobs WHERE kind IN ('tap.user', 'tap.msg') AND attempt > 1});
ok($retried > 0, "lost answers made jobs retry ($retried)");
note('attempts: ' . q1($node, q{SELECT string_agg(a || 'x' || n, ' ' ORDER BY a) FROM
	(SELECT attempt a, count(*) n FROM saas.jobs WHERE kind IN ('tap.user', 'tap.msg') GROUP BY attempt) s}));
note('jobs that outlived their 3 attempts: ' . q1($node, q{SELECT count(*) FROM saas.jobs
	WHERE kind IN ('tap.user', 'tap.msg') AND attempt > max_attempts}));

my $us = sim_stats($sim, 'user-service');
my $cs = sim_stats($sim, 'communication-service');
note("user-service: requests $us->{requests}, faults $us->{faults_injected}, replays $us->{idempotent_replays}, effects $us->{effects}");
note("communication-service: requests $cs->{requests}, faults $cs->{faults_injected}, replays $cs->{idempotent_replays}, effects $cs->{effects}");
ok($us->{faults_injected} >= 10 && $cs->{faults_injected} >= 10, 'answers were lost at both services');
is($us->{effects}, $n, "the user service applied exactly $n creations: one per job");
is($cs->{effects}, $n, "the communication service sent exactly $n messages: one per job");
ok($us->{idempotent_replays} >= 1 && $cs->{idempotent_replays} >= 1, 'retries after lost answers were replays');
my $users = http('GET', "$sim->{url}/_sim/users?organization_id=org_lost")->{json}{users} // [];
my %emails = map { lc($_->{email}) => 1 } @$users;
is(scalar @$users, $n, "the user service holds $n users of the organization");
is(scalar(keys %emails), $n, 'no duplicate user');
my $msgs = http('GET', "$sim->{url}/_sim/messages?organization_id=org_lost")->{json}{messages} // [];
my %rcpt = map { lc($_->{recipient}) => 1 } @$msgs;
is(scalar @$msgs, $n, "the communication service holds $n messages");
is(scalar(keys %rcpt), $n, 'no duplicate message');
is(q1($node, q{SELECT count(*) FROM saas.jobs WHERE kind IN ('tap.user', 'tap.msg') AND (finished_at IS NULL OR lease_until IS NOT NULL)}),
	'0', 'every job is finished and holds no lease');
ok(!log_has($node, qr/terminated by signal|PANIC/), 'no backend crashed');
$node->stop;
done_testing();
