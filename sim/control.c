/*-------------------------------------------------------------------------
 *
 * control.c
 *	  The control API of saas-sim (its own port, so it answers while a
 *	  service is down or hanging).
 *
 *	  GET    /_sim/health
 *	  GET    /_sim/stats, /_sim/stats/{service}
 *	  POST   /_sim/reset
 *	  GET    /_sim/faults, /_sim/faults/{service}
 *	  POST   /_sim/faults/{service|all}		set the whole fault profile
 *	  DELETE /_sim/faults/{service|all}		back to healthy
 *	  GET    /_sim/webhooks[?service=]		settings, queues, recent attempts
 *	  POST   /_sim/webhooks					change settings (merge)
 *	  POST   /_sim/events/{service}			queue an arbitrary signed event
 *	  GET    /_sim/users|customers|subscriptions|messages[?organization_id=]
 *	  GET    /_sim/oidc, POST /_sim/oidc/{clients,users,faults,rotate,settings}
 *												the identity-provider (idp_control.c)
 *
 * Answers are plain JSON objects; errors have the services' error shape.
 *
 *-------------------------------------------------------------------------
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ctl_begin: start a 200 answer written by the caller */
static void
ctl_begin(SimResponse *resp, int status, SimJw *jw)
{
	resp->status = status;
	sbuf_reset(&resp->body);
	jw_init(jw, &resp->body);
}

/* ctl_method: 405 unless the method is one of allow (a comma list) */
static bool
ctl_method(const SimRequest *req, SimResponse *resp, const char *allow)
{
	const char *p = strstr(allow, req->method);
	size_t		n = strlen(req->method);

	if (p && (p[n] == '\0' || p[n] == ',') && (p == allow || p[-1] == ' '))
		return true;
	sim_resp_error(resp, 405, "METHOD_NOT_ALLOWED", "%s is not allowed on %s", req->method, req->path);
	snprintf(resp->allow, sizeof(resp->allow), "%s", allow);
	return false;
}

/* ctl_service: the service named in the path, or a 404 */
static SimService *
ctl_service(const char *name, SimResponse *resp)
{
	SimService *svc = sim_service_by_name(name);

	if (svc == NULL)
		sim_resp_error(resp, 404, "UNKNOWN_SERVICE",
					   "unknown service \"%s\" (user-service, payment-service, communication-service, "
					   "identity-provider)", name);
	return svc;
}

/* ctl_health: GET /_sim/health */
static void
ctl_health(SimResponse *resp)
{
	const SimSeed *seed = sim_seed_get();
	SimWebhookSettings ws;
	SimJw		jw;

	sim_webhook_settings_get(&ws);
	ctl_begin(resp, 200, &jw);
	jw_obj_begin(&jw);
	jw_kstr(&jw, "status", "ok");
	jw_kstr(&jw, "version", SIM_VERSION);
	jw_kint(&jw, "uptime_s", (sim_mono_ms() - sim_config.started_ms) / 1000);
	jw_kint(&jw, "seed", (int64_t) sim_config.seed);
	jw_kstr(&jw, "seed_data", seed->path);
	jw_kint(&jw, "control_port", sim_config.control_port);
	jw_kstr(&jw, "webhook_url", ws.enabled ? ws.url : NULL);
	jw_key(&jw, "organizations");
	jw_arr_begin(&jw);
	for (size_t i = 0; i < seed->norgs; i++)
		jw_str(&jw, seed->orgs[i].id);
	jw_arr_end(&jw);
	jw_key(&jw, "services");
	jw_obj_begin(&jw);
	for (int i = 0; i < SIM_NSERVICES; i++)
	{
		SimService *svc = &sim_services[i];
		SimFaults	f;

		sim_faults_get(svc, &f);
		jw_key(&jw, svc->name);
		jw_obj_begin(&jw);
		jw_kint(&jw, "port", svc->port);
		jw_kstr(&jw, "base", svc->base);
		jw_kbool(&jw, "listening", sim_server_is_listening(svc));
		jw_kstr(&jw, "mode", sim_mode_name(f.mode));
		jw_obj_end(&jw);
	}
	jw_obj_end(&jw);
	jw_obj_end(&jw);
}

/* ctl_write_stats: the counters of one service */
static void
ctl_write_stats(SimJw *jw, SimService *svc)
{
	SimStats   *s = &svc->stats;

#define STAT(f) jw_kint(jw, #f, (int64_t) __atomic_load_n(&s->f, __ATOMIC_RELAXED))
	jw_obj_begin(jw);
	jw_kstr(jw, "service", svc->name);
	STAT(requests);
	STAT(faults_injected);
	STAT(idempotent_replays);
	STAT(idempotency_conflicts);
	STAT(effects);
	STAT(events_emitted);
	STAT(webhook_attempts);
	STAT(webhooks_sent);
	STAT(webhooks_failed);
	STAT(webhooks_retried);
	STAT(webhooks_duplicated);
	STAT(webhooks_dead);
	STAT(webhooks_dropped);
	jw_kint(jw, "webhooks_pending", (int64_t) sim_delivery_pending(svc));
	STAT(responses_2xx);
	STAT(responses_4xx);
	STAT(responses_5xx);
	jw_kbool(jw, "listening", sim_server_is_listening(svc));
	jw_obj_end(jw);
#undef STAT
}

/* ctl_stats: GET /_sim/stats[/{service}] */
static void
ctl_stats(const char *name, SimResponse *resp)
{
	SimJw		jw;

	if (name)
	{
		SimService *svc = ctl_service(name, resp);

		if (svc == NULL)
			return;
		ctl_begin(resp, 200, &jw);
		ctl_write_stats(&jw, svc);
		return;
	}
	ctl_begin(resp, 200, &jw);
	jw_obj_begin(&jw);
	for (int i = 0; i < SIM_NSERVICES; i++)
	{
		jw_key(&jw, sim_services[i].name);
		ctl_write_stats(&jw, &sim_services[i]);
	}
	jw_obj_end(&jw);
}

/* ctl_write_faults: one service's profile and whether its port is open */
static void
ctl_write_faults(SimJw *jw, SimService *svc)
{
	SimFaults	f;

	sim_faults_get(svc, &f);
	jw_obj_begin(jw);
	jw_kstr(jw, "service", svc->name);
	jw_key(jw, "faults");
	sim_faults_write(jw, &f);
	jw_kbool(jw, "listening", sim_server_is_listening(svc));
	jw_obj_end(jw);
}

/*
 * ctl_faults: GET, POST, DELETE /_sim/faults[/{service|all}].  A POST
 * replaces the whole profile; the port is opened or closed before the
 * answer, so a client that reads the answer sees the new mode.
 */
static void
ctl_faults(const SimRequest *req, const char *name, SimResponse *resp)
{
	SimService *only = NULL;
	bool		all = name == NULL || strcmp(name, "all") == 0;
	SimFaults	f;
	SimJw		jw;

	if (!ctl_method(req, resp, name ? "GET, POST, DELETE" : "GET"))
		return;
	if (!all && (only = ctl_service(name, resp)) == NULL)
		return;
	if (strcmp(req->method, "POST") == 0)
	{
		json_t	   *body = sim_req_json_object(req, resp);
		char		err[160];

		if (body == NULL)
			return;
		if (!sim_faults_from_json(body, &f, err, sizeof(err)))
		{
			json_decref(body);
			sim_resp_error(resp, 400, "VALIDATION_ERROR", "%s", err);
			return;
		}
		json_decref(body);
	}
	else
		sim_faults_default(&f);
	if (strcmp(req->method, "GET") != 0)
		for (int i = 0; i < SIM_NSERVICES; i++)
			if (all || only == &sim_services[i])
			{
				sim_faults_set(&sim_services[i], &f);
				sim_server_reconcile(&sim_services[i]);
				sim_log("faults of %s: mode=%s error_rate=%g status=%d latency_ms=%d",
						sim_services[i].name, sim_mode_name(f.mode), f.error_rate,
						f.status, f.latency_ms);
			}
	ctl_begin(resp, 200, &jw);
	if (only)
		ctl_write_faults(&jw, only);
	else
	{
		jw_obj_begin(&jw);
		for (int i = 0; i < SIM_NSERVICES; i++)
		{
			jw_key(&jw, sim_services[i].name);
			ctl_write_faults(&jw, &sim_services[i]);
		}
		jw_obj_end(&jw);
	}
}

/* ctl_webhooks: GET and POST /_sim/webhooks */
static void
ctl_webhooks(const SimRequest *req, SimResponse *resp)
{
	SimJw		jw;

	if (!ctl_method(req, resp, "GET, POST"))
		return;
	if (strcmp(req->method, "POST") == 0)
	{
		json_t	   *body = sim_req_json_object(req, resp);
		SimWebhookSettings s;
		char		err[160];

		if (body == NULL)
			return;
		sim_webhook_settings_get(&s);
		if (!sim_webhook_settings_from_json(body, &s, err, sizeof(err)))
		{
			json_decref(body);
			sim_resp_error(resp, 400, "VALIDATION_ERROR", "%s", err);
			return;
		}
		json_decref(body);
		sim_webhook_settings_set(&s);
	}
	ctl_begin(resp, 200, &jw);
	sim_delivery_write_status(&jw, sim_req_query(req, "service"));
}

/* ctl_event: POST /_sim/events/{service}: queue an event of the test's making */
static void
ctl_event(const SimRequest *req, const char *name, SimResponse *resp)
{
	static const char *const fields[] = {"event_type", "organization_id", "data", NULL};
	SimService *svc;
	json_t	   *body;
	const char *type,
			   *org;
	json_t	   *data;
	SimBuf		text;
	SimJw		jw;
	char		id[48];

	if (!ctl_method(req, resp, "POST") || (svc = ctl_service(name, resp)) == NULL)
		return;
	if ((body = sim_req_json_object(req, resp)) == NULL)
		return;
	type = sim_json_get_str(body, "event_type");
	org = sim_json_get_str(body, "organization_id");
	data = json_object_get(body, "data");
	if (!sim_check_fields(body, fields, resp))
		;
	else if (type == NULL || !sim_service_has_event_type(svc, type))
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "event_type must be one of %s's event types",
					   svc->name);
	else if (org == NULL || org[0] == '\0')
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "organization_id is required");
	else if (data == NULL || !json_is_object(data))
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "data must be a JSON object");
	else
	{
		sbuf_init(&text);
		jw_init(&jw, &text);
		jw_value(&jw, data);
		pthread_mutex_lock(&svc->lock);
		sim_emit_event(svc, type, org, text.data, req->correlation_id);
		memcpy(id, svc->last_event_id, sizeof(id));
		pthread_mutex_unlock(&svc->lock);
		sbuf_free(&text);
		ctl_begin(resp, 202, &jw);
		jw_obj_begin(&jw);
		jw_kstr(&jw, "event_id", id);
		jw_kstr(&jw, "service", svc->name);
		jw_obj_end(&jw);
	}
	json_decref(body);
}

/* ctl_dump: GET /_sim/{kind}?organization_id= : a service's state */
static bool
ctl_dump(const SimRequest *req, const char *kind, SimResponse *resp)
{
	const char *org = sim_req_query(req, "organization_id");
	SimJw		jw;

	for (int i = 0; i < SIM_NSERVICES; i++)
	{
		SimService *svc = &sim_services[i];
		bool		known;
		SimBuf		tmp;
		SimJw		tj;

		sbuf_init(&tmp);
		jw_init(&tj, &tmp);
		pthread_mutex_lock(&svc->lock);
		known = svc->ops->dump(svc, kind, org, &tj);
		pthread_mutex_unlock(&svc->lock);
		if (known)
		{
			if (ctl_method(req, resp, "GET"))
			{
				ctl_begin(resp, 200, &jw);
				jw_obj_begin(&jw);
				jw_kstr(&jw, "service", svc->name);
				jw_kstr(&jw, "organization_id", org);
				jw_key(&jw, kind);
				jw_raw(&jw, tmp.data);
				jw_obj_end(&jw);
			}
			sbuf_free(&tmp);
			return true;
		}
		sbuf_free(&tmp);
	}
	return false;
}

/* ctl_zero_stats: zero every counter of svc, one atomic store each */
static void
ctl_zero_stats(SimService *svc)
{
	uint64_t   *c = (uint64_t *) &svc->stats;

	for (size_t i = 0; i < sizeof(SimStats) / sizeof(uint64_t); i++)
		__atomic_store_n(&c[i], 0, __ATOMIC_RELAXED);
}

/*
 * sim_reset_all
 *		Back to a fresh start: seeded state, no idempotency keys, zero
 *		counters, the start-up faults and webhook settings, empty queues and
 *		PRNGs re-seeded, so a run after a reset repeats a run after start.
 */
void
sim_reset_all(void)
{
	sim_webhook_settings_set(&sim_webhook_start_settings);
	for (int i = 0; i < SIM_NSERVICES; i++)
	{
		SimService *svc = &sim_services[i];

		pthread_mutex_lock(&svc->faults_lock);
		svc->faults = svc->start_faults;
		svc->faults.flap_started_ms = sim_mono_ms();
		sim_rng_seed(&svc->fault_rng, sim_config.seed * 3 + (uint64_t) i);
		pthread_mutex_unlock(&svc->faults_lock);
		sim_server_reconcile(svc);

		pthread_mutex_lock(&svc->lock);
		svc->ops->reset(svc, sim_seed_get());
		sim_idem_clear(&svc->idem);
		sim_idem_init(&svc->idem);
		sim_rng_seed(&svc->id_rng, sim_config.seed * 7 + (uint64_t) i);
		pthread_mutex_unlock(&svc->lock);
		sim_delivery_clear(svc);
		ctl_zero_stats(svc);
	}
	sim_log("reset to the start-up state");
}

/* sim_control_handle: route a control request */
void
sim_control_handle(const SimRequest *req, SimResponse *resp)
{
	const char *p = req->path;
	SimJw		jw;

	if (strcmp(p, "/_sim/health") == 0)
	{
		if (ctl_method(req, resp, "GET"))
			ctl_health(resp);
	}
	else if (strcmp(p, "/_sim/stats") == 0)
	{
		if (ctl_method(req, resp, "GET"))
			ctl_stats(NULL, resp);
	}
	else if (strncmp(p, "/_sim/stats/", 12) == 0)
	{
		if (ctl_method(req, resp, "GET"))
			ctl_stats(p + 12, resp);
	}
	else if (strcmp(p, "/_sim/reset") == 0)
	{
		if (ctl_method(req, resp, "POST"))
		{
			sim_reset_all();
			ctl_begin(resp, 200, &jw);
			jw_obj_begin(&jw);
			jw_kstr(&jw, "status", "reset");
			jw_obj_end(&jw);
		}
	}
	else if (strcmp(p, "/_sim/faults") == 0)
		ctl_faults(req, NULL, resp);
	else if (strncmp(p, "/_sim/faults/", 13) == 0)
		ctl_faults(req, p + 13, resp);
	else if (strcmp(p, "/_sim/webhooks") == 0)
		ctl_webhooks(req, resp);
	else if (strncmp(p, "/_sim/events/", 13) == 0)
		ctl_event(req, p + 13, resp);
	else if (strcmp(p, "/_sim/oidc") == 0 || strncmp(p, "/_sim/oidc/", 11) == 0)
		sim_idp_control(req, p + 10, resp);
	else if (strncmp(p, "/_sim/", 6) == 0 && strchr(p + 6, '/') == NULL && p[6] != '\0' &&
			 ctl_dump(req, p + 6, resp))
		;
	else
		sim_resp_error(resp, 404, "NOT_FOUND", "no such control endpoint: %s %s", req->method, p);
}
