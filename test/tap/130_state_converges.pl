# State that converges (issue 9, part 5), driven by the simulated services
# themselves: what saas-sim really sends after real state changes there.
# - A plan change made at the payment service (PUT /v2/subscriptions/{id},
#   which sends subscription.updated with data.changes) reaches the
#   organization's subscription and its tier.
# - An ETag read after the services have echoed a user's creation still
#   works after the user logs in.
# - Relinking an organization to another reference at the user service
#   imports the users already there (its sync starts over).
# - Deleting the organization removes its users at the user service and
#   cancels its subscription at the payment service, through jobs; the
#   services' own events about it afterwards are answered 202 and rejected.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }
our $JSON;

my $node = saas_node('converges');
my $relay = start_relay($node);
my $sim = start_sim(webhook_url => "$relay->{url}/webhooks");
point_integrations($node, $sim, 'timeout_ms = 3000, base_backoff_ms = 200, max_backoff_seconds = 2');
$node->safe_psql('postgres', q{UPDATE saas.integrations SET sync_interval_seconds = 2 WHERE service = 'user-service'});
my $users_url = "http://127.0.0.1:$sim->{user}/v1/users";

# Users already at the user service under the reference the organization
# will be relinked to, created before anything the first sync will see.
for my $n (1 .. 3)
{
	my $r = http('POST', $users_url, { organization_id => 'conv_ref', email => "pre$n\@converge.test",
		first_name => 'Pre', last_name => "Existing $n" });
	is($r->{status}, 201, "user $n created at the user service under conv_ref");
}
Time::HiRes::sleep(1.1);

my $reg = http('POST', "$relay->{url}/auth/register", {
	organization => { name => 'Converge', slug => 'converge' },
	email => 'owner@converge.test', password => 'correct horse battery staple',
	first_name => 'Olga', last_name => 'Owner' });
is($reg->{status}, 201, 'registered through the relay');
my $org = $reg->{json}{organization}{id};
my $auth = { authorization => "Bearer $reg->{json}{token}" };

# 1. A plan change at the payment service reaches the subscription and the tier.
ok(wait_for($node, qq{SELECT count(*) FROM saas.subscriptions WHERE org_id = '$org' AND status = 'active'}, '1', 40),
	'the subscription created by the outbound flow is known from subscription.created');
my $sub = q1($node, qq{SELECT subscription_ref FROM saas.subscriptions WHERE org_id = '$org'});
my $put = http('PUT', "http://127.0.0.1:$sim->{payment}/v2/subscriptions/$sub", { plan => 'professional' });
is($put->{status}, 200, 'plan changed at the payment service');
ok(wait_for($node, qq{SELECT plan || ' ' || amount || ' ' || o.subscription_tier FROM saas.subscriptions s
	JOIN saas.organizations o ON o.id = s.org_id WHERE s.org_id = '$org'}, 'professional 299.99 professional', 30),
	'subscription.updated (data.changes) changed the plan, the amount and the tier');
is(q1($node, qq{SELECT coalesce(string_agg(event_type || ': ' || apply_result, '; '), '') FROM saas.webhook_events
	WHERE org_id = '$org' AND apply_result NOT IN ('applied', 'stale: newer state already applied')}), '',
	'no event the services sent failed or was rejected');

# 2. The ETag of a user survives a login.
my $bob = http('POST', "$relay->{url}/users", { email => 'bob@converge.test', first_name => 'Bob',
	last_name => 'Builder', role => 'user', password => 'bobs long password' }, $auth);
is($bob->{status}, 201, 'bob created');
my $bob_id = $bob->{json}{id};
ok(wait_for($node, qq{SELECT count(*) FROM saas.webhook_events e JOIN saas.users u ON u.org_id = e.org_id
	AND e.entity_ref = u.external_user_ids ->> 'user_service'
	WHERE u.id = '$bob_id' AND e.event_type = 'user.created' AND e.applied_at IS NOT NULL}, '1', 30),
	"bob is linked and the service's echo of his creation applied");
my $etag = http('GET', "$relay->{url}/users/$bob_id", undef, $auth)->{headers}{etag};
my $login = http('POST', "$relay->{url}/auth/login", { email => 'bob@converge.test', password => 'bobs long password' });
is($login->{status}, 200, 'bob logs in');
my $upd = http('PUT', "$relay->{url}/users/$bob_id", { last_name => 'Mason' }, { %$auth, 'if-match' => $etag });
is($upd->{status}, 200, "the ETag read before bob's login still works after it ($etag)");

# 3. Relinking imports the users already at the new reference.
ok(wait_for($node, qq{SELECT last_sync IS NOT NULL AND cursor_time IS NOT NULL FROM saas.sync_state WHERE org_id = '$org'}, 't', 30),
	'a first pull sync under the old reference completed');
is(q1($node, qq{SELECT count(*) FROM saas.users WHERE org_id = '$org' AND email LIKE 'pre%'}), '0', 'the conv_ref users are not here yet');
$node->safe_psql('postgres', qq{UPDATE saas.organizations SET external_ids = external_ids || '{"user_service":"conv_ref"}' WHERE id = '$org'});
ok(wait_for($node, qq{SELECT count(*) FROM saas.users WHERE org_id = '$org' AND email LIKE 'pre%' AND external_user_ids ? 'user_service'}, '3', 30),
	'after the relink, the users already at conv_ref are imported');

# 4. Deleting the organization cleans up at the services.
ok(wait_for($node, qq{SELECT count(*) FROM saas.jobs WHERE org_id = '$org' AND state NOT IN ('succeeded', 'dead')}, '0', 30),
	'the queue of the organization is drained');
my @refs = split /\n/, q1($node, qq{SELECT external_user_ids ->> 'user_service' FROM saas.users
	WHERE org_id = '$org' AND external_user_ids ? 'user_service' ORDER BY 1});
cmp_ok(scalar @refs, '>=', 5, 'the organization has linked users (' . scalar(@refs) . ')');
$node->safe_psql('postgres', qq{DELETE FROM saas.organizations WHERE id = '$org'});
is(q1($node, qq{SELECT string_agg(kind || '=' || n, ' ' ORDER BY kind) FROM (SELECT kind, count(*) n FROM saas.jobs
	WHERE org_id = '$org' AND kind IN ('user.delete', 'subscription.cancel') GROUP BY 1) j}),
	'subscription.cancel=1 user.delete=' . scalar(@refs), 'the delete enqueued the cleanup: every linked user, the subscription');
ok(wait_for($node, qq{SELECT count(*) FROM saas.jobs WHERE org_id = '$org' AND kind IN ('user.delete', 'subscription.cancel')
	AND state <> 'succeeded'}, '0', 40), 'the cleanup jobs succeeded although the organization is gone');
my @left = grep { (http('GET', "$users_url/$_")->{status} // 0) != 404 } @refs;
is(scalar @left, 0, 'none of its users is left at the user service');
is(http('GET', "http://127.0.0.1:$sim->{payment}/v2/subscriptions/$sub")->{json}{data}{status}, 'canceled',
	'its subscription is canceled at the payment service');

# The services' events about the deleted organization: 202, rejected, nothing stored.
my $body = $JSON->encode({ event_id => 'evt_after_delete', event_type => 'user.deleted', timestamp => '2024-05-01T00:00:00Z',
	organization_id => 'conv_ref', data => { user_id => $refs[0] } });
my $r = http('POST', "$relay->{url}/webhooks/user-service", $body, signed_headers('user-service', 'msg_after', $body));
is($r->{status} . ' ' . ($r->{json}{rejected}[0]{error} // ''), '202 organization_id is not linked to any organization',
	'an event for the deleted organization is answered 202 and rejected');
ok(!log_has($node, qr/webhook_events_org_fkey|terminated by signal|PANIC/), 'no foreign-key error, no crash');
done_testing();
