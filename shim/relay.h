/*-------------------------------------------------------------------------
 *
 * relay.h
 *	  The HTTP side: libmicrohttpd callbacks that turn a request into a
 *	  saas.http() call and its row into the response.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_HTTP_RELAY_H
#define SAAS_HTTP_RELAY_H

#include <stdatomic.h>
#include <stdbool.h>

#include <microhttpd.h>

#include "common.h"
#include "guard.h"
#include "pool.h"

/* State shared by all request threads; main.c owns it. */
typedef struct SaasRelay
{
	const SaasHttpConfig *config;
	SaasPool   *pool;
	SaasGuard  *guard;			/* connection limits and deadlines */
	char	   *openapi;		/* the document, or NULL when not installed */
	size_t		openapi_len;
	char	   *static_root;	/* canonical --static-dir, or NULL: pages 404 */
	atomic_bool draining;		/* shutting down: answer with Connection: close */
	atomic_int	active;			/* requests begun and not yet completed */
} SaasRelay;

extern void *saas_relay_begin(void *cls, const char *uri, struct MHD_Connection *conn);
extern enum MHD_Result saas_relay_handle(void *cls, struct MHD_Connection *conn,
										 const char *url, const char *method,
										 const char *version, const char *upload_data,
										 size_t *upload_data_size, void **req_cls);
extern void saas_relay_completed(void *cls, struct MHD_Connection *conn,
								 void **req_cls, enum MHD_RequestTerminationCode toe);
extern void saas_relay_connection(void *cls, struct MHD_Connection *conn,
								  void **socket_context,
								  enum MHD_ConnectionNotificationCode toe);

#endif							/* SAAS_HTTP_RELAY_H */
