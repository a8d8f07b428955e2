/*-------------------------------------------------------------------------
 *
 * server.c
 *	  The HTTP side of saas-sim: libmicrohttpd daemons, request bodies,
 *	  injected faults, idempotent replays, the answer and the log line.
 *
 * Every daemon runs a thread per connection, so a request that sleeps for an
 * injected latency or hangs holds only its own thread.  "Down" is real: the
 * service's daemon is stopped, its listening socket closed, and a new one
 * is started on the same port when the service comes back.  Before a
 * daemon stops, its epoch is bumped so that sleeping and hanging handlers
 * notice and let go of their threads.
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include "sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

typedef struct ConnCtx
{
	SimService *svc;			/* NULL on the control port */
	SimBuf		body;
	bool		too_large;
	bool		answered;		/* an early 413 was queued */
	size_t		discarded;		/* bytes of an oversized body dropped */
	int64_t		start_us;
} ConnCtx;

static struct MHD_Daemon *control_daemon;
static uint64_t request_counter;
static int64_t last_bind_error_ms[SIM_NSERVICES];

/* ---- request and response helpers used by the handlers ---- */

/* sim_req_query: a decoded query-string argument, or NULL */
const char *
sim_req_query(const SimRequest *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* sim_resp_error: the error shape of external_api_responses.json */
void
sim_resp_error(SimResponse *resp, int status, const char *code, const char *fmt,...)
{
	SimBuf		msg;
	SimJw		jw;
	va_list		ap;
	char		ts[40];

	sbuf_init(&msg);
	va_start(ap, fmt);
	sbuf_vprintf(&msg, fmt, ap);
	va_end(ap);
	sim_format_time(sim_now_ms(), ts, sizeof(ts));

	resp->status = status;
	sbuf_reset(&resp->body);
	jw_init(&jw, &resp->body);
	jw_obj_begin(&jw);
	jw_kstr(&jw, "status", "error");
	jw_kstr(&jw, "error_code", code);
	jw_kstr(&jw, "message", msg.data ? msg.data : "");
	jw_kstr(&jw, "timestamp", ts);
	jw_obj_end(&jw);
	sbuf_free(&msg);
}

/* sim_resp_begin_success: start {"status":"success","data": ; the caller writes the data */
void
sim_resp_begin_success(SimResponse *resp, int status, SimJw *jw)
{
	resp->status = status;
	sbuf_reset(&resp->body);
	jw_init(jw, &resp->body);
	jw_obj_begin(jw);
	jw_kstr(jw, "status", "success");
	jw_key(jw, "data");
}

/* sim_resp_end_success: close what sim_resp_begin_success opened */
void
sim_resp_end_success(SimResponse *resp, SimJw *jw)
{
	(void) resp;
	jw_obj_end(jw);
}

/* sim_req_json_object: the body as a JSON object, or NULL with a 400 in resp */
json_t *
sim_req_json_object(const SimRequest *req, SimResponse *resp)
{
	char		err[160];
	json_t	   *v;

	if (req->body_len == 0)
	{
		sim_resp_error(resp, 400, "INVALID_JSON", "a JSON object body is required");
		return NULL;
	}
	v = sim_json_parse(req->body, req->body_len, err, sizeof(err));
	if (v == NULL)
	{
		sim_resp_error(resp, 400, "INVALID_JSON", "the body is not valid JSON: %s", err);
		return NULL;
	}
	if (!json_is_object(v))
	{
		sim_resp_error(resp, 400, "INVALID_JSON", "the body must be a JSON object, not %s",
					   sim_json_type_name(v));
		json_decref(v);
		return NULL;
	}
	return v;
}

/* sim_check_fields: refuse fields outside the NULL-terminated allowed list */
bool
sim_check_fields(json_t *obj, const char *const *allowed, SimResponse *resp)
{
	const char *key;
	json_t	   *value;

	json_object_foreach(obj, key, value)
	{
		bool		known = false;

		for (const char *const *a = allowed; *a; a++)
			if (strcmp(*a, key) == 0)
				known = true;
		if (!known)
		{
			sim_resp_error(resp, 400, "VALIDATION_ERROR", "unknown field \"%s\"", key);
			return false;
		}
	}
	return true;
}

/* ---- the answer and the log ---- */

/* srv_request_id: the client's X-Request-Id when sane, else a fresh one */
static void
srv_request_id(struct MHD_Connection *conn, char *out, size_t outlen)
{
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");

	if (h && strlen(h) > 0 && strlen(h) < 64 && strspn(h,
													   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:") == strlen(h))
	{
		snprintf(out, outlen, "%s", h);
		return;
	}
	snprintf(out, outlen, "req_%08llx",
			 (unsigned long long) __atomic_add_fetch(&request_counter, 1, __ATOMIC_RELAXED));
}

/* srv_log_request: the one line per request */
static void
srv_log_request(struct MHD_Connection *conn, const ConnCtx *ctx, const char *method,
				const char *url, int status, const char *note)
{
	const union MHD_ConnectionInfo *ci;
	char		addr[INET6_ADDRSTRLEN] = "?";
	double		ms = (sim_mono_us() - ctx->start_us) / 1000.0;

	SimBuf		path;

	if (sim_config.quiet)
		return;
	/* a decoded path may hold anything: keep the line one line */
	sbuf_init(&path);
	for (const char *p = url; *p && path.len < 300; p++)
		sbuf_putc(&path, ((unsigned char) *p < 0x20 || *p == 0x7f) ? '?' : *p);
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *) ci->client_addr)->sin_addr,
				  addr, sizeof(addr));
	sim_log("%s %s %s %s %d %.1fms%s%s", ctx->svc ? ctx->svc->name : "control", addr,
			method, path.data ? path.data : "", status, ms, note ? " " : "", note ? note : "");
	sbuf_free(&path);
}

/* srv_send: queue resp on the connection */
static enum MHD_Result
srv_send(struct MHD_Connection *conn, SimResponse *resp, const char *request_id)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(resp->body.len, resp->body.data ? resp->body.data : (char *) "",
										MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	if (resp->body.len > 0)
		MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "X-Request-Id", request_id);
	if (resp->location[0])
		MHD_add_response_header(r, "Location", resp->location);
	if (resp->www_authenticate[0])
		MHD_add_response_header(r, "WWW-Authenticate", resp->www_authenticate);
	if (resp->no_store)
	{
		MHD_add_response_header(r, "Cache-Control", "no-store");
		MHD_add_response_header(r, "Pragma", "no-cache");
	}
	if (resp->retry_after[0])
		MHD_add_response_header(r, "Retry-After", resp->retry_after);
	if (resp->allow[0])
		MHD_add_response_header(r, "Allow", resp->allow);
	if (resp->replayed)
		MHD_add_response_header(r, "Idempotent-Replayed", "true");
	ret = MHD_queue_response(conn, (unsigned) resp->status, r);
	MHD_destroy_response(r);
	return ret;
}

/* srv_count_status: the per-service response counters */
static void
srv_count_status(SimService *svc, int status)
{
	if (status >= 200 && status < 300)
		SIM_STAT_ADD(svc, responses_2xx, 1);
	else if (status >= 400 && status < 500)
		SIM_STAT_ADD(svc, responses_4xx, 1);
	else if (status >= 500)
		SIM_STAT_ADD(svc, responses_5xx, 1);
}

/* ---- faults in the request path ---- */

/* srv_epoch_changed: the daemon serving this request is closing */
static bool
srv_epoch_changed(SimService *svc, unsigned epoch)
{
	return sim_config.stopping || __atomic_load_n(&svc->epoch, __ATOMIC_ACQUIRE) != epoch;
}

/* srv_sleep: sleep ms in slices; false if the daemon closes meanwhile */
static bool
srv_sleep(SimService *svc, unsigned epoch, int ms)
{
	int64_t		deadline = sim_mono_ms() + ms;

	for (;;)
	{
		int64_t		left = deadline - sim_mono_ms();

		if (srv_epoch_changed(svc, epoch))
			return false;
		if (left <= 0)
			return true;
		sim_sleep_ms(left < 20 ? (int) left : 20);
	}
}

typedef enum HangEnd
{
	HANG_CLIENT_GONE,			/* or the daemon closed: drop the connection */
	HANG_MODE_CHANGED,			/* answer normally */
	HANG_TIMED_OUT				/* hang_max_ms passed */
} HangEnd;

/*
 * srv_hang
 *		Answer nothing until the client gives up (EOF on its socket), the mode
 *		changes, the daemon closes or hang_max_ms passes.  lost: the hang of a
 *		lost response (after the effect), which no change of mode ends.
 */
static HangEnd
srv_hang(struct MHD_Connection *conn, SimService *svc, unsigned epoch, bool lost)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	int			fd = ci ? ci->connect_fd : -1;
	SimFaults	f;
	int64_t		deadline;

	sim_faults_get(svc, &f);
	deadline = sim_mono_ms() + f.hang_max_ms;
	for (;;)
	{
		if (srv_epoch_changed(svc, epoch))
			return HANG_CLIENT_GONE;
		sim_faults_get(svc, &f);
		if (!lost && f.mode != SIM_MODE_HANG)
			return HANG_MODE_CHANGED;
		if (sim_mono_ms() >= deadline)
			return HANG_TIMED_OUT;
		if (fd >= 0)
		{
			struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};

			if (poll(&p, 1, 50) > 0)
			{
				char		c;

				if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
					return HANG_CLIENT_GONE;
				if (recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
					return HANG_CLIENT_GONE;
				sim_sleep_ms(50);	/* pipelined bytes: do not spin */
			}
		}
		else
			sim_sleep_ms(50);
	}
}

/* srv_inject_error: the answer of an injected fault */
static void
srv_inject_error(SimResponse *resp, const SimFaultDecision *d)
{
	const char *code = "SERVICE_UNAVAILABLE";

	if (d->error_status == 429)
		code = "RATE_LIMITED";
	else if (d->error_status == 500)
		code = "INTERNAL_ERROR";
	else if (d->error_status == 504)
		code = "GATEWAY_TIMEOUT";
	else if (d->error_status < 500)
		code = "REQUEST_FAILED";
	sim_resp_error(resp, d->error_status, code, "injected fault (saas-sim)");
	if (d->retry_after > 0)
		snprintf(resp->retry_after, sizeof(resp->retry_after), "%d", d->retry_after);
	resp->note = d->lose_response ? "fault:lost-response" : "fault:error";
}

/*
 * srv_apply
 *		Run the handler under the service lock, with the Idempotency-Key
 *		rules: a known key with the same request replays the stored answer,
 *		with another request it is a 422, and a new key stores this answer.
 */
static void
srv_apply(SimService *svc, const SimRequest *req, SimResponse *resp)
{
	bool		mutating = strcmp(req->method, "POST") == 0 ||
		strcmp(req->method, "PUT") == 0 || strcmp(req->method, "DELETE") == 0 ||
		strcmp(req->method, "PATCH") == 0;
	char		fp[65];

	if (!mutating || req->idempotency_key == NULL)
	{
		pthread_mutex_lock(&svc->lock);
		svc->ops->handle(svc, req, resp);
		pthread_mutex_unlock(&svc->lock);
		return;
	}
	if (!sim_idem_key_valid(req->idempotency_key))
	{
		sim_resp_error(resp, 400, "INVALID_IDEMPOTENCY_KEY",
					   "Idempotency-Key must be 1 to 255 printable ASCII characters");
		return;
	}
	sim_idem_fingerprint(req, fp);
	pthread_mutex_lock(&svc->lock);
	{
		const SimIdemRecord *rec = sim_idem_get(&svc->idem, req->idempotency_key);

		if (rec && strcmp(rec->fingerprint, fp) == 0)
		{
			resp->status = rec->status;
			sbuf_reset(&resp->body);
			sbuf_append(&resp->body, rec->body, rec->body_len);
			resp->replayed = true;
			resp->note = "idempotent-replay";
			SIM_STAT_ADD(svc, idempotent_replays, 1);
		}
		else if (rec)
		{
			sim_resp_error(resp, 422, "IDEMPOTENCY_KEY_REUSED",
						   "this Idempotency-Key was used with a different request");
			SIM_STAT_ADD(svc, idempotency_conflicts, 1);
		}
		else
		{
			svc->ops->handle(svc, req, resp);
			sim_idem_put(&svc->idem, req->idempotency_key, fp, resp->status,
						 resp->body.data, resp->body.len);
		}
	}
	pthread_mutex_unlock(&svc->lock);
}

/*
 * srv_service_request
 *		A complete request to a simulated service: faults first (as a real
 *		outage would strike before the service does anything), then the
 *		effect, then a lost response if one was drawn: replaced by the
 *		injected error, dropped (the connection closed with no answer) or
 *		hung (no answer until the client gives up), as lost_response says.
 */
static enum MHD_Result
srv_service_request(struct MHD_Connection *conn, ConnCtx *ctx, SimRequest *req,
					SimResponse *resp)
{
	SimService *svc = ctx->svc;
	unsigned	epoch = __atomic_load_n(&svc->epoch, __ATOMIC_ACQUIRE);
	SimFaultDecision d;

	SIM_STAT_ADD(svc, requests, 1);
	sim_faults_decide(svc, &d);
	if (d.hang)
	{
		HangEnd		end = srv_hang(conn, svc, epoch, false);

		if (end == HANG_CLIENT_GONE)
		{
			srv_log_request(conn, ctx, req->method, req->path, 0, "fault:hang (client gave up)");
			return MHD_NO;
		}
		if (end == HANG_TIMED_OUT)
		{
			sim_resp_error(resp, 504, "GATEWAY_TIMEOUT", "injected hang ended after hang_max_ms");
			resp->note = "fault:hang (timed out)";
			return MHD_YES;
		}
	}
	if (d.delay_ms > 0 && !srv_sleep(svc, epoch, d.delay_ms))
	{
		srv_log_request(conn, ctx, req->method, req->path, 0, "closed while delayed");
		return MHD_NO;
	}
	if (d.error_status && !d.lose_response)
	{
		srv_inject_error(resp, &d);
		return MHD_YES;
	}
	srv_apply(svc, req, resp);
	if (d.lose_response && d.lost_how == SIM_LOST_DROP)
	{
		srv_log_request(conn, ctx, req->method, req->path, 0, "fault:lost-response (dropped)");
		return MHD_NO;
	}
	if (d.lose_response && d.lost_how == SIM_LOST_HANG &&
		srv_hang(conn, svc, epoch, true) == HANG_CLIENT_GONE)
	{
		srv_log_request(conn, ctx, req->method, req->path, 0, "fault:lost-response (client gave up)");
		return MHD_NO;
	}
	if (d.lose_response)
		srv_inject_error(resp, &d);		/* error, or a lost hang that timed out */
	return MHD_YES;
}

/* srv_too_large: the 413 answer */
static void
srv_too_large(SimResponse *resp)
{
	sim_resp_error(resp, 413, "PAYLOAD_TOO_LARGE", "the body is larger than %zu bytes",
				   sim_config.max_body);
}

/*
 * srv_access
 *		libmicrohttpd's access handler, called once with the headers, then
 *		with each piece of body, then once more when the body is complete.
 */
static enum MHD_Result
srv_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
		   const char *version, const char *upload_data, size_t *upload_data_size,
		   void **con_cls)
{
	ConnCtx    *ctx = *con_cls;
	SimRequest	req;
	SimResponse resp;
	char		request_id[72];
	enum MHD_Result ret;

	(void) version;
	if (ctx == NULL)
	{
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");

		ctx = calloc(1, sizeof(ConnCtx));
		if (ctx == NULL)
			return MHD_NO;
		ctx->svc = cls;
		ctx->start_us = sim_mono_us();
		sbuf_init(&ctx->body);
		*con_cls = ctx;
		/* refuse an announced oversized body before reading any of it */
		if (cl && (strlen(cl) > 15 || strtoull(cl, NULL, 10) > sim_config.max_body))
			ctx->too_large = true;
		else
			return MHD_YES;
	}
	if (*upload_data_size > 0)
	{
		/*
		 * libmicrohttpd takes no answer in the middle of a body, so the rest
		 * of an oversized (chunked) body is read and dropped, up to a bound,
		 * and the 413 goes out at its end.
		 */
		if (!ctx->too_large && ctx->body.len + *upload_data_size > sim_config.max_body)
		{
			ctx->too_large = true;
			sbuf_free(&ctx->body);
		}
		if (ctx->too_large)
		{
			ctx->discarded += *upload_data_size;
			*upload_data_size = 0;
			return ctx->discarded > 16 * sim_config.max_body ? MHD_NO : MHD_YES;
		}
		sbuf_append(&ctx->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (ctx->answered)
		return MHD_YES;

	memset(&resp, 0, sizeof(resp));
	sbuf_init(&resp.body);
	srv_request_id(conn, request_id, sizeof(request_id));
	memset(&req, 0, sizeof(req));
	req.conn = conn;
	req.method = method;
	req.path = url;
	req.body = ctx->body.data;
	req.body_len = ctx->body.len;
	req.request_id = request_id;
	req.idempotency_key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
	req.correlation_id = req.idempotency_key ? req.idempotency_key : request_id;

	if (ctx->too_large)
	{
		ctx->answered = true;
		srv_too_large(&resp);
		if (ctx->svc)
		{
			SIM_STAT_ADD(ctx->svc, requests, 1);
			srv_count_status(ctx->svc, resp.status);
		}
		ret = MHD_YES;
	}
	else if (ctx->svc == NULL)
	{
		sim_control_handle(&req, &resp);
		ret = MHD_YES;
	}
	else
	{
		ret = srv_service_request(conn, ctx, &req, &resp);
		if (ret == MHD_YES)
			srv_count_status(ctx->svc, resp.status);
	}
	if (ret == MHD_YES)
	{
		ret = srv_send(conn, &resp, request_id);
		srv_log_request(conn, ctx, method, url, resp.status, resp.note);
	}
	sbuf_free(&resp.body);
	return ret;
}

/* srv_completed: free the per-request context */
static void
srv_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			  enum MHD_RequestTerminationCode toe)
{
	ConnCtx    *ctx = *con_cls;

	(void) cls;
	(void) conn;
	(void) toe;
	if (ctx == NULL)
		return;
	sbuf_free(&ctx->body);
	free(ctx);
	*con_cls = NULL;
}

/* srv_mhd_log: libmicrohttpd's own complaints, into our log */
static void
srv_mhd_log(void *cls, const char *fmt, va_list ap)
{
	SimBuf		b;

	(void) cls;
	sbuf_init(&b);
	sbuf_vprintf(&b, fmt, ap);
	while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
		b.data[--b.len] = '\0';
	if (b.data)
		sim_log("libmicrohttpd: %s", b.data);
	sbuf_free(&b);
}

/* srv_start: a daemon on bind_address:port; svc NULL means the control port */
static struct MHD_Daemon *
srv_start(int port, SimService *svc)
{
	struct sockaddr_in addr;

	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t) port);
	if (inet_pton(AF_INET, sim_config.bind_address, &addr.sin_addr) != 1)
	{
		sim_log("bad bind address \"%s\" (an IPv4 address is expected)", sim_config.bind_address);
		return NULL;
	}
	/*
	 * No MHD_OPTION_LISTENING_ADDRESS_REUSE: its "1" means SO_REUSEPORT, which
	 * would let two sims share a port and split its traffic.  The default,
	 * SO_REUSEADDR, is what reopening after "down" needs.
	 */
	return MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
							MHD_USE_POLL | MHD_USE_ERROR_LOG,
							(uint16_t) port, NULL, NULL, srv_access, svc,
							MHD_OPTION_EXTERNAL_LOGGER, srv_mhd_log, NULL,
							MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
							MHD_OPTION_NOTIFY_COMPLETED, srv_completed, NULL,
							MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 120,
							MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 2000,
							MHD_OPTION_THREAD_STACK_SIZE, (size_t) (1024 * 1024),
							MHD_OPTION_END);
}

/* srv_bound_port: the port a daemon got (for --*-port 0) */
static int
srv_bound_port(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);

	return di ? di->port : 0;
}

/* sim_server_start_control: the control port; false if it cannot be bound */
bool
sim_server_start_control(void)
{
	control_daemon = srv_start(sim_config.control_port, NULL);
	if (control_daemon == NULL)
	{
		sim_log("cannot listen on %s:%d (control): %s", sim_config.bind_address,
				sim_config.control_port, strerror(errno));
		return false;
	}
	sim_config.control_port = srv_bound_port(control_daemon);
	return true;
}

/* sim_server_stop_control: close the control port */
void
sim_server_stop_control(void)
{
	if (control_daemon)
		MHD_stop_daemon(control_daemon);
	control_daemon = NULL;
}

/* srv_close: stop a service's daemon; caller holds daemon_lock */
static void
srv_close(SimService *svc)
{
	__atomic_add_fetch(&svc->epoch, 1, __ATOMIC_RELEASE);
	MHD_stop_daemon(svc->daemon);
	svc->daemon = NULL;
}

/*
 * sim_server_reconcile
 *		Open or close the service's port to match its fault mode now.  Called
 *		when a profile changes and by the timer that drives "flap".  False
 *		only when the port should be open and cannot be bound.
 */
bool
sim_server_reconcile(SimService *svc)
{
	SimFaults	f;
	bool		want;
	bool		ok = true;

	pthread_mutex_lock(&svc->daemon_lock);
	sim_faults_get(svc, &f);
	want = !sim_config.stopping && sim_faults_should_listen(&f, sim_mono_ms());
	if (want && svc->daemon == NULL)
	{
		svc->daemon = srv_start(svc->port, svc);
		if (svc->daemon == NULL)
		{
			int64_t		now = sim_mono_ms();

			if (now - last_bind_error_ms[svc->id] > 5000)
				sim_log("cannot listen on %s:%d (%s): %s", sim_config.bind_address,
						svc->port, svc->name, strerror(errno));
			last_bind_error_ms[svc->id] = now;
			ok = false;
		}
		else
			svc->port = srv_bound_port(svc->daemon);
	}
	else if (!want && svc->daemon != NULL)
		srv_close(svc);
	pthread_mutex_unlock(&svc->daemon_lock);
	return ok;
}

/* sim_server_close_service: close the port for good (shutdown) */
void
sim_server_close_service(SimService *svc)
{
	pthread_mutex_lock(&svc->daemon_lock);
	if (svc->daemon)
		srv_close(svc);
	pthread_mutex_unlock(&svc->daemon_lock);
}

/* sim_server_is_listening: whether the service's port is open now */
bool
sim_server_is_listening(SimService *svc)
{
	bool		r;

	pthread_mutex_lock(&svc->daemon_lock);
	r = svc->daemon != NULL;
	pthread_mutex_unlock(&svc->daemon_lock);
	return r;
}
