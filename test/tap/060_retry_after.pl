# A service answers 429 with Retry-After. The job is retried no sooner than
# Retry-After says (whatever the service's own backoff), 429 does not count
# against the circuit breaker, and once the service accepts, the jobs succeed.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }

my $n = 4;
my $retry_after = 3;
my $node = saas_node('retry_after');
my $sim = start_sim();
# A tiny own backoff (100 ms) and a breaker that would open after 2 failures.
point_integrations($node, $sim, 'timeout_ms = 1000, base_backoff_ms = 100, max_backoff_seconds = 1, max_retries = 10');
$node->safe_psql('postgres', q{UPDATE saas.integrations SET breaker_min_volume = 2, breaker_failure_rate = 0.5
	WHERE service = 'user-service'});
my $org = new_org($node, 'retry-after');
# Not about the pull sync (its reads would count as requests): the organization counts as synced.
$node->safe_psql('postgres', qq{INSERT INTO saas.sync_state (org_id, service, last_sync) VALUES ('$org', 'user-service', now())});
ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_saas worker'}, '1', 20), 'the worker runs');

sim_faults($sim, 'user-service', { error_rate => 1, status => 429, retry_after => $retry_after });
enqueue_users($node, $org, $n, 'ra', 'org_ra');
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.user' AND state = 'retryable' AND last_status = 429}, $n, 20),
	"the $n jobs were answered 429 and wait for a retry");
my $t429 = Time::HiRes::time();
is(q1($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.user' AND run_at - updated_at >= interval '} . $retry_after . q{ seconds'}), $n,
	"each is scheduled at least Retry-After ($retry_after s) later, not after the 100 ms backoff");
like(q1($node, q{SELECT min(last_error) FROM saas.jobs WHERE kind = 'tap.user'}), qr/^HTTP 429/, 'last_error says HTTP 429');
my $requests = sim_stats($sim, 'user-service')->{requests};
is($requests, $n, "one request per job so far ($requests)");
Time::HiRes::sleep($retry_after - 1);
is(sim_stats($sim, 'user-service')->{requests}, $requests, 'no request before Retry-After has passed');
is(q1($node, q{SELECT circuit FROM saas.integration_status WHERE service = 'user-service'}), 'closed',
	'429 does not open the circuit (it is the service pacing us, not failing)');
is(q1($node, q{SELECT status FROM saas.integration_status WHERE service = 'user-service'}), 'RETRYING', 'the status says RETRYING');

# Still 429 on the second try: again no sooner than Retry-After.
ok(wait_until(sub { sim_stats($sim, 'user-service')->{requests} >= 2 * $n }, 10, 'the second tries'), 'the jobs are tried again');
my $gap = Time::HiRes::time() - $t429;
ok($gap >= $retry_after - 0.5, sprintf('the second tries came %.1f s after the first answers', $gap));
sim_heal($sim, 'user-service');
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.user' AND state = 'succeeded'}, $n, 20),
	'once the service accepts, every job succeeds');
my ($min_gap) = q1($node, q{SELECT min(extract(epoch FROM finished_at - created_at)) FROM saas.jobs WHERE kind = 'tap.user'});
ok($min_gap >= 2 * $retry_after - 0.5, "no job finished before two Retry-After periods ($min_gap s)");
is(q1($node, q{SELECT count(*) FROM saas._breaker_events WHERE service = 'user-service'}), '0', 'the breaker never moved');
is(sim_stats($sim, 'user-service')->{effects}, $n, "the user service applied $n changes");
$node->stop;
done_testing();
