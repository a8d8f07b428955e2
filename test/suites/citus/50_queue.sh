# Part of test/suites/80_citus.sh (sourced): the integration queue on the coordinator
# (docs/scale-out.md, "The queue on Citus"). The coordinator's pg_saas worker serves the test
# database; a saas-sim on free ports plays the services. Outbound: a user created through the
# API is delivered, a 503 is retried and converges, a dead job is revived by retry_job. Inbound:
# signed webhooks are ingested on the coordinator, once each, and applied by the worker.
# Uses a1, root (tokens) from the suite.

q_sim=$PROJECT_ROOT/sim/saas-sim
q_log=$CITUS_DIR/saas-sim.log
q_stop_sim() { kill "$q_sim_pid" 2>/dev/null; wait "$q_sim_pid" 2>/dev/null; }
cleanup() { q_stop_sim; citus_cluster_stop; }
# Four free ports; a port free when checked can still be taken before the sim binds it (by
# another server, or as the local port of an outgoing connection): then new ports, up to 5 times.
q_p=45000
for q_try in 1 2 3 4 5; do
	q_ports=()
	for _ in 1 2 3 4; do
		q_p=$(cluster_free_port $((q_p + 1)))
		q_ports+=("$q_p")
	done
	q_ctl=http://127.0.0.1:${q_ports[0]}/_sim
	"$q_sim" --control-port "${q_ports[0]}" --user-port "${q_ports[1]}" --payment-port "${q_ports[2]}" \
		--communication-port "${q_ports[3]}" --oidc-port 0 --webhook-url none --seed 7 --seed-data /dev/null --quiet \
		>"$q_log" 2>&1 &
	q_sim_pid=$!
	for _ in $(seq 1 100); do
		curl -sf "$q_ctl/health" >/dev/null && break
		kill -0 "$q_sim_pid" 2>/dev/null || break
		sleep 0.1
	done
	curl -sf "$q_ctl/health" >/dev/null && break
	q_stop_sim
	grep -q 'Address already in use' "$q_log" || break
	echo "# saas-sim: a port was taken meanwhile (try $q_try); new ports"
done
curl -sf "$q_ctl/health" >/dev/null || fail_setup "saas-sim did not start: $(tail -5 "$q_log")"

# q_wait NAME WANT SQL: poll SQL on the coordinator (up to 30 s) until it prints WANT.
q_wait() {
	local name=$1 want=$2 got
	for _ in $(seq 1 150); do
		got=$(cpsql 0 -c "$3" 2>&1)
		[ "$got" == "$want" ] && break
		sleep 0.2
	done
	if [ "$got" == "$want" ]; then ok "$name"; else not_ok "$name" "want: $want"$'\n'"got:  $got"; fi
}
# q_wait_api NAME WANT METHOD PATH TOKEN BODY EXPR: t_api, polled (up to 30 s) until it answers
# WANT (the worker moves a job between retryable and running on its own schedule).
q_wait_api() {
	local name=$1 want=$2 got
	shift 2
	for _ in $(seq 1 150); do
		got=$(api "$@")
		[ "$got" == "$want" ] && break
		sleep 0.2
	done
	if [ "$got" == "$want" ]; then ok "$name"; else not_ok "$name" "want: $want"$'\n'"got:  $got"; fi
}
# q_sim_count SERVICE FIELD: a counter of the sim's service.
q_sim_count() { curl -s "$q_ctl/stats/$1" | python3 -c "import json,sys; print(json.load(sys.stdin).get('$2', 0))"; }

t_eq "the coordinator's pg_saas worker runs the queue on the test database" 0 "1" \
	-c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_saas worker' AND datname = current_database()"

# Unpark the services: the jobs queued so far (some from before distribute()) are delivered.
cpsql 0 >/dev/null <<SQL || fail_setup "cannot point the services at saas-sim"
UPDATE saas.integrations SET base_url = 'http://127.0.0.1:${q_ports[1]}/v1' WHERE service = 'user-service';
UPDATE saas.integrations SET base_url = 'http://127.0.0.1:${q_ports[2]}/v2' WHERE service = 'payment-service';
UPDATE saas.integrations SET base_url = 'http://127.0.0.1:${q_ports[3]}/v1', base_backoff_ms = 200
 WHERE service = 'communication-service';
SQL
q_wait "the jobs queued before and after distribute() are all delivered (none left queued or running)" "0" \
	"SELECT count(*) FROM saas.jobs WHERE state IN ('available', 'running', 'retryable')"
q_cust=$(cpsql 0 -c "SELECT string_agg(org_id::text, ',') FROM saas.jobs WHERE kind = 'customer.create' AND state = 'succeeded'")
t_eq "the payment customers were created and their references written back to organizations (a reference table)" 0 "t" \
	-c "SELECT count(*) > 0 AND bool_and(external_ids ? 'payment_customer') FROM saas.organizations
		 WHERE id = ANY (string_to_array('$q_cust', ',')::uuid[])"

# ---- A user created through the API on the coordinator: its welcome message is delivered.
msgs0=$(q_sim_count communication-service requests)
t_api "POST /users: an admin creates an active user" "201|active" \
	POST /users "$a1" '{"email":"queue@tenant-1.test","first_name":"Q","last_name":"U","role":"user"}' "b->>'status'"
qu=$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'queue@tenant-1.test'")
q_wait "its welcome message job succeeds (delivered by the coordinator's worker)" "succeeded|202" \
	"SELECT state || '|' || last_status FROM saas.jobs WHERE idempotency_key = 'welcome:$qu'"
msgs1=$(q_sim_count communication-service requests)
if [ "$msgs1" -gt "$msgs0" ] && curl -s "$q_ctl/messages" | grep -q "queue@tenant-1.test"; then
	ok "saas-sim received the welcome message for queue@tenant-1.test"
else not_ok "saas-sim received the welcome message for queue@tenant-1.test" "requests $msgs0 -> $msgs1"; fi


# ---- A 503, then a 429, from the sim: the job is retried and converges once the service is back.
q_fault() { curl -s -o /dev/null -X POST "$q_ctl/faults/communication-service" -d "$1"; }
q_fault '{"error_rate":1,"status":503}'
t_api "POST /users: a second user while the communication service answers 503" "201|active" \
	POST /users "$a1" '{"email":"queue2@tenant-1.test","first_name":"Q","last_name":"U","role":"user"}' "b->>'status'"
qu2=$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'queue2@tenant-1.test'")
q_wait "a 503 makes the welcome job retryable (status recorded, routed by org_id)" "retryable|503" \
	"SELECT state || '|' || last_status FROM saas.jobs WHERE idempotency_key = 'welcome:$qu2'"
# At least this job: another tenant-1 message can be retrying at the same moment (seen in CI runs).
q_wait_api "GET /integrations/status: tenant 1's communication service is RETRYING with the job counted" "200|RETRYING true" \
	GET /integrations/status "$a1" "" "(b->'communicationService'->>'status') || ' ' || ((b->'communicationService'->>'retrying')::int >= 1)"
q_fault '{"error_rate":1,"status":429,"retry_after":1}'
q_wait "a 429 keeps it retryable" "retryable|429" \
	"SELECT state || '|' || last_status FROM saas.jobs WHERE idempotency_key = 'welcome:$qu2'"
curl -s -o /dev/null -X DELETE "$q_ctl/faults/all"
q_wait "the service is back: the job converges to succeeded" "succeeded|202" \
	"SELECT state || '|' || last_status FROM saas.jobs WHERE idempotency_key = 'welcome:$qu2'"

# ---- A refused call (400) kills the job at once; retry_job revives it.
# (First the messages earlier parts queued are delivered, so that the 400 kills this one only.)
q_wait "no message is pending before the communication service refuses" "0" \
	"SELECT count(*) FROM saas.jobs WHERE service = 'communication-service' AND state IN ('available', 'running', 'retryable')"
q_fault '{"error_rate":1,"status":400}'
t_api "POST /users: a third user while the communication service refuses with 400" "201|active" \
	POST /users "$a1" '{"email":"queue3@tenant-1.test","first_name":"Q","last_name":"U","role":"user"}' "b->>'status'"
qu3=$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'queue3@tenant-1.test'")
q_wait "a 400 makes the welcome job dead" "dead|400" \
	"SELECT state || '|' || last_status FROM saas.jobs WHERE idempotency_key = 'welcome:$qu3'"
curl -s -o /dev/null -X DELETE "$q_ctl/faults/all"
qj3=$(cpsql 0 -c "SELECT id FROM saas.jobs WHERE idempotency_key = 'welcome:$qu3'")
# (Another message queued meanwhile may die of the same 400: say which, and count them all.)
others=$(cpsql 0 -c "SELECT string_agg(kind || ' ' || idempotency_key, ', ') FROM saas.jobs
	WHERE service = 'communication-service' AND state = 'dead' AND id <> '$qj3'")
[ -z "$others" ] || echo "# also dead of the 400: $others"
t_api "GET /jobs?state=dead: tenant 1's admin sees the dead job (routed to its shard)" "200|true" \
	GET "/jobs?state=dead&limit=100" "$a1" "" "(SELECT coalesce(bool_or(j->>'id' = '$qj3'), false) FROM jsonb_array_elements(b->'data') j)"
t_api "GET /integrations/status: tenant 1's communication service is DEGRADED with the dead job counted" "200|DEGRADED true" \
	GET /integrations/status "$a1" "" "(b->'communicationService'->>'status') || ' ' || ((b->'communicationService'->>'dead')::int >= 1)"
t_api "POST /jobs/:id/retry of another organization's job is 404" "404|not_found" \
	POST "/jobs/$qj3/retry" "$a2" "" "b->'error'->>'code'"
t_api "POST /jobs/:id/retry: the admin revives the dead job (FOR UPDATE routed by org_id)" "200|available 0" \
	POST "/jobs/$qj3/retry" "$a1" "" "(b->>'state') || ' ' || (b->>'attempt')"
q_wait "the revived job is delivered" "succeeded|202" \
	"SELECT state || '|' || last_status FROM saas.jobs WHERE id = '$qj3'"
t_api "POST /jobs/:id/retry of a job that is not dead is 409" "409|conflict" \
	POST "/jobs/$qj3/retry" "$a1" "" "b->'error'->>'code'"
t_error "saas.retry_job() by the owner, of a job that is not dead: SA409" SA409 \
	-h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U postgres -d "$CITUS_DB" -c "SELECT saas.retry_job('$qj3')"
ndead=$(cpsql 0 -c "SELECT count(*) FROM saas.jobs WHERE service = 'communication-service' AND state = 'dead'")
t_eq "saas.retry_jobs() by the owner: a multi-shard update Citus runs ($ndead dead left)" 0 "{\"retried\": $ndead}" \
	-c "SELECT saas.retry_jobs('communication-service')"
q_wait_api "GET /integrations/status: tenant 1's communication service is OK again" "200|OK 0 0" \
	GET /integrations/status "$a1" "" "(b->'communicationService'->>'status') || ' ' || (b->'communicationService'->>'dead') || ' ' || (b->'communicationService'->>'retrying')"

# ---- Webhooks on the coordinator: signed, ingested once (webhook_events is distributed), applied.
# q_hook SERVICE ID BODY EXPR: POST /webhooks/SERVICE signed with the service's secret; "status|EXPR".
# With Q_SEND set, that body is sent instead of the one signed.
q_hook() {
	local secret key ts sig
	secret=$(cpsql 0 -c "SELECT webhook_secret FROM saas.integrations WHERE service = '$1'")
	key=$(printf '%s' "${secret#whsec_}" | base64 -d | od -An -tx1 | tr -d ' \n')
	ts=$(date +%s)
	sig=$(printf '%s' "$2.$ts.$3" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | base64)
	psql -X -q -At -h "$CITUS_DIR" -p "${CITUS_PORTS[0]}" -U app -d "$CITUS_DB" -v svc="$1" -v id="$2" \
		-v ts="$ts" -v sig="v1,$sig" -v body="${Q_SEND:-$3}" -v expr="$4" 2>&1 <<'SQL'
SELECT r.status || '|' || coalesce((:expr)::text, '')
  FROM saas.http('POST', '/webhooks/' || :'svc', jsonb_build_object('content-type', 'application/json',
		'webhook-id', :'id', 'webhook-timestamp', :'ts', 'webhook-signature', :'sig'), :'body') r,
	   LATERAL (SELECT r.body::jsonb AS b) x
SQL
}
t_hook() {
	local name=$1 want=$2 got
	shift 2
	got=$(q_hook "$@")
	if [ "$got" == "$want" ]; then ok "$name"; else not_ok "$name" "want: $want"$'\n'"got:  $got"; fi
}
o3=00000000-0000-4000-8000-000000000005 # (tenant 3 is deleted by part 40_directory)
o3pay=$(cpsql 0 -c "SELECT coalesce(external_ids ->> 'payment_service', id::text) FROM saas.organizations WHERE id = '$o3'")
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ev_sub="{\"event_id\":\"evt_q_sub1\",\"event_type\":\"subscription.created\",\"timestamp\":\"$now\",\"organization_id\":\"$o3pay\",\"data\":{\"subscription_id\":\"sub_q1\",\"plan\":\"professional\",\"status\":\"active\",\"amount\":99}}"
t_hook "POST /webhooks/payment-service: a signed subscription.created is accepted" "202|1 0" \
	payment-service msg_q_1 "$ev_sub" "(b->>'accepted') || ' ' || (b->>'duplicates')"
t_hook "the same event delivered again is a duplicate and changes nothing" "202|0 1" \
	payment-service msg_q_2 "$ev_sub" "(b->>'accepted') || ' ' || (b->>'duplicates')"
Q_SEND="${ev_sub/sub_q1/sub_q2}" t_hook "a body that is not the one signed is 401, and nothing is stored" "401|unauthorized" \
	payment-service msg_q_3 "$ev_sub" "b->'error'->>'code'"
t_eq "webhook_events holds the event once, in the organization's shard; nothing of the refused delivery" 0 "1|0" \
	-c "SELECT count(*) FILTER (WHERE event_id = 'evt_q_sub1') || '|' || count(*) FILTER (WHERE payload::text LIKE '%sub_q2%')
		  FROM saas.webhook_events WHERE org_id = '$o3'"
q_wait "the worker applies it: the subscription exists and the organization's tier follows the plan" "applied|professional|professional" \
	"SELECT e.apply_result || '|' || s.plan || '|' || o.subscription_tier FROM saas.webhook_events e
	   JOIN saas.subscriptions s ON s.org_id = e.org_id AND s.subscription_ref = 'sub_q1'
	   JOIN saas.organizations o ON o.id = e.org_id
	  WHERE e.org_id = '$o3' AND e.event_id = 'evt_q_sub1'"
o3msg=$(cpsql 0 -c "SELECT coalesce(external_ids ->> 'communication_service', id::text) FROM saas.organizations WHERE id = '$o3'")
ev_msg="[{\"event_id\":\"evt_q_m1\",\"event_type\":\"message.sent\",\"timestamp\":\"$now\",\"organization_id\":\"$o3msg\",\"data\":{\"message_id\":\"msg_q1\"}},{\"event_id\":\"evt_q_m2\",\"event_type\":\"message.delivered\",\"timestamp\":\"$(date -u -d '+1 second' +%Y-%m-%dT%H:%M:%SZ)\",\"organization_id\":\"$o3msg\",\"data\":{\"message_id\":\"msg_q1\"}}]"
t_hook "POST /webhooks/communication-service: two message events in one delivery" "202|2" \
	communication-service msg_q_4 "$ev_msg" "b->>'accepted'"
q_wait "the worker applies both in order: the notification is delivered" "delivered" \
	"SELECT status FROM saas.notifications WHERE org_id = '$o3' AND message_ref = 'msg_q1'"

# ---- Take-over: the coordinator's worker stops during a call; the next one takes its job over
# at once (the live incarnations are passed to a multi-shard update) and delivers it.
q_fault '{"latency_ms":20000}'
t_api "POST /users: a fourth user while the communication service hangs" "201|active" \
	POST /users "$a1" '{"email":"queue4@tenant-1.test","first_name":"Q","last_name":"U","role":"user"}' "b->>'status'"
qu4=$(cpsql 0 -c "SELECT id FROM saas.users WHERE email = 'queue4@tenant-1.test'")
q_wait "its welcome job is running (claimed, the call in flight)" "running" \
	"SELECT state FROM saas.jobs WHERE idempotency_key = 'welcome:$qu4'"
curl -s -o /dev/null -X DELETE "$q_ctl/faults/all"
cpsql 0 -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'pg_saas worker'" >/dev/null
q_wait "the restarted worker takes the job over and delivers it" "succeeded|202" \
	"SELECT state || '|' || last_status FROM saas.jobs WHERE idempotency_key = 'welcome:$qu4'"
# (At least this one: a call of another job can be in flight or done but not yet recorded when
# the worker is stopped; seen as "took over 2" in runs of this part.)
if grep -qE "took over [1-9][0-9]* running jobs" "$CITUS_DIR/coord.log"; then ok "the coordinator's log says the job was taken over"
else not_ok "the coordinator's log says the job was taken over" "$(grep 'pg_saas worker' "$CITUS_DIR/coord.log" | tail -3)"; fi

# ---- Retention across the shards: succeeded jobs are pruned by key (a ctid means nothing there).
cpsql 0 -c "ALTER SYSTEM SET saas.retention_succeeded_jobs = '1s'" -c "SELECT pg_reload_conf()" >/dev/null
q_wait "retention prunes the succeeded jobs on every shard" "0" \
	"SELECT count(*) FROM saas.jobs WHERE state = 'succeeded'"
cpsql 0 -c "ALTER SYSTEM RESET saas.retention_succeeded_jobs" -c "SELECT pg_reload_conf()" >/dev/null
q_stop_sim
