# Outbound flow end to end: a registration through the relay enqueues the
# user push, the welcome message and the payment customer (then its
# subscription); the worker calls saas-sim; every call takes effect once; the
# services' ids are written back (the user's id; the payment customer id). The sim's webhooks come back through the
# relay, are ingested for the right organization, applied by the worker, and
# not pushed back again (no ping-pong).
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }
our $JSON;

my $node = saas_node('outbound');
my $relay = start_relay($node);
my $sim = start_sim(webhook_url => "$relay->{url}/webhooks");
point_integrations($node, $sim, 'timeout_ms = 3000, base_backoff_ms = 200, max_backoff_seconds = 2');

ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_saas worker'}, '1', 20),
	'the worker runs in database postgres');
my $health = http('GET', "$relay->{url}/healthz");
is($health->{json}{worker}, 'running', 'GET /healthz reports the worker running');

# Register through the relay.
my $reg = http('POST', "$relay->{url}/auth/register", {
	organization => { name => 'Outbound Inc', slug => 'outbound' },
	email => 'owner@outbound.test', password => 'correct horse battery staple',
	first_name => 'Olive', last_name => 'Owner' });
is($reg->{status}, 201, 'POST /auth/register answers 201');
my $tok = $reg->{json}{token};
my $org = $reg->{json}{organization}{id};
my $uid = $reg->{json}{user}{id};
my $auth = { authorization => "Bearer $tok" };

my $jobs_sql = qq{SELECT string_agg(kind || ':' || state, ' ' ORDER BY kind, state) FROM saas.jobs WHERE org_id = '$org'};
ok(wait_for($node, $jobs_sql,
	'customer.create:succeeded message.welcome:succeeded subscription.create:succeeded user.push:succeeded', 30),
	'the four jobs of a registration succeed (customer, then its subscription, welcome, user push)');
is(q1($node, qq{SELECT max(attempt) FROM saas.jobs WHERE org_id = '$org'}), '1', 'each took one attempt');

my %effects = map { $_ => sim_stats($sim, $_)->{effects} } qw(user-service payment-service communication-service);
is($effects{'user-service'}, 1, 'user-service: one effect (the user)');
is($effects{'payment-service'}, 2, 'payment-service: two effects (customer and subscription)');
is($effects{'communication-service'}, 1, 'communication-service: one effect (the welcome message)');

# What the services hold, and the ids written back.
my $sim_users = http('GET', "$sim->{url}/_sim/users?organization_id=$org")->{json};
my $ext_user = q1($node, qq{SELECT external_user_ids ->> 'user_service' FROM saas.users WHERE id = '$uid'});
ok(length($ext_user) > 0, "the user's id at the user service is written back ($ext_user)");
my $sim_users_json = $JSON->encode($sim_users);
like($sim_users_json, qr/\Q$ext_user\E/, 'and it is the id the user service holds for that organization');
like($sim_users_json, qr/owner\@outbound\.test/, 'the user service has the user with its email');
is(q1($node, qq{SELECT coalesce(external_ids ->> 'user_service', id::text) FROM saas.organizations WHERE id = '$org'}), $org,
	"the organization is known at the user service by its id (it has no reference of its own there)");
like(q1($node, qq{SELECT external_ids ->> 'payment_customer' FROM saas.organizations WHERE id = '$org'}), qr/^cust_/,
	"the payment service's customer id is written back (payment_customer)");
my $subs = $JSON->encode(http('GET', "$sim->{url}/_sim/subscriptions?organization_id=$org")->{json});
like($subs, qr/"plan"\s*:\s*"free"/, 'the payment service has a subscription to the free plan for the organization');
my $msgs = $JSON->encode(http('GET', "$sim->{url}/_sim/messages?organization_id=$org")->{json});
like($msgs, qr/owner\@outbound\.test/, 'the welcome message went to the new user');

# A user added by the admin, then renamed: one push each, no customer again.
my $new = http('POST', "$relay->{url}/users", { email => 'second@outbound.test', first_name => 'Sam',
	last_name => 'Second', role => 'user', password => 'correct horse battery staple' }, $auth);
is($new->{status}, 201, 'POST /users answers 201');
my $uid2 = $new->{json}{id};
ok(wait_for($node, qq{SELECT count(*) FROM saas.jobs WHERE org_id = '$org' AND state <> 'succeeded'}, '0', 30)
	&& q1($node, qq{SELECT count(*) FROM saas.jobs WHERE org_id = '$org'}) eq '6',
	'the new user is pushed and welcomed (6 jobs, all succeeded)');
ok(wait_for($node, qq{SELECT external_user_ids ? 'user_service' FROM saas.users WHERE id = '$uid2'}, 't', 10),
	"the new user's id is written back");
my $put = http('PUT', "$relay->{url}/users/$uid2", { first_name => 'Samuel' }, $auth);
is($put->{status}, 200, 'PUT /users/:id answers 200');
ok(wait_for($node, qq{SELECT count(*) FILTER (WHERE state = 'succeeded') || '/' || count(*) FROM saas.jobs WHERE org_id = '$org'},
	'7/7', 30), 'the change is pushed (a PUT job) and succeeds');
my $sim_user2 = http('GET', "$sim->{url}/_sim/users?organization_id=$org")->{json};
like($JSON->encode($sim_user2), qr/Samuel/, 'the user service has the new name');

# The webhooks the sim sent come back through the relay and are applied.
ok(wait_until(sub {
		my $ok = 1;
		for my $s (qw(user-service payment-service communication-service))
		{
			my $st = sim_stats($sim, $s);
			$ok &&= ($st->{webhooks_pending} // 1) == 0 && ($st->{events_emitted} // 0) > 0;
		}
		$ok }, 30, 'every webhook delivered'),
	'the sim delivered all its webhooks');
for my $s (qw(user-service payment-service communication-service))
{
	my $st = sim_stats($sim, $s);
	is($st->{webhooks_sent}, $st->{events_emitted}, "$s: every event emitted was answered 2xx ($st->{events_emitted})");
}
ok(wait_for($node, qq{SELECT count(*) FROM saas.webhook_events WHERE applied_at IS NULL}, '0', 20),
	'the worker applied every stored event');
my $events = q1($node, qq{SELECT string_agg(service || ' ' || event_type, ', ' ORDER BY service, event_type)
	FROM saas.webhook_events WHERE org_id = '$org'});
note("events stored for the organization: $events");
like($events, qr/user-service user\.created.*user-service user\.created.*user-service user\.updated/,
	"user-service events for the organization are accepted (two user.created, user.updated)");
like($events, qr/payment-service invoice\.created.*payment-service payment\.succeeded.*payment-service subscription\.created/,
	"payment-service events for the organization are accepted (subscription.created, invoice.created, payment.succeeded)");
like($events, qr/communication-service message\.delivered.*communication-service message\.sent/,
	"communication-service events for the organization are accepted (message.sent, message.delivered)");
is(q1($node, qq{SELECT count(*) FROM saas.webhook_events WHERE org_id = '$org' AND apply_result LIKE 'failed%'}), '0',
	'no event failed to apply');
is(q1($node, qq{SELECT count(*) FROM saas.subscriptions WHERE org_id = '$org' AND status = 'active'}), '1',
	'the subscription is known, active');
is(q1($node, qq{SELECT count(*) FROM saas.notifications WHERE org_id = '$org' AND status = 'delivered'}), '2',
	'both welcome messages are known, delivered');
is(q1($node, qq{SELECT first_name FROM saas.users WHERE id = '$uid2'}), 'Samuel', 'the user keeps its new name');

# No ping-pong: applying the service's events enqueues nothing, so nothing more happens.
my $njobs = q1($node, qq{SELECT count(*) FROM saas.jobs WHERE org_id = '$org'});
my $eff_user = sim_stats($sim, 'user-service')->{effects};
sleep 3;
is(q1($node, qq{SELECT count(*) FROM saas.jobs WHERE org_id = '$org'}), $njobs, 'no job is enqueued by applied events');
is(sim_stats($sim, 'user-service')->{effects}, $eff_user, 'the user service sees no further change');
is(sim_stats($sim, $_)->{idempotent_replays}, 0, "$_: no replayed call (nothing was retried)")
  for qw(user-service payment-service communication-service);

# Status as the admin sees it.
my $st = http('GET', "$relay->{url}/integrations/status", undef, $auth);
is($st->{status}, 200, 'GET /integrations/status answers 200');
is(join(',', map { "$_=$st->{json}{$_}{status}/$st->{json}{$_}{circuit}/$st->{json}{$_}{dead}" } sort keys %{ $st->{json} // {} }),
	'communicationService=OK/closed/0,paymentService=OK/closed/0,userService=OK/closed/0',
	'every service is OK, its circuit closed, no dead job');
ok(($st->{json}{userService}{latencyMs}{p95} // -1) >= 0, 'latency is reported');

ok(!log_has($node, qr/terminated by signal|PANIC/), 'no backend crashed');
$node->stop;
done_testing();
