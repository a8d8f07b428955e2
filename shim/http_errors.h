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

/* Every error the relay itself answers; the table in http_errors.c gives each its status. */
typedef enum SaasRelayError
{
	SAAS_ERR_BAD_TARGET,		/* 400: request target unusable */
	SAAS_ERR_BAD_ENCODING,		/* 400: body not UTF-8 text */
	SAAS_ERR_BAD_FRAMING,		/* 400: ambiguous body length */
	SAAS_ERR_NOT_FOUND,			/* 404: document not installed */
	SAAS_ERR_METHOD,			/* 405 */
	SAAS_ERR_BODY_TOO_LARGE,	/* 413 */
	SAAS_ERR_MEDIA_TYPE,		/* 415 */
	SAAS_ERR_INTERNAL,			/* 500: a bug, logged with the request id */
	SAAS_ERR_DB_UNAVAILABLE,	/* 503: cannot connect, connection lost */
	SAAS_ERR_DB_TIMEOUT,		/* 503: the call outlived --timeout-ms */
	SAAS_ERR_BUSY,				/* 503: no pooled connection free in time */
	SAAS_ERR_CONFLICT			/* 503: serialization failure or deadlock */
} SaasRelayError;

extern int	saas_error_status(SaasRelayError err);
extern const char *saas_error_code(SaasRelayError err);
extern SaasRelayError saas_error_for_sqlstate(const char *sqlstate);
extern struct MHD_Response *saas_error_response(SaasRelayError err,
												const char *request_id,
												size_t *body_len);

#endif							/* SAAS_HTTP_HTTP_ERRORS_H */
