/*-------------------------------------------------------------------------
 *
 * http_errors.h
 *	  The relay's own error answers, and how database failures map to them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_HTTP_HTTP_ERRORS_H
#define SAAS_HTTP_HTTP_ERRORS_H

#include <stddef.h>

struct MHD_Response;

/* Room enough for any message saas_error_raw builds. */
#define SAAS_ERROR_RAW_MAX 1024

/* Every error the relay itself answers; the table in http_errors.c gives each its status. */
typedef enum SaasRelayError
{
	SAAS_ERR_BAD_TARGET,		/* 400: request target unusable */
	SAAS_ERR_BAD_ENCODING,		/* 400: body not UTF-8 text */
	SAAS_ERR_BAD_FRAMING,		/* 400: ambiguous body length */
	SAAS_ERR_BAD_CODING,		/* 400: Transfer-Encoding not ending in chunked */
	SAAS_ERR_ORIGIN,			/* 403: CORS preflight from an origin not allowed */
	SAAS_ERR_NOT_FOUND,			/* 404: document not installed */
	SAAS_ERR_METHOD,			/* 405 */
	SAAS_ERR_TIMEOUT,			/* 408: headers or body not in by the deadline */
	SAAS_ERR_BODY_TOO_LARGE,	/* 413 */
	SAAS_ERR_TARGET_TOO_LONG,	/* 414 */
	SAAS_ERR_MEDIA_TYPE,		/* 415 */
	SAAS_ERR_HEADERS_TOO_LARGE, /* 431: too many or too large header fields */
	SAAS_ERR_TOO_MANY_PARAMS,	/* 431: too many query parameters */
	SAAS_ERR_INTERNAL,			/* 500: a bug, logged with the request id */
	SAAS_ERR_CODING_UNSUPPORTED,	/* 501: a transfer coding other than chunked */
	SAAS_ERR_DB_UNAVAILABLE,	/* 503: cannot connect, connection lost */
	SAAS_ERR_DB_TIMEOUT,		/* 503: the call outlived --timeout-ms */
	SAAS_ERR_BUSY,				/* 503: no pooled connection free in time */
	SAAS_ERR_CONFLICT,			/* 503: serialization failure or deadlock */
	SAAS_ERR_CONN_LIMIT,		/* 503: --max-connections open already */
	SAAS_ERR_CLIENT_CONN_LIMIT	/* 503: the client's address has too many open */
} SaasRelayError;

extern int	saas_error_status(SaasRelayError err);
extern const char *saas_error_code(SaasRelayError err);
extern SaasRelayError saas_error_for_sqlstate(const char *sqlstate);
extern struct MHD_Response *saas_error_response(SaasRelayError err,
												const char *request_id,
												size_t *body_len);
extern size_t saas_error_raw(SaasRelayError err, const char *request_id,
							 char *out, size_t outlen, size_t *body_len);

#endif							/* SAAS_HTTP_HTTP_ERRORS_H */
