/*-------------------------------------------------------------------------
 *
 * http.h
 *	  The HTTP router inside the extension (saas.http) and its error mapping.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_HTTP_H
#define SAAS_HTTP_H

#include "lib/stringinfo.h"
#include "utils/elog.h"

/* What the router answers: status, extra headers (JSON members), body. */
typedef struct SaasResponse
{
	int			status;
	StringInfoData headers;		/* "Name":"value" pairs, comma-separated */
	StringInfoData body;
	bool		has_body;
} SaasResponse;

extern void saas_response_header(SaasResponse *r, const char *name, const char *value);
extern int	saas_http_status_for_error(ErrorData *edata);
extern void saas_http_error_response(SaasResponse *r, ErrorData *edata,
									 const char *request_id);
extern void saas_http_simple_error(SaasResponse *r, int status, const char *message,
								   const char *details_json, const char *request_id);

#endif
