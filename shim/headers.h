/*-------------------------------------------------------------------------
 *
 * headers.h
 *	  HTTP headers both ways: the request's as the JSON object saas.http
 *	  takes, and the response headers it returns (as rows, see pool.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_HTTP_HEADERS_H
#define SAAS_HTTP_HEADERS_H

#include <stdbool.h>

#include <microhttpd.h>

#include "json.h"

/* What copying the response headers found. */
typedef struct SaasRespHeaders
{
	bool		has_content_type;
	bool		has_request_id;
} SaasRespHeaders;

extern bool saas_headers_to_json(struct MHD_Connection *conn, const char *client_addr,
								 const char *request_id, SaasBuf *out);
extern void saas_header_to_response(struct MHD_Response *resp, const char *name,
									const char *value, const char *request_id,
									SaasRespHeaders *seen);

#endif							/* SAAS_HTTP_HEADERS_H */
