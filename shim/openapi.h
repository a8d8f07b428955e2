/*-------------------------------------------------------------------------
 *
 * openapi.h
 *	  Finding and loading the OpenAPI document served at /openapi.json.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_HTTP_OPENAPI_H
#define SAAS_HTTP_OPENAPI_H

#include <stdbool.h>
#include <stddef.h>

extern char *saas_openapi_default_path(void);
extern bool saas_openapi_load(const char *path, char **data, size_t *len);

#endif							/* SAAS_HTTP_OPENAPI_H */
