/*-------------------------------------------------------------------------
 *
 * checks.h
 *	  What the relay checks in a request's head before it goes on: target,
 *	  header fields, method, body framing and type.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_HTTP_CHECKS_H
#define SAAS_HTTP_CHECKS_H

#include <stdbool.h>

#include <microhttpd.h>

#include "http_errors.h"

extern void saas_check_shield(struct MHD_Connection *conn, const char *uri);
extern bool saas_check_is_decoy(const char *key);
extern bool saas_check_target_size(const char *target, SaasRelayError *err);
extern bool saas_check_target_form(const char *target);
extern bool saas_check_headers(struct MHD_Connection *conn, SaasRelayError *err);
extern bool saas_check_method(const char *method);
extern bool saas_check_framing(struct MHD_Connection *conn, const char *version,
							   SaasRelayError *err);
extern bool saas_check_json(const char *ctype);

#endif							/* SAAS_HTTP_CHECKS_H */
