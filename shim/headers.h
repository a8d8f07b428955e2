/*-------------------------------------------------------------------------
 *
 * headers.h
 *	  HTTP headers both ways: the request's as the JSON object saas.http
 *	  takes, and the JSON object it returns as response headers.
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
extern bool saas_headers_from_json(struct MHD_Response *resp, const char *json,
								   const char *request_id, SaasRespHeaders *seen);

#endif							/* SAAS_HTTP_HEADERS_H */
