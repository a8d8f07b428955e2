/*-------------------------------------------------------------------------
 *
 * request_id.h
 *	  The X-Request-Id of a request: the client's when sane, else a new one.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_HTTP_REQUEST_ID_H
#define SAAS_HTTP_REQUEST_ID_H

#include <stdbool.h>

/* Longest request id taken from a client (API contract: 1..128 chars). */
#define SAAS_REQUEST_ID_MAX 128

extern bool saas_request_id_is_sane(const char *id);
extern void saas_request_id_generate(char out[SAAS_REQUEST_ID_MAX + 1]);
extern void saas_request_id_choose(const char *client_id,
								   char out[SAAS_REQUEST_ID_MAX + 1]);

#endif							/* SAAS_HTTP_REQUEST_ID_H */
