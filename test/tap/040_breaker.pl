# A service goes down (the sim closes its port). The first calls fail; once
# the window holds breaker_min_volume calls and enough of them failed, the
# circuit opens: the status says DOWN/open, saas._breaker_events has the
# transition, and jobs are no longer claimed, so they wait without spending
# attempts. When the service is back, after breaker_reset_seconds the
# circuit half-opens, the probes succeed, it closes and the backlog drains.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }

my $n = 40;
my $node = saas_node('breaker');
my $sim = start_sim();
point_integrations($node, $sim, 'timeout_ms = 1000, base_backoff_ms = 300, max_backoff_seconds = 1, max_retries = 20');
$node->safe_psql('postgres', q{UPDATE saas.integrations SET breaker_min_volume = 5, breaker_failure_rate = 0.5,
	breaker_window_seconds = 30, breaker_reset_seconds = 4, breaker_half_open_probes = 2, max_in_flight = 8
	WHERE service = 'user-service'});
my $org = new_org($node, 'breaker');
ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_saas worker'}, '1', 20), 'the worker runs');
is(q1($node, q{SELECT status || '/' || circuit FROM saas.integration_status WHERE service = 'user-service'}), 'OK/closed',
	'user-service starts OK, circuit closed');

sim_faults($sim, 'user-service', { mode => 'down' });
enqueue_users($node, $org, $n, 'cb', 'org_cb');
ok(wait_for($node, q{SELECT circuit FROM saas.integration_status WHERE service = 'user-service'}, 'open', 20),
	'the circuit opens');
my $calls_sql = q{SELECT calls_1m FROM saas._breaker_status() WHERE service = 'user-service'};
my $calls_at_open = q1($node, $calls_sql);
is(q1($node, q{SELECT status FROM saas.integration_status WHERE service = 'user-service'}), 'DOWN', 'the status says DOWN');
is(q1($node, q{SELECT string_agg(from_state || '->' || to_state, ' ' ORDER BY id) FROM saas._breaker_events WHERE service = 'user-service'}),
	'closed->open', 'saas._breaker_events has the transition closed -> open');
like(q1($node, q{SELECT reason FROM saas._breaker_events WHERE service = 'user-service' ORDER BY id LIMIT 1}),
	qr/failed/, 'with a reason');
my $lasterr = q1($node, q{SELECT last_error FROM saas.integration_status WHERE service = 'user-service'});
ok(length($lasterr) > 0, "the status shows the last error ($lasterr)");
ok(log_has($node, qr/circuit of user-service closed -> open/), 'the worker logs the transition');

# While open: nothing is claimed, no attempt is spent, nothing dies.
my $attempts = q1($node, q{SELECT sum(attempt) FROM saas.jobs WHERE kind = 'tap.user'});
my $spent = q1($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.user' AND attempt > 0});
note("attempts spent before the circuit opened: $attempts over $spent jobs");
ok($spent < $n, "not every job was tried before the circuit opened ($spent of $n)");
sleep 2;
is(q1($node, q{SELECT sum(attempt) FROM saas.jobs WHERE kind = 'tap.user'}), $attempts,
	'while the circuit is open, jobs wait without spending attempts');
is(q1($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.user' AND state IN ('dead', 'succeeded')}), '0',
	'none is dead (or done)');
is(q1($node, $calls_sql), $calls_at_open, 'no call is made (the breaker counts none)');
is(q1($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.user' AND state = 'running'}), '0', 'none is running');

# Still down after the reset timeout: a few probes, which fail, and it opens again.
ok(wait_for($node, q{SELECT count(*) FROM saas._breaker_events WHERE service = 'user-service' AND from_state = 'half_open' AND to_state = 'open'},
	'1', 15), 'after breaker_reset_seconds it half-opens, a probe fails, and it opens again');
my $after_probe = q1($node, q{SELECT sum(attempt) FROM saas.jobs WHERE kind = 'tap.user'});
ok($after_probe - $attempts >= 1 && $after_probe - $attempts <= 2,
	'only the half-open probes (at most breaker_half_open_probes = 2) spent an attempt (' . ($after_probe - $attempts) . ')');
is(q1($node, q{SELECT status FROM saas.integration_status WHERE service = 'user-service'}), 'DOWN', 'still DOWN');

# Back up: half_open, probes, closed, drained.
sim_heal($sim, 'user-service');
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.user' AND state = 'succeeded'}, $n, 60),
	'when the service is back, the backlog drains');
is(q1($node, q{SELECT circuit FROM saas.integration_status WHERE service = 'user-service'}), 'closed', 'the circuit is closed again');
my $tr = q1($node, q{SELECT string_agg(from_state || '->' || to_state, ' ' ORDER BY id) FROM saas._breaker_events WHERE service = 'user-service'});
like($tr, qr/^closed->open (open->half_open half_open->open )+open->half_open half_open->closed$/,
	"transitions: closed -> open -> half_open -> closed ($tr)");
my ($opened, $half) = split /\|/, q1($node, q{SELECT
	(SELECT max(at) FROM saas._breaker_events WHERE service = 'user-service' AND to_state = 'open'),
	(SELECT max(at) FROM saas._breaker_events WHERE service = 'user-service' AND to_state = 'half_open')});
ok(q1($node, qq{SELECT '$half'::timestamptz - '$opened'::timestamptz >= interval '3.9 seconds'}) eq 't',
	'it half-opened only after breaker_reset_seconds');
is(q1($node, q{SELECT max(attempt) <= 3 FROM saas.jobs WHERE kind = 'tap.user'}), 't',
	'no job spent more than a few attempts while the service was down');
is(sim_stats($sim, 'user-service')->{effects}, $n, "the user service applied $n changes, one per job");
is(q1($node, q{SELECT queued || '/' || retrying || '/' || dead FROM saas.integration_status WHERE service = 'user-service'}), '0/0/0',
	'the status shows an empty queue');
ok(!log_has($node, qr/terminated by signal|PANIC/), 'no backend crashed');
$node->stop;
done_testing();
