/*-------------------------------------------------------------------------
 *
 * static.h
 *	  The dashboard's and the documentation page's files (/admin/, /docs).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_HTTP_STATIC_H
#define SAAS_HTTP_STATIC_H

#include <stdbool.h>
#include <stddef.h>

#include <microhttpd.h>

#include "http_errors.h"

extern char *saas_static_default_dir(void);
extern char *saas_static_resolve(const char *dir);
extern bool saas_static_claims(const char *target);
extern struct MHD_Response *saas_static_answer(const char *root, struct MHD_Connection *conn,
											   const char *target, const char *method,
											   int *status, size_t *sent,
											   SaasRelayError *err);

#endif							/* SAAS_HTTP_STATIC_H */
