# Retention and metrics (issue 9, parts 6 and 7).
#
# 1. The default retention periods hold: rows just past their table's period
#    go, rows just inside it stay (succeeded jobs 1 h, dead jobs 30 d, applied
#    webhook events 7 d, notifications 90 d, entity versions 30 d, breaker
#    events 30 d), and the live queue is never touched.
# 2. Pruning keeps up: with saas.retention_succeeded_jobs = 0, jobs arriving in
#    waves are deleted while the drain runs, not after it, and nothing done at
#    the service is lost.
# 3. Metrics: saas.metrics_text() and the relay's GET /metrics show the
#    worker's calls, latency histogram, queue depth, breaker state and pruning;
#    with the database down, the relay still serves its own metrics.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }

my $node = saas_node('retention', 'saas.retention_interval = 1');
my $sim = start_sim();
point_integrations($node, $sim, 'timeout_ms = 2000, max_in_flight = 64');
my $org = new_org($node, 'retention');
ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_saas worker'}, '1', 20), 'the worker runs');

# ---- 1. default periods ----------------------------------------------------
$node->safe_psql('postgres', qq{
	INSERT INTO saas.jobs (org_id, service, kind, state, idempotency_key, finished_at, run_at, created_at)
	VALUES ('$org', 'user-service', 'rt.old', 'succeeded', 'rt-s-old', now() - interval '61 minutes', now() - interval '2 hours', now() - interval '2 hours'),
		   ('$org', 'user-service', 'rt.keep', 'succeeded', 'rt-s-new', now() - interval '59 minutes', now(), now()),
		   ('$org', 'user-service', 'rt.old', 'dead', 'rt-d-old', now() - interval '31 days', now(), now()),
		   ('$org', 'user-service', 'rt.keep', 'dead', 'rt-d-new', now() - interval '29 days', now(), now()),
		   ('$org', 'user-service', 'rt.keep', 'retryable', 'rt-r-old', NULL, now() + interval '1 day', now() - interval '400 days');
	INSERT INTO saas.webhook_events (org_id, service, event_id, event_type, occurred_at, payload, received_at, applied_at, apply_result)
	VALUES ('$org', 'user-service', 'rt-ev-old', 'user.updated', now() - interval '8 days', '{}', now() - interval '8 days', now() - interval '8 days', 'rt.old'),
		   ('$org', 'user-service', 'rt-ev-new', 'user.updated', now() - interval '6 days', '{}', now() - interval '6 days', now() - interval '6 days', 'rt.keep');
	INSERT INTO saas.notifications (org_id, message_ref, status, last_event_at, updated_at, kind)
	VALUES ('$org', 'rt-msg-old', 'delivered', now() - interval '91 days', now() - interval '91 days', 'rt.old'),
		   ('$org', 'rt-msg-new', 'delivered', now() - interval '89 days', now() - interval '89 days', 'rt.keep');
	INSERT INTO saas.entity_versions (org_id, service, entity_ref, last_event_at)
	VALUES ('$org', 'user-service', 'rt.old', now() - interval '31 days'),
		   ('$org', 'user-service', 'rt.keep', now() - interval '29 days');
	INSERT INTO saas._breaker_events (service, from_state, to_state, reason, at)
	VALUES ('user-service', 'closed', 'open', 'rt.old', now() - interval '31 days'),
		   ('user-service', 'closed', 'open', 'rt.keep', now() - interval '29 days');
});
my $left = q{SELECT (SELECT count(*) FROM saas.jobs WHERE kind = 'rt.old')
	+ (SELECT count(*) FROM saas.webhook_events WHERE apply_result = 'rt.old')
	+ (SELECT count(*) FROM saas.notifications WHERE kind = 'rt.old')
	+ (SELECT count(*) FROM saas.entity_versions WHERE entity_ref = 'rt.old')
	+ (SELECT count(*) FROM saas._breaker_events WHERE reason = 'rt.old')};
ok(wait_for($node, $left, '0', 20), 'rows past their default period were pruned from every table');
is(q1($node, q{SELECT string_agg(state, ',' ORDER BY state) FROM saas.jobs WHERE kind = 'rt.keep'}), 'dead,retryable,succeeded',
	'jobs inside their period stay, and the live queue is never pruned (a 400-day-old retryable job)');
is(q1($node, q{SELECT (SELECT count(*) FROM saas.webhook_events WHERE apply_result = 'rt.keep')
	|| ',' || (SELECT count(*) FROM saas.notifications WHERE kind = 'rt.keep')
	|| ',' || (SELECT count(*) FROM saas.entity_versions WHERE entity_ref = 'rt.keep')
	|| ',' || (SELECT count(*) FROM saas._breaker_events WHERE reason = 'rt.keep')}), '1,1,1,1',
	'events, notifications, entity versions and breaker events inside their period stay');

# A setting changes what is kept, on reload.
$node->safe_psql('postgres', q{ALTER SYSTEM SET saas.retention_dead_jobs = '1d'; SELECT pg_reload_conf();});
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'rt.keep' AND state = 'dead'}, '0', 20),
	'saas.retention_dead_jobs = 1d prunes the 29-day-old dead job');
$node->safe_psql('postgres', q{ALTER SYSTEM SET saas.retention_webhook_events = -1; SELECT pg_reload_conf();});
$node->safe_psql('postgres', qq{INSERT INTO saas.webhook_events (org_id, service, event_id, event_type, occurred_at, payload, received_at, applied_at, apply_result)
	VALUES ('$org', 'user-service', 'rt-ev-forever', 'user.updated', now(), '{}', now() - interval '3000 days', now(), 'rt.forever')});
Time::HiRes::sleep(3);
is(q1($node, q{SELECT count(*) FROM saas.webhook_events WHERE apply_result = 'rt.forever'}), '1', 'retention -1 keeps forever');

# ---- 2. pruning keeps up ---------------------------------------------------
$node->safe_psql('postgres', q{ALTER SYSTEM SET saas.retention_succeeded_jobs = 0; SELECT pg_reload_conf();});
Time::HiRes::sleep(1);
my ($waves, $per_wave) = (10, 1000);
my $max_kept = 0;
for my $w (1 .. $waves)
{
	enqueue_users($node, $org, $per_wave, "rtw$w", 'org_rt');
	my $t_end = Time::HiRes::time() + 0.4;
	while (Time::HiRes::time() < $t_end)
	{
		my $kept = q1($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.user' AND state = 'succeeded'});
		$max_kept = $kept if $kept > $max_kept;
		Time::HiRes::sleep(0.1);
	}
}
my $total = $waves * $per_wave;
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.user'}, '0', 60),
	"all $total jobs ran and were pruned");
ok($max_kept < $total, "pruning ran during the drain: at most $max_kept of $total succeeded jobs were ever kept at once");
is(sim_stats($sim, 'user-service')->{effects}, $total, "the user service applied all $total (nothing pruned before it succeeded)");

# ---- 3. metrics ------------------------------------------------------------
my $m = q1($node, 'SELECT saas.metrics_text()');
sub metric
{
	my ($text, $series) = @_;
	return $text =~ /^\Q$series\E (\S+)$/m ? $1 : undef;
}
ok((metric($m, 'saas_worker_calls_total{service="user-service",outcome="ok"}') // 0) >= $total, 'calls by service and outcome');
ok((metric($m, 'saas_worker_call_duration_seconds_count{service="user-service"}') // 0) >= $total, 'latency histogram count');
is(metric($m, 'saas_worker_call_duration_seconds_bucket{service="user-service",le="+Inf"}'),
	metric($m, 'saas_worker_call_duration_seconds_count{service="user-service"}'), 'the +Inf bucket equals the count');
is(metric($m, 'saas_worker_breaker_state{service="user-service",state="closed"}'), '1', 'breaker state');
is(metric($m, 'saas_jobs{service="user-service",state="retryable"}'), '1', 'queue depth by service and state');
ok((metric($m, 'saas_worker_pruned_rows_total{table="jobs_succeeded"}') // 0) >= $total + 1, 'pruned rows counted');
is(metric($m, 'saas_worker_up'), '1', 'the worker is up');
is(metric($m, 'saas_worker_processes'), '1', 'one worker process runs (saas.worker_processes = 1, the default)');
unlike($m, qr/\Q$org\E/, 'no organization id in the metrics');

my $relay = start_relay($node);
my $r = http('GET', "$relay->{url}/metrics");
is($r->{status}, 200, 'GET /metrics');
like($r->{body}, qr/^saas_http_requests_total\{/m, "the relay's own metrics");
like($r->{body}, qr/^saas_worker_calls_total\{service="user-service",outcome="ok"\} \d+$/m, "the worker's metrics beside them");
like($r->{body}, qr/^saas_http_db_metrics_ok 1$/m, 'saas_http_db_metrics_ok 1');

$node->stop('fast');
$r = http('GET', "$relay->{url}/metrics");
is($r->{status}, 200, 'GET /metrics with the database down');
like($r->{body}, qr/^saas_http_pool_size \d+$/m, "the relay's own metrics are still served");
like($r->{body}, qr/^saas_http_db_metrics_ok 0$/m, 'saas_http_db_metrics_ok 0');
unlike($r->{body}, qr/^saas_worker_/m, 'no stale worker metrics');
stop_child($relay->{harness});
done_testing();
