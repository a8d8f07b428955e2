/*-------------------------------------------------------------------------
 *
 * negotiate.h
 *	  What HTTP clients expect of every answer beyond its status and body:
 *	  CORS, gzip when asked, conditional GET, and the headers a status
 *	  implies (WWW-Authenticate on 401, Retry-After on 503, HEAD in Allow).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_HTTP_NEGOTIATE_H
#define SAAS_HTTP_NEGOTIATE_H

#include <stdbool.h>
#include <stddef.h>

#include <microhttpd.h>

#include "common.h"

/* Bodies shorter than this are sent as they are: gzip would save little. */
#define SAAS_GZIP_MIN	1024

extern bool saas_cors_parse(const char *list, SaasHttpConfig *cfg, const char **bad);
extern bool saas_cors_is_preflight(struct MHD_Connection *conn, const char *method);
extern bool saas_cors_allowed(const SaasHttpConfig *cfg, struct MHD_Connection *conn);
extern struct MHD_Response *saas_cors_preflight(const char *request_id);
extern struct MHD_Response *saas_body_response(struct MHD_Connection *conn,
											   const char *body, size_t len,
											   size_t *sent_len);
extern bool saas_etag_matches(const char *if_none_match, const char *etag);
extern void saas_negotiate_finish(const SaasHttpConfig *cfg, struct MHD_Connection *conn,
								  struct MHD_Response *resp, int status);

#endif							/* SAAS_HTTP_NEGOTIATE_H */
