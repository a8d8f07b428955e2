/*-------------------------------------------------------------------------
 *
 * http_errors.c
 *	  The relay's own error answers, and how database failures map to them.
 *
 * The extension answers every request it sees, errors included.  The relay
 * answers only what never reaches it (bad HTTP, size, content type) or what
 * went wrong between the two (no connection, timeout, an error raised out
 * of saas.http, which is a bug by contract).  Those answers use the same
 * body as the API:
 *
 *	{"error":{"code":"...","message":"...","details":[],"request_id":"..."}}
 *
 * and this file is the one place where a failure becomes a status.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "common.h"
#include "http_errors.h"
#include "json.h"

#define ERR_STR2(x) #x
#define ERR_STR(x) ERR_STR2(x)

typedef struct ErrorDef
{
	int			status;
	const char *code;
	const char *message;
} ErrorDef;

/* Indexed by SaasRelayError. */
static const ErrorDef error_defs[] = {
	[SAAS_ERR_BAD_TARGET] = {400, "bad_request",
	"the request target must be a path of printable ASCII characters"},
	[SAAS_ERR_BAD_ENCODING] = {400, "bad_request",
	"the request body must be UTF-8 text without NUL characters"},
	[SAAS_ERR_BAD_FRAMING] = {400, "bad_request",
	"the request has conflicting Content-Length or Transfer-Encoding headers"},
	[SAAS_ERR_BAD_CODING] = {400, "bad_request",
	"the request body length cannot be determined: Transfer-Encoding must be chunked"},
	[SAAS_ERR_ORIGIN] = {403, "origin_not_allowed",
	"cross-origin requests from this origin are not allowed (saas-http --cors-origins)"},
	[SAAS_ERR_NOT_FOUND] = {404, "not_found",
	"the document is not installed on this server"},
	[SAAS_ERR_METHOD] = {405, "method_not_allowed",
	"the method is not allowed for this resource"},
	[SAAS_ERR_TIMEOUT] = {408, "request_timeout",
	"the request was not received in time"},
	[SAAS_ERR_BODY_TOO_LARGE] = {413, "payload_too_large",
	"the request body is larger than this server accepts"},
	[SAAS_ERR_TARGET_TOO_LONG] = {414, "uri_too_long",
	"the request target is longer than " ERR_STR(SAAS_TARGET_MAX) " bytes"},
	[SAAS_ERR_MEDIA_TYPE] = {415, "unsupported_media_type",
	"request bodies must be JSON (Content-Type: application/json)"},
	[SAAS_ERR_HEADERS_TOO_LARGE] = {431, "request_header_fields_too_large",
	"the request has more than " ERR_STR(SAAS_HEADER_FIELDS_MAX) " header fields or more than "
	ERR_STR(SAAS_HEADER_BYTES_MAX) " bytes of them"},
	[SAAS_ERR_TOO_MANY_PARAMS] = {431, "request_header_fields_too_large",
	"the query string has more than " ERR_STR(SAAS_QUERY_PARAMS_MAX) " parameters"},
	[SAAS_ERR_INTERNAL] = {500, "internal_error",
	"an internal error occurred; quote the request id when reporting it"},
	[SAAS_ERR_CODING_UNSUPPORTED] = {501, "not_implemented",
	"the only transfer coding this server accepts is chunked"},
	[SAAS_ERR_DB_UNAVAILABLE] = {503, "database_unavailable",
	"the database is unavailable; retry later"},
	[SAAS_ERR_DB_TIMEOUT] = {503, "database_timeout",
	"the request took longer than the server allows; retry later"},
	[SAAS_ERR_BUSY] = {503, "server_busy",
	"no database connection became free in time; retry later"},
	[SAAS_ERR_CONFLICT] = {503, "transaction_conflict",
	"the request conflicted with a concurrent one; retry it"},
	[SAAS_ERR_CONN_LIMIT] = {503, "too_many_connections",
	"the server has as many connections open as it allows; retry later"},
	[SAAS_ERR_CLIENT_CONN_LIMIT] = {503, "too_many_connections",
	"your address has as many connections open as the server allows; close one or retry later"},
};

/*
 * saas_error_status
 *		The HTTP status of a relay error.
 */
int
saas_error_status(SaasRelayError err)
{
	return error_defs[err].status;
}

/*
 * saas_error_code
 *		The machine-readable code of a relay error (for logs and tests).
 */
const char *
saas_error_code(SaasRelayError err)
{
	return error_defs[err].code;
}

/*
 * saas_error_for_sqlstate
 *		What to answer when saas.http raised instead of returning a row.
 *
 *		The router turns every expected failure into a status itself, so an
 *		error that escapes it is either the database's state (shutting down,
 *		out of connections, cancelled by statement_timeout, a serialization
 *		conflict: retryable, 503) or a deployment problem (the API or a grant
 *		is missing: unavailable, 503) or a bug (500, logged).
 */
SaasRelayError
saas_error_for_sqlstate(const char *sqlstate)
{
	if (sqlstate == NULL || strlen(sqlstate) != 5)
		return SAAS_ERR_INTERNAL;
	if (strcmp(sqlstate, "57014") == 0)		/* query_canceled */
		return SAAS_ERR_DB_TIMEOUT;
	if (strncmp(sqlstate, "08", 2) == 0 ||	/* connection exceptions */
		strncmp(sqlstate, "53", 2) == 0 ||	/* insufficient resources */
		strncmp(sqlstate, "57P", 3) == 0 || /* shutdown, cannot connect now */
		strcmp(sqlstate, "25006") == 0 ||	/* read-only (a standby) */
		strcmp(sqlstate, "3F000") == 0 ||	/* schema saas missing */
		strcmp(sqlstate, "42883") == 0 ||	/* saas.http missing */
		strcmp(sqlstate, "42501") == 0)		/* saas_api not granted */
		return SAAS_ERR_DB_UNAVAILABLE;
	if (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0)
		return SAAS_ERR_CONFLICT;
	return SAAS_ERR_INTERNAL;
}

/*
 * error_body
 *		The API's error body for err, in a buffer the caller frees.
 *		False on allocation failure (nothing to free then).
 */
static bool
error_body(SaasRelayError err, const char *request_id, SaasBuf *body)
{
	const ErrorDef *def = &error_defs[err];

	saas_buf_init(body);
	saas_buf_puts(body, "{\"error\":{\"code\":");
	saas_json_string(body, def->code);
	saas_buf_puts(body, ",\"message\":");
	saas_json_string(body, def->message);
	saas_buf_puts(body, ",\"details\":[],\"request_id\":");
	saas_json_string(body, request_id);
	saas_buf_puts(body, "}}");
	if (body->failed)
	{
		saas_buf_free(body);
		return false;
	}
	return true;
}

/*
 * saas_error_response
 *		A complete MHD response for err: the API's error body, Content-Type,
 *		X-Request-Id, no caching, and Retry-After on 503 so that clients back
 *		off instead of hammering a database that is down.
 */
struct MHD_Response *
saas_error_response(SaasRelayError err, const char *request_id, size_t *body_len)
{
	const ErrorDef *def = &error_defs[err];
	struct MHD_Response *resp;
	SaasBuf		body;

	if (!error_body(err, request_id, &body))
		return NULL;

	resp = MHD_create_response_from_buffer(body.len, body.data, MHD_RESPMEM_MUST_COPY);
	*body_len = body.len;
	saas_buf_free(&body);
	if (resp == NULL)
		return NULL;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "X-Request-Id", request_id);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	if (def->status == 503)
		MHD_add_response_header(resp, "Retry-After", "1");
	return resp;
}

/*
 * saas_error_raw
 *		The whole HTTP/1.1 message for err, as bytes, for the answers written
 *		to a socket outside libmicrohttpd (guard.c): a connection refused
 *		over the limits, a request cut off by its deadline, a head that left
 *		libmicrohttpd no memory to answer with.  All close the
 *		connection, so the message says so.  Returns its length, 0 if it
 *		does not fit in out (never for outlen >= SAAS_ERROR_RAW_MAX), and
 *		the length of its body in *body_len.
 */
size_t
saas_error_raw(SaasRelayError err, const char *request_id, char *out, size_t outlen,
			   size_t *body_len)
{
	const ErrorDef *def = &error_defs[err];
	SaasBuf		body;
	char		date[64];
	struct tm	tm;
	time_t		now = time(NULL);
	int			n;

	if (!error_body(err, request_id, &body))
		return 0;
	/* RFC 9110 6.6.1: an origin server with a clock sends Date */
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	n = snprintf(out, outlen,
				 "HTTP/1.1 %d %s\r\n"
				 "Date: %s\r\n"
				 "Connection: close\r\n"
				 "Content-Type: application/json\r\n"
				 "X-Request-Id: %s\r\n"
				 "Cache-Control: no-store\r\n"
				 "%s"
				 "Content-Length: %zu\r\n"
				 "\r\n"
				 "%s",
				 def->status, MHD_get_reason_phrase_for((unsigned int) def->status),
				 date, request_id, def->status == 503 ? "Retry-After: 1\r\n" : "",
				 body.len, body.data);
	*body_len = body.len;
	saas_buf_free(&body);
	return n > 0 && (size_t) n < outlen ? (size_t) n : 0;
}
