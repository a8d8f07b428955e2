/*-------------------------------------------------------------------------
 *
 * services_comm.c
 *	  The simulated communication service (base /v1): outbound messages.
 *
 *	  POST /v1/messages		-> 202 {message_id}
 *	  GET  /v1/messages/{id}
 *
 * Accepting a message emits message.sent, then message.delivered, or
 * message.bounced when the recipient's domain is nonexistent.com or ends
 * in .invalid (or "simulate" asks for "bounced").  "simulate" may also ask
 * for "opened" and "clicked", which follow a delivery.  Event data follow
 * webhook_events.json.
 *
 * Callers hold svc->lock.
 *
 *-------------------------------------------------------------------------
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct SimMessage
{
	char	   *message_id;
	char	   *org;
	char	   *recipient;
	char	   *template_name;
	char	   *subject;
	char	   *body;			/* the text sent, as the recipient reads it */
	char	   *status;			/* delivered, bounced */
	char	   *esp_message_id;
	int64_t		created_ms;
	bool		opened;
	bool		clicked;
} SimMessage;

typedef struct CommState
{
	SimMessage **messages;
	size_t		count;
	size_t		cap;
	SimMap		by_id;
} CommState;

/* comm_write_message: a message as GET shows it */
static void
comm_write_message(SimJw *jw, const SimMessage *m)
{
	char		ts[40];

	sim_format_time(m->created_ms, ts, sizeof(ts));
	jw_obj_begin(jw);
	jw_kstr(jw, "message_id", m->message_id);
	jw_kstr(jw, "organization_id", m->org);
	jw_kstr(jw, "recipient", m->recipient);
	jw_kstr(jw, "template", m->template_name);
	jw_kstr(jw, "subject", m->subject);
	jw_kstr(jw, "body", m->body);
	jw_kstr(jw, "status", m->status);
	jw_kstr(jw, "esp_message_id", m->esp_message_id);
	jw_kbool(jw, "opened", m->opened);
	jw_kbool(jw, "clicked", m->clicked);
	jw_kstr(jw, "created_at", ts);
	jw_obj_end(jw);
}

/* comm_bounces: whether a recipient's domain is one that does not exist */
static bool
comm_bounces(const char *recipient)
{
	const char *at = strrchr(recipient, '@');
	size_t		n;

	if (at == NULL)
		return true;
	n = strlen(at + 1);
	return strcmp(at + 1, "nonexistent.com") == 0 ||
		(n >= 8 && strcmp(at + 1 + n - 8, ".invalid") == 0);
}

/* comm_event: emit one message.* event */
static void
comm_event(SimService *svc, const SimMessage *m, const char *type, const char *corr)
{
	SimBuf		data;
	SimJw		jw;
	char		ts[40];

	sbuf_init(&data);
	jw_init(&jw, &data);
	jw_obj_begin(&jw);
	jw_kstr(&jw, "message_id", m->message_id);
	jw_kstr(&jw, "recipient", m->recipient);
	jw_kstr(&jw, "template", m->template_name);
	if (strcmp(type, "message.bounced") == 0)
	{
		jw_kstr(&jw, "bounce_reason", "recipient_not_found");
		jw_kstr(&jw, "bounce_type", "permanent");
		jw_kstr(&jw, "esp_bounce_code", "550");
	}
	else
	{
		jw_kstr(&jw, "status", type + strlen("message."));
		jw_kstr(&jw, "esp_message_id", m->esp_message_id);
		if (strcmp(type, "message.delivered") == 0)
			jw_kint(&jw, "delivery_time_ms", 200 + (int64_t) sim_rng_below(&svc->id_rng, 1800));
		if (strcmp(type, "message.clicked") == 0)
			jw_kstr(&jw, "url", "https://example.com/welcome");
		if (strcmp(type, "message.opened") == 0 || strcmp(type, "message.clicked") == 0)
		{
			sim_format_time(sim_now_ms(), ts, sizeof(ts));
			jw_kstr(&jw, strcmp(type, "message.opened") == 0 ? "opened_at" : "clicked_at", ts);
		}
	}
	jw_obj_end(&jw);
	sim_emit_event(svc, type, m->org, data.data, corr);
	sbuf_free(&data);
}

/* comm_opt_str: an optional string field of at most max characters */
static bool
comm_opt_str(const json_t *body, const char *key, size_t max, const char **out, SimResponse *resp)
{
	const json_t *v = json_object_get(body, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_string(v) || strlen(json_string_value(v)) > max)
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "%s must be a string of at most %zu characters",
					   key, max);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

/* comm_send: POST /v1/messages */
static void
comm_send(SimService *svc, const SimRequest *req, SimResponse *resp)
{
	static const char *const fields[] = {"organization_id", "recipient", "template", "subject",
	"body", "simulate", NULL};
	CommState  *st = svc->state;
	json_t	   *body = sim_req_json_object(req, resp);
	const char *org,
			   *recipient,
			   *tmpl,
			   *subject,
			   *text;
	const json_t *sim_v;
	bool		want_open = false,
				want_click = false,
				want_bounce = false;
	SimMessage *m;
	SimJw		jw;
	char		id[48];

	if (body == NULL)
		return;
	if (!sim_check_fields(body, fields, resp) ||
		!comm_opt_str(body, "organization_id", 64, &org, resp) ||
		!comm_opt_str(body, "recipient", 254, &recipient, resp) ||
		!comm_opt_str(body, "template", 128, &tmpl, resp) ||
		!comm_opt_str(body, "subject", 998, &subject, resp) ||
		!comm_opt_str(body, "body", 100000, &text, resp))
		goto done;
	if (org == NULL || org[0] == '\0')
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "organization_id is required");
		goto done;
	}
	if (recipient == NULL || strchr(recipient, '@') == NULL)
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "recipient is required and must be an email address");
		goto done;
	}
	sim_v = json_object_get(body, "simulate");
	if (sim_v)
	{
		if (!json_is_array(sim_v))
		{
			sim_resp_error(resp, 400, "VALIDATION_ERROR",
						   "simulate must be an array of \"opened\", \"clicked\", \"bounced\"");
			goto done;
		}
		for (size_t i = 0; i < json_array_size(sim_v); i++)
		{
			const json_t *e = json_array_get(sim_v, i);

			if (json_is_string(e) && strcmp(json_string_value(e), "opened") == 0)
				want_open = true;
			else if (json_is_string(e) && strcmp(json_string_value(e), "clicked") == 0)
				want_click = true;
			else if (json_is_string(e) && strcmp(json_string_value(e), "bounced") == 0)
				want_bounce = true;
			else
			{
				sim_resp_error(resp, 400, "VALIDATION_ERROR",
							   "simulate must be an array of \"opened\", \"clicked\", \"bounced\"");
				goto done;
			}
		}
	}

	sim_new_id(svc, "msg_", id, sizeof(id));
	m = calloc(1, sizeof(SimMessage));
	if (m == NULL)
		abort();
	m->message_id = sim_strdup(id);
	m->org = sim_strdup(org);
	m->recipient = sim_strdup(recipient);
	m->template_name = sim_strdup(tmpl ? tmpl : "custom");
	m->subject = sim_strdup(subject);
	m->body = sim_strdup(text);
	sim_new_id(svc, "esp_", id, sizeof(id));
	m->esp_message_id = sim_strdup(id);
	m->created_ms = sim_now_ms();
	want_bounce = want_bounce || comm_bounces(recipient);
	m->status = sim_strdup(want_bounce ? "bounced" : "delivered");
	m->opened = !want_bounce && (want_open || want_click);
	m->clicked = !want_bounce && want_click;
	if (st->count == st->cap)
	{
		st->cap = st->cap ? st->cap * 2 : 64;
		st->messages = sim_realloc(st->messages, st->cap * sizeof(SimMessage *));
	}
	st->messages[st->count++] = m;
	sim_map_put(&st->by_id, m->message_id, m);
	SIM_STAT_ADD(svc, effects, 1);

	comm_event(svc, m, "message.sent", req->correlation_id);
	comm_event(svc, m, want_bounce ? "message.bounced" : "message.delivered", req->correlation_id);
	if (m->opened)
		comm_event(svc, m, "message.opened", req->correlation_id);
	if (m->clicked)
		comm_event(svc, m, "message.clicked", req->correlation_id);

	sim_resp_begin_success(resp, 202, &jw);
	jw_obj_begin(&jw);
	jw_kstr(&jw, "message_id", m->message_id);
	jw_kstr(&jw, "status", "queued");
	jw_obj_end(&jw);
	sim_resp_end_success(resp, &jw);
done:
	json_decref(body);
}

/* comm_handle: route a request of the communication service */
static void
comm_handle(SimService *svc, const SimRequest *req, SimResponse *resp)
{
	CommState  *st = svc->state;
	const char *p = req->path;

	if (strcmp(p, "/v1/messages") == 0)
	{
		if (strcmp(req->method, "POST") == 0)
			comm_send(svc, req, resp);
		else
		{
			sim_resp_error(resp, 405, "METHOD_NOT_ALLOWED", "%s is not allowed on %s", req->method, p);
			snprintf(resp->allow, sizeof(resp->allow), "POST");
		}
		return;
	}
	if (strncmp(p, "/v1/messages/", 13) == 0 && p[13] != '\0' && strchr(p + 13, '/') == NULL)
	{
		SimMessage *m = sim_map_get(&st->by_id, p + 13);
		SimJw		jw;

		if (strcmp(req->method, "GET") != 0)
		{
			sim_resp_error(resp, 405, "METHOD_NOT_ALLOWED", "%s is not allowed on %s", req->method, p);
			snprintf(resp->allow, sizeof(resp->allow), "GET");
		}
		else if (m == NULL)
			sim_resp_error(resp, 404, "MESSAGE_NOT_FOUND", "Message with ID %s not found", p + 13);
		else
		{
			sim_resp_begin_success(resp, 200, &jw);
			comm_write_message(&jw, m);
			sim_resp_end_success(resp, &jw);
		}
		return;
	}
	sim_resp_error(resp, 404, "NOT_FOUND", "no such endpoint: %s %s", req->method, p);
}

/* comm_free_state: free every message */
static void
comm_free_state(SimService *svc)
{
	CommState  *st = svc->state;

	if (st == NULL)
		return;
	for (size_t i = 0; i < st->count; i++)
	{
		SimMessage *m = st->messages[i];

		free(m->message_id);
		free(m->org);
		free(m->recipient);
		free(m->template_name);
		free(m->subject);
		free(m->body);
		free(m->status);
		free(m->esp_message_id);
		free(m);
	}
	free(st->messages);
	sim_map_free(&st->by_id, NULL);
	free(st);
	svc->state = NULL;
}

/* comm_reset: no messages at a fresh start (the seed has none) */
static void
comm_reset(SimService *svc, const SimSeed *seed)
{
	CommState  *st;

	(void) seed;
	comm_free_state(svc);
	st = calloc(1, sizeof(CommState));
	if (st == NULL)
		abort();
	sim_map_init(&st->by_id);
	svc->state = st;
}

/* comm_dump: GET /_sim/messages */
static bool
comm_dump(SimService *svc, const char *kind, const char *org, SimJw *jw)
{
	CommState  *st = svc->state;

	if (strcmp(kind, "messages") != 0)
		return false;
	jw_arr_begin(jw);
	for (size_t i = 0; i < st->count; i++)
		if (org == NULL || strcmp(st->messages[i]->org, org) == 0)
			comm_write_message(jw, st->messages[i]);
	jw_arr_end(jw);
	return true;
}

const SimServiceOps sim_comm_ops = {
	.reset = comm_reset,
	.free_state = comm_free_state,
	.handle = comm_handle,
	.dump = comm_dump,
};
