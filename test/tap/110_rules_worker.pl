# The rulebook on the worker's paths, with the events saas-sim really sends:
# appliers refuse what the rules refuse (the last admin cannot be
# deactivated or deleted by an event; a user.created with an admin's email is
# a conflict, never a silent link) and record the event as rejected with the
# reason; changes made from events are audited with the service as actor; an
# event dated in the future is rejected at ingest. And tokens follow the
# facts across backends: a user deactivated in one session is refused by the
# relay's pooled backends within the documented 5 seconds.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes;
BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }
our $JSON;

my $node = saas_node('rules_worker');
my $relay = start_relay($node);
my $sim = start_sim(webhook_url => "$relay->{url}/webhooks");
point_integrations($node, $sim, 'timeout_ms = 3000, base_backoff_ms = 200, max_backoff_seconds = 2');

my $reg = http('POST', "$relay->{url}/auth/register", {
	organization => { name => 'Rules Worker', slug => 'rules-worker' },
	email => 'owner@rules-worker.test', password => 'correct horse battery staple',
	first_name => 'Olga', last_name => 'Owner' });
is($reg->{status}, 201, 'registered through the relay');
my $org = $reg->{json}{organization}{id};
my $admin = $reg->{json}{user}{id};
my $auth = { authorization => "Bearer $reg->{json}{token}" };
my $bob = http('POST', "$relay->{url}/users", { email => 'bob@rules-worker.test', first_name => 'Bob',
	last_name => 'Builder', role => 'user', password => 'bobs long password' }, $auth);
is($bob->{status}, 201, 'the admin created bob');
my $bob_id = $bob->{json}{id};
ok(wait_for($node, qq{SELECT count(*) FROM saas.users WHERE org_id = '$org' AND external_user_ids ? 'user_service'}, '2', 30),
	'both users are pushed to the user service and linked');
my $ext_admin = q1($node, qq{SELECT external_user_ids ->> 'user_service' FROM saas.users WHERE id = '$admin'});
my $ext_bob = q1($node, qq{SELECT external_user_ids ->> 'user_service' FROM saas.users WHERE id = '$bob_id'});

# sim_event(TYPE, DATA): the simulator signs and delivers an event of ours;
# returns its event id once the worker has applied it, with the result.
sub sim_event
{
	my ($type, $data) = @_;
	my $r = http('POST', "$sim->{url}/_sim/events/user-service",
		{ event_type => $type, organization_id => $org, data => $data });
	die "the simulator refused the event: $r->{status} $r->{body}" unless $r->{status} == 202;
	my $id = $r->{json}{event_id};
	wait_for($node, qq{SELECT applied_at IS NOT NULL FROM saas.webhook_events WHERE event_id = '$id'}, 't', 30);
	return q1($node, qq{SELECT apply_result FROM saas.webhook_events WHERE event_id = '$id'});
}

like(sim_event('user.deactivated', { user_id => $ext_admin }), qr/^rejected: the last active admin of an organization cannot be deactivated/,
	'user.deactivated of the last admin: rejected with the reason');
is(q1($node, qq{SELECT role || '/' || status FROM saas.users WHERE id = '$admin'}), 'admin/active', 'the admin is still an active admin');
like(sim_event('user.deleted', { user_id => $ext_admin }), qr/^rejected: the last active admin of an organization cannot be deleted/,
	'user.deleted of the last admin: rejected with the reason');
like(sim_event('user.updated', { user_id => $ext_admin, changes => { status => 'suspended' } }),
	qr/^rejected: the last active admin/, 'user.updated suspending the last admin: rejected');
is(q1($node, qq{SELECT count(*) FROM saas.users WHERE id = '$admin' AND status = 'active'}), '1', 'the admin is still there and active');

like(sim_event('user.created', { user_id => 'usr_intruder', email => 'owner@rules-worker.test',
		first_name => 'Eve', last_name => 'Intruder' }),
	qr/^rejected: the email belongs to a user that is an admin or linked to another remote user/,
	"user.created with the admin's email: a conflict, never a silent link");
is(q1($node, qq{SELECT external_user_ids ->> 'user_service' || ' ' || first_name FROM saas.users WHERE id = '$admin'}),
	"$ext_admin Olga", "the admin keeps its own external id and name");
like(sim_event('user.created', { user_id => 'usr_other', email => 'bob@rules-worker.test', first_name => 'B', last_name => 'B' }),
	qr/^rejected: /, "user.created with a linked user's email: a conflict");

is(sim_event('user.updated', { user_id => $ext_bob, changes => { first_name => 'Robert' } }), 'applied',
	'a legitimate user.updated is applied');
is(q1($node, qq{SELECT first_name FROM saas.users WHERE id = '$bob_id'}), 'Robert', 'bob is renamed');
ok(wait_for($node, qq{SELECT actor_role || ' ' || coalesce(actor_id::text, 'no-user') FROM saas.audit_log
	WHERE org_id = '$org' AND entity = 'user' AND entity_id = '$bob_id' AND changes ? 'first_name' ORDER BY seq DESC LIMIT 1},
	'service:user-service no-user', 10), 'the change is audited with the service as actor, no user id');

# An event dated far in the future would freeze the entity: rejected at ingest.
my $body = $JSON->encode({ event_id => 'evt_future', event_type => 'user.updated', timestamp => '9999-01-01T00:00:00Z',
	organization_id => $org, data => { user_id => $ext_bob, changes => { first_name => 'Frozen' } } });
my $r = http('POST', "$relay->{url}/webhooks/user-service", $body, signed_headers('user-service', 'msg_future', $body));
is($r->{status}, 202, 'the delivery is answered 202');
is($r->{json}{accepted} . ' ' . ($r->{json}{rejected}[0]{error} // ''),
	'0 timestamp is in the future (more than the signature tolerance ahead of the clock)',
	'the future-dated event is listed in rejected');
is(q1($node, q{SELECT count(*) FROM saas.webhook_events WHERE event_id = 'evt_future'}), '0', 'and not stored');
is(sim_event('user.updated', { user_id => $ext_bob, changes => { last_name => 'Later' } }), 'applied',
	'a later real update still applies');

# Freshness across backends: bob's token works through the relay's pool,
# then bob is deactivated in another session; within 5 seconds (plus the
# time of a request) every pooled backend refuses the token.
my $bob_tok = http('POST', "$relay->{url}/auth/login", { email => 'bob@rules-worker.test', password => 'bobs long password' })->{json}{token};
my $ok = 0;
$ok++ for grep { (http('GET', "$relay->{url}/users/$bob_id", undef, { authorization => "Bearer $bob_tok" })->{status} // 0) == 200 } 1 .. 8;
is($ok, 8, "bob's token works on every pooled backend (state cached there)");
$node->safe_psql('postgres', qq{UPDATE saas.users SET status = 'inactive' WHERE id = '$bob_id'});
my $t0 = Time::HiRes::time();
my $refused_after;
while (Time::HiRes::time() - $t0 < 8)
{
	my @st = map { http('GET', "$relay->{url}/users/$bob_id", undef, { authorization => "Bearer $bob_tok" })->{status} } 1 .. 4;
	if (!grep { $_ != 401 } @st) { $refused_after = Time::HiRes::time() - $t0; last; }
	Time::HiRes::sleep(0.25);
}
ok(defined $refused_after && $refused_after <= 5, sprintf('every backend refuses the token within the bound (%.1f s)', $refused_after // -1));
Time::HiRes::sleep(1);
my @later = map { http('GET', "$relay->{url}/users/$bob_id", undef, { authorization => "Bearer $bob_tok" })->{status} } 1 .. 8;
is(join(',', @later), join(',', (401) x 8), 'and keeps refusing it');

ok(!log_has($node, qr/terminated by signal|PANIC/), 'no backend crashed');
done_testing();
