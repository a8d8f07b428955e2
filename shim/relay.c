/*-------------------------------------------------------------------------
 *
 * relay.c
 *	  The HTTP side: libmicrohttpd callbacks that turn a request into a
 *	  saas.http() call and its row into the response.
 *
 * The daemon runs one thread per HTTP connection (main.c), so a handler may
 * block on the database: a slow call holds only its own connection.
 * libmicrohttpd calls the handler several times per request:
 *	1. once the headers are in: the relay decides everything it can decide
 *	   without the body (method, target, declared size, content type) and
 *	   answers at once when the request cannot go on, before the body is
 *	   read; /metrics, /openapi.json and the pages (/admin/, /docs,
 *	   static.c) are answered here too;
 *	2. once per chunk of body: collected up to --max-body;
 *	3. once more with no data: the call to saas.http and the answer.
 * A request's state lives in a RelayRequest created by the URI callback,
 * which sees the raw request target (path and query exactly as sent), and
 * ended by relay_finish, which writes the access log line and frees it.
 * What is checked in the head, and how, is in checks.c; the connection
 * limits and the deadlines of headers and body are guard.c's, told of each
 * phase here (saas_guard_enter).
 *
 * What the relay forwards: the method (HEAD as GET: the same answer
 * without its body), the raw target, the headers as JSON (headers.c), and
 * the body as text (SQL NULL when there is none).
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "checks.h"
#include "guard.h"
#include "headers.h"
#include "http_errors.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "negotiate.h"
#include "relay.h"
#include "request_id.h"
#include "static.h"

/* Methods forwarded to the extension; anything else is 405 here. */
#define RELAY_ALLOW_API		"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
#define RELAY_ALLOW_READ	"GET, HEAD"

/*
 * libmicrohttpd 0.9 cannot answer while it is reading a body, so a chunked
 * body that grows past --max-body is read and dropped before the 413.  One
 * that keeps coming well past the limit gets its connection closed instead.
 */
#define RELAY_DRAIN_SLACK	(64 * 1024)

typedef struct RelayRequest
{
	SaasConn   *owner;			/* the connection's state */
	int64_t		start_us;
	char	   *target;			/* raw request target, NUL-terminated */
	char		method[16];		/* for the log; longer methods are cut */
	char		rid[SAAS_REQUEST_ID_MAX + 1];
	char		ip[INET6_ADDRSTRLEN];
	int			route;
	bool		started;		/* headers seen (first handler call done) */
	bool		answered;		/* a response is queued */
	bool		shut;			/* answered on the socket (guard.c): give up */
	bool		too_large;		/* body passed --max-body while streaming */
	SaasBuf		body;
	size_t		body_seen;		/* bytes received, kept or not */
	int			status;			/* what was answered; 0 if nothing */
	size_t		resp_bytes;
	const char *error_code;		/* the relay's own error, for the log */
} RelayRequest;

/*
 * The connection's state (SaasConn, guard.c) holds the request in progress
 * in its "request" field.  libmicrohttpd 0.9.75 can drop a connection after
 * the URI callback without calling the completion callback, so the request
 * is also finished when its connection closes: no state leaks and shutdown
 * never waits for a request that cannot end.
 */

static void relay_finish(SaasRelay *relay, RelayRequest *req, const char *end);

/*
 * relay_refuse_now
 *		Answer err straight on the socket and end the connection, without
 *		waiting for the rest of the head: for a head the relay refuses
 *		whatever follows (a target too long or with too many parameters),
 *		and for too many or too large header fields, which may have left
 *		libmicrohttpd no memory to build an answer with: it would then close
 *		the connection in silence (its header records, not their bytes, fill
 *		its memory: 870 fields of 10 bytes do).  Every later callback for
 *		the request gives up (req->shut).  The request id is a new one when
 *		the headers, and any X-Request-Id among them, are not in yet.
 */
static void
relay_refuse_now(SaasRelay *relay, RelayRequest *req, SaasRelayError err)
{
	long		sent;

	if (req->rid[0] == '\0')
		saas_request_id_generate(req->rid);
	req->shut = true;
	sent = saas_guard_answer(relay->guard, req->owner, err, req->rid);
	if (sent < 0)
		return;					/* a deadline cut it first: its 408 is out */
	req->answered = true;
	req->status = saas_error_status(err);
	req->error_code = saas_error_code(err);
	req->resp_bytes = (size_t) sent;
}

/*
 * saas_relay_begin
 *		URI callback: the request line has been read.  Creates the request's
 *		state with the raw target, before libmicrohttpd splits off the query
 *		and percent-decodes the path (saas.http wants them as sent).  NULL,
 *		which makes the handler drop the connection, for a connection that
 *		was refused (already answered 503) or cut at its header deadline.
 */
void *
saas_relay_begin(void *cls, const char *uri, struct MHD_Connection *conn)
{
	SaasRelay  *relay = cls;
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	SaasConn   *owner = info ? info->socket_context : NULL;
	RelayRequest *req;
	SaasRelayError err;

	if (owner == NULL || !saas_guard_enter(relay->guard, owner, SAAS_PHASE_HEADERS, NULL))
		return NULL;
	/* a request that was never completed; finish it first */
	if (owner->request != NULL)
		relay_finish(relay, owner->request, "abandoned");
	req = calloc(1, sizeof(RelayRequest));
	if (req == NULL)
		return NULL;
	req->owner = owner;
	owner->request = req;
	req->start_us = saas_now_us();
	/* from the socket, never from a header: x-client-addr and per-IP limits key on it */
	memcpy(req->ip, owner->ip, sizeof(req->ip));
	req->target = strndup(uri ? uri : "", SAAS_TARGET_MAX + 1);
	saas_check_shield(conn, uri);
	req->route = saas_route_of(req->target ? req->target : "");
	saas_buf_init(&req->body);
	atomic_fetch_add(&relay->active, 1);
	saas_metrics_in_flight(1);
	if (req->target != NULL && !saas_check_target_size(req->target, &err))
		relay_refuse_now(relay, req, err);
	return req;
}

/*
 * relay_queue
 *		Queue resp as the answer and remember what was answered.
 */
static enum MHD_Result
relay_queue(SaasRelay *relay, struct MHD_Connection *conn, RelayRequest *req,
			struct MHD_Response *resp, int status, size_t body_len)
{
	enum MHD_Result rc;

	if (resp == NULL)
		return MHD_NO;			/* out of memory: drop the connection */
	if (!saas_guard_enter(relay->guard, req->owner, SAAS_PHASE_ANSWER, NULL))
	{
		MHD_destroy_response(resp);
		return MHD_NO;			/* cut at a deadline: the 408 is out */
	}
	if (atomic_load(&relay->draining))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	saas_negotiate_finish(relay->config, conn, resp, status);
	rc = MHD_queue_response(conn, (unsigned int) status, resp);
	MHD_destroy_response(resp);
	if (rc == MHD_YES)
	{
		req->answered = true;
		req->status = status;
		req->resp_bytes = body_len;
	}
	return rc;
}

/*
 * relay_fail
 *		Answer with one of the relay's own errors.  When that happens before
 *		the body was read, libmicrohttpd closes the connection after the
 *		answer (what is left of the body would otherwise be read as the next
 *		request); a 413 says so in its headers.
 */
static enum MHD_Result
relay_fail(SaasRelay *relay, struct MHD_Connection *conn, RelayRequest *req,
		   SaasRelayError err, const char *allow)
{
	size_t		len = 0;
	struct MHD_Response *resp = saas_error_response(err, req->rid, &len);

	if (resp != NULL && allow != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	if (resp != NULL && err == SAAS_ERR_BODY_TOO_LARGE)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	req->error_code = saas_error_code(err);
	return relay_queue(relay, conn, req, resp, saas_error_status(err), len);
}

/*
 * relay_log_bug
 *		Log an answer from saas.http that breaks its contract, with the
 *		request id that the client's 500 carries.
 */
static void
relay_log_bug(RelayRequest *req, const char *msg, const char *sqlstate, const char *detail)
{
	SaasLogLine line;

	saas_logline_begin(&line, "error");
	saas_logline_str(&line, "msg", msg);
	saas_logline_str(&line, "rid", req->rid);
	if (sqlstate != NULL)
		saas_logline_str(&line, "sqlstate", sqlstate);
	if (detail != NULL)
		saas_logline_str(&line, "detail", detail);
	saas_logline_end(&line);
}

/*
 * relay_answer_row
 *		Turn saas.http's answer into the response: status, headers, body.
 *		The rows are saas.http's answer joined to its headers, one row per
 *		header (pool.c's query, columns SAAS_COL_*).  Anything outside the contract (not exactly one
 *		answer row, no status, a status outside 200..599, headers that are
 *		not a flat JSON object) is a bug in the router and becomes a generic
 *		500, logged.
 */
static enum MHD_Result
relay_answer_row(SaasRelay *relay, struct MHD_Connection *conn, RelayRequest *req,
				 PGresult *res)
{
	struct MHD_Response *resp;
	SaasRespHeaders seen;
	const char *body = "";
	size_t		body_len = 0;
	size_t		sent_len;
	const char *etag = NULL;
	const char *inm;
	long		status;
	char	   *end;
	int			answer = -1;
	int			nanswers = 0;
	bool		flat = true;

	for (int i = 0; PQnfields(res) == SAAS_NCOLS && i < PQntuples(res); i++)
	{
		if (strcmp(PQgetvalue(res, i, SAAS_COL_ANSWER), "t") == 0)
			answer = i, nanswers++;
		if (strcmp(PQgetvalue(res, i, SAAS_COL_HEADERS_OK), "t") != 0)
			flat = false;
		if (!PQgetisnull(res, i, SAAS_COL_NAME) && !PQgetisnull(res, i, SAAS_COL_VALUE) &&
			strcasecmp(PQgetvalue(res, i, SAAS_COL_NAME), "etag") == 0)
			etag = PQgetvalue(res, i, SAAS_COL_VALUE);
	}
	if (nanswers != 1 || PQgetisnull(res, answer, SAAS_COL_STATUS))
	{
		relay_log_bug(req, "saas.http returned no single row with a status", NULL, NULL);
		return relay_fail(relay, conn, req, SAAS_ERR_INTERNAL, NULL);
	}
	status = strtol(PQgetvalue(res, answer, SAAS_COL_STATUS), &end, 10);
	if (*end != '\0' || status < 200 || status > 599)
	{
		relay_log_bug(req, "saas.http returned an invalid status", NULL,
					  PQgetvalue(res, answer, SAAS_COL_STATUS));
		return relay_fail(relay, conn, req, SAAS_ERR_INTERNAL, NULL);
	}
	if (!flat)
	{
		relay_log_bug(req, "saas.http returned headers that are not a flat JSON object",
					  NULL, NULL);
		return relay_fail(relay, conn, req, SAAS_ERR_INTERNAL, NULL);
	}
	/* a GET whose answer the client holds already (RFC 9110 13.1.2) */
	inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (status == 200 && etag != NULL && inm != NULL &&
		(strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0) &&
		saas_etag_matches(inm, etag))
		status = 304;
	/* 204 and 304 have no body by definition (RFC 9110 15.3.5, 15.4.5) */
	if (!PQgetisnull(res, answer, SAAS_COL_BODY) && status != 204 && status != 304)
	{
		body = PQgetvalue(res, answer, SAAS_COL_BODY);
		body_len = (size_t) PQgetlength(res, answer, SAAS_COL_BODY);
	}
	resp = saas_body_response(conn, body, body_len, &sent_len);
	if (resp == NULL)
		return MHD_NO;
	seen.has_content_type = seen.has_request_id = false;
	for (int i = 0; i < PQntuples(res); i++)
		if (!PQgetisnull(res, i, SAAS_COL_NAME) && !PQgetisnull(res, i, SAAS_COL_VALUE))
			saas_header_to_response(resp, PQgetvalue(res, i, SAAS_COL_NAME),
									PQgetvalue(res, i, SAAS_COL_VALUE), req->rid, &seen);
	if (!seen.has_request_id)
		MHD_add_response_header(resp, "X-Request-Id", req->rid);
	if (!seen.has_content_type && body_len > 0)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	return relay_queue(relay, conn, req, resp, (int) status, sent_len);
}

/*
 * relay_forward
 *		The complete request goes to saas.http; its answer, or the relay's
 *		error for what went wrong on the way, goes back.
 */
static enum MHD_Result
relay_forward(SaasRelay *relay, struct MHD_Connection *conn, RelayRequest *req,
			  const char *method)
{
	SaasBuf		headers;
	const char *params[4];
	PGresult   *res = NULL;
	SaasCallStatus st;
	enum MHD_Result rc;
	int64_t		deadline;

	saas_buf_init(&headers);
	if (!saas_headers_to_json(conn, req->ip, req->rid, &headers))
	{
		saas_buf_free(&headers);
		return MHD_NO;
	}
	params[0] = strcmp(method, "HEAD") == 0 ? "GET" : method;
	params[1] = req->target;
	params[2] = headers.data;
	params[3] = req->body.len > 0 ? req->body.data : NULL;

	deadline = saas_now_us() + 1000LL * relay->config->timeout_ms;
	st = saas_pool_call(relay->pool, params, deadline, &res);
	saas_buf_free(&headers);

	switch (st)
	{
		case SAAS_CALL_OK:
			rc = relay_answer_row(relay, conn, req, res);
			break;
		case SAAS_CALL_SQL_ERROR:
			{
				const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
				SaasRelayError err = saas_error_for_sqlstate(sqlstate);

				relay_log_bug(req, err == SAAS_ERR_INTERNAL ?
							  "saas.http raised an error" : "database refused the call",
							  sqlstate, PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
				rc = relay_fail(relay, conn, req, err, NULL);
				break;
			}
		case SAAS_CALL_BUSY:
			rc = relay_fail(relay, conn, req, SAAS_ERR_BUSY, NULL);
			break;
		case SAAS_CALL_TIMEOUT:
			rc = relay_fail(relay, conn, req, SAAS_ERR_DB_TIMEOUT, NULL);
			break;
		case SAAS_CALL_UNAVAILABLE:
		case SAAS_CALL_LOST:
		default:
			rc = relay_fail(relay, conn, req, SAAS_ERR_DB_UNAVAILABLE, NULL);
			break;
	}
	PQclear(res);
	return rc;
}

/*
 * relay_serve_local
 *		GET /metrics and GET /openapi.json, which the relay answers itself.
 */
static enum MHD_Result
relay_serve_local(SaasRelay *relay, struct MHD_Connection *conn, RelayRequest *req,
				  const char *method)
{
	struct MHD_Response *resp;
	const char *route = saas_route_name(req->route);
	size_t		len;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return relay_fail(relay, conn, req, SAAS_ERR_METHOD, RELAY_ALLOW_READ);
	if (strcmp(route, "/metrics") == 0)
	{
		SaasBuf		text;

		saas_buf_init(&text);
		saas_metrics_render(&text, relay->pool);
		saas_metrics_render_db(&text, relay->pool, relay->config->timeout_ms);
		if (text.failed)
		{
			saas_buf_free(&text);
			return MHD_NO;
		}
		resp = saas_body_response(conn, text.data, text.len, &len);
		saas_buf_free(&text);
		if (resp == NULL)
			return MHD_NO;
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
								"text/plain; version=0.0.4; charset=utf-8");
	}
	else
	{
		if (relay->openapi == NULL)
			return relay_fail(relay, conn, req, SAAS_ERR_NOT_FOUND, NULL);
		resp = saas_body_response(conn, relay->openapi, relay->openapi_len, &len);
		if (resp == NULL)
			return MHD_NO;
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	}
	MHD_add_response_header(resp, "X-Request-Id", req->rid);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	return relay_queue(relay, conn, req, resp, 200, len);
}

/*
 * relay_serve_static
 *		The dashboard's and the documentation page's files (static.c).
 */
static enum MHD_Result
relay_serve_static(SaasRelay *relay, struct MHD_Connection *conn, RelayRequest *req,
				   const char *method)
{
	int			status = 0;
	size_t		len = 0;
	SaasRelayError err;
	struct MHD_Response *resp = saas_static_answer(relay->static_root, conn, req->target,
												   method, &status, &len, &err);

	if (resp == NULL)
	{
		if (err == SAAS_ERR_INTERNAL)
			return MHD_NO;		/* out of memory: drop the connection */
		return relay_fail(relay, conn, req, err,
						  err == SAAS_ERR_METHOD ? RELAY_ALLOW_READ : NULL);
	}
	MHD_add_response_header(resp, "X-Request-Id", req->rid);
	return relay_queue(relay, conn, req, resp, status, len);
}

/*
 * relay_headers_in
 *		First call: everything that can be decided from the request line and
 *		headers.  Answering here, before the body is read, is what keeps a
 *		client from making the relay read a body it will refuse.
 */
static enum MHD_Result
relay_headers_in(SaasRelay *relay, struct MHD_Connection *conn, RelayRequest *req,
				 const char *method, const char *version)
{
	const char *clen;
	const char *tenc;
	bool		has_body;
	SaasRelayError err;

	req->started = true;
	snprintf(req->method, sizeof(req->method), "%s", method);
	saas_request_id_choose(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id"),
						   req->rid);
	if (!saas_guard_enter(relay->guard, req->owner, SAAS_PHASE_BODY, req->rid))
		return MHD_NO;			/* cut at the header deadline: the 408 is out */

	if (!saas_check_headers(conn, &err))
	{
		relay_refuse_now(relay, req, err);
		return MHD_NO;			/* libmicrohttpd closes the connection */
	}
	if (!saas_check_target_form(req->target))
		return relay_fail(relay, conn, req, SAAS_ERR_BAD_TARGET, NULL);
	if (saas_cors_is_preflight(conn, method))
	{
		if (!saas_cors_allowed(relay->config, conn))
			return relay_fail(relay, conn, req, SAAS_ERR_ORIGIN, NULL);
		return relay_queue(relay, conn, req, saas_cors_preflight(req->rid), 204, 0);
	}
	if (saas_static_claims(req->target))
		return relay_serve_static(relay, conn, req, method);
	if (strcmp(saas_route_name(req->route), "/metrics") == 0 ||
		strcmp(saas_route_name(req->route), "/openapi.json") == 0)
		return relay_serve_local(relay, conn, req, method);
	if (!saas_check_method(method))
		return relay_fail(relay, conn, req, SAAS_ERR_METHOD, RELAY_ALLOW_API);

	if (!saas_check_framing(conn, version, &err))
		return relay_fail(relay, conn, req, err, NULL);
	clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	tenc = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	if (clen != NULL && strtoull(clen, NULL, 10) > relay->config->max_body)
		return relay_fail(relay, conn, req, SAAS_ERR_BODY_TOO_LARGE, NULL);
	has_body = (clen != NULL && strtoull(clen, NULL, 10) > 0) || tenc != NULL;
	if (has_body &&
		!saas_check_json(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
													 MHD_HTTP_HEADER_CONTENT_TYPE)))
		return relay_fail(relay, conn, req, SAAS_ERR_MEDIA_TYPE, NULL);
	return MHD_YES;
}

/*
 * saas_relay_handle
 *		The access handler; see the file header for its three phases.
 */
enum MHD_Result
saas_relay_handle(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	SaasRelay  *relay = cls;
	RelayRequest *req = *req_cls;

	(void) url;
	if (req == NULL || req->target == NULL || req->shut)
		return MHD_NO;			/* refused, cut, answered, or out of memory */
	if (!req->started)
		return relay_headers_in(relay, conn, req, method, version);

	if (*upload_data_size > 0)
	{
		/*
		 * A chunked body has no declared size: it is counted as it comes and
		 * dropped once too large; the 413 goes out at its end (see
		 * RELAY_DRAIN_SLACK).
		 */
		req->body_seen += *upload_data_size;
		if (req->body_seen > 2 * relay->config->max_body + RELAY_DRAIN_SLACK)
			return MHD_NO;
		if (!req->answered && !req->too_large)
		{
			if (req->body.len + *upload_data_size > relay->config->max_body)
			{
				req->too_large = true;
				saas_buf_free(&req->body);
			}
			else if (!saas_buf_append(&req->body, upload_data, *upload_data_size))
				return MHD_NO;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}

	if (req->answered)
		return MHD_YES;
	/* the body is in: from here the database call's own timeout rules */
	if (!saas_guard_enter(relay->guard, req->owner, SAAS_PHASE_ANSWER, NULL))
		return MHD_NO;			/* cut at the body deadline: the 408 is out */
	if (req->too_large)
		return relay_fail(relay, conn, req, SAAS_ERR_BODY_TOO_LARGE, NULL);
	if (!saas_utf8_valid(req->body.data ? req->body.data : "", req->body.len))
		return relay_fail(relay, conn, req, SAAS_ERR_BAD_ENCODING, NULL);
	return relay_forward(relay, conn, req, method);
}

/*
 * relay_end_reason
 *		Why a request ended, for the log of requests that got no answer.
 */
static const char *
relay_end_reason(enum MHD_RequestTerminationCode toe)
{
	switch (toe)
	{
		case MHD_REQUEST_TERMINATED_COMPLETED_OK:
			return "ok";
		case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED:
			return "idle_timeout";
		case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:
			return "shutdown";
		case MHD_REQUEST_TERMINATED_READ_ERROR:
			return "read_error";
		case MHD_REQUEST_TERMINATED_CLIENT_ABORT:
			return "client_abort";
		case MHD_REQUEST_TERMINATED_WITH_ERROR:
		default:
			return "error";
	}
}

/*
 * relay_finish
 *		The end of a request, however it ended: one access log line, the
 *		metrics, and the request's memory.  end is NULL for a normal end,
 *		else why the request ended early.
 */
static void
relay_finish(SaasRelay *relay, RelayRequest *req, const char *end)
{
	int64_t		elapsed = saas_now_us() - req->start_us;
	SaasLogLine line;
	SaasPhase	cut_phase;

	if (req->owner->request == req)
		req->owner->request = NULL;
	if (req->status == 0 &&
		saas_guard_was_cut(relay->guard, req->owner, &cut_phase, req->rid))
	{
		/* the watchdog answered 408 (guard.c) */
		req->status = saas_error_status(SAAS_ERR_TIMEOUT);
		req->error_code = saas_error_code(SAAS_ERR_TIMEOUT);
		end = cut_phase == SAAS_PHASE_BODY ? "body_deadline" : "header_deadline";
	}

	saas_logline_begin(&line, "info");
	saas_logline_str(&line, "msg", "request");
	saas_logline_str(&line, "rid", req->rid[0] != '\0' ? req->rid : NULL);
	saas_logline_str(&line, "ip", req->ip);
	saas_logline_str(&line, "method", req->started ? req->method : NULL);
	saas_logline_str(&line, "path", req->target);
	saas_logline_str(&line, "route", saas_route_name(req->route));
	saas_logline_int(&line, "status", req->status);
	saas_logline_ms(&line, "ms", elapsed);
	saas_logline_int(&line, "bytes_in", (long long) req->body_seen);
	saas_logline_int(&line, "bytes", (long long) req->resp_bytes);
	if (req->error_code != NULL)
		saas_logline_str(&line, "error", req->error_code);
	if (end != NULL)
		saas_logline_str(&line, "end", end);
	saas_logline_end(&line);

	saas_metrics_request(req->route, req->method, req->status, elapsed);
	saas_metrics_in_flight(-1);
	atomic_fetch_sub(&relay->active, 1);
	saas_buf_free(&req->body);
	free(req->target);
	free(req);
}

/*
 * saas_relay_completed
 *		Completion callback: libmicrohttpd is done with the request.
 */
void
saas_relay_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
					 enum MHD_RequestTerminationCode toe)
{
	SaasRelay  *relay = cls;
	RelayRequest *req = *req_cls;
	SaasConn   *owner;

	(void) conn;
	if (req == NULL)
		return;
	*req_cls = NULL;
	owner = req->owner;
	relay_finish(relay, req, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? NULL :
				 relay_end_reason(toe));
	/* between requests: the idle timeout rules until the next one's first byte */
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		(void) saas_guard_enter(relay->guard, owner, SAAS_PHASE_IDLE, NULL);
}

/*
 * saas_relay_connection
 *		Connection callback: at open, the limits (guard.c) admit the
 *		connection or answer it 503 (its state stays NULL then); at close,
 *		the end of a request that libmicrohttpd never completed (see
 *		SaasConn), then the guard forgets the connection.
 */
void
saas_relay_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
					  enum MHD_ConnectionNotificationCode toe)
{
	SaasRelay  *relay = cls;
	SaasConn   *c;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
	{
		*socket_context = saas_guard_open(relay->guard, conn);
		return;
	}
	c = *socket_context;
	*socket_context = NULL;
	if (c == NULL)
		return;
	if (c->request != NULL)
		relay_finish(relay, c->request, "connection_closed");
	saas_guard_close(relay->guard, c);
}
