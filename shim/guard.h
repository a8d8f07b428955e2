/*-------------------------------------------------------------------------
 *
 * guard.h
 *	  Connection limits (in total and per client address) and the absolute
 *	  deadlines of a request's headers and body.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_HTTP_GUARD_H
#define SAAS_HTTP_GUARD_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

#include "common.h"
#include "http_errors.h"
#include "request_id.h"

/* Where a connection's current request is; each phase has its own deadline. */
typedef enum SaasPhase
{
	SAAS_PHASE_IDLE,			/* no byte of a request yet: idle timeout only */
	SAAS_PHASE_HEADERS,			/* request line and headers arriving */
	SAAS_PHASE_BODY,			/* headers in, body arriving */
	SAAS_PHASE_ANSWER			/* request in (or answered early): no deadline */
} SaasPhase;

typedef struct SaasGuard SaasGuard;

/*
 * One accepted connection.  The fields above "request" belong to the guard
 * and change under its lock only (guard.c); "request" is the relay's and
 * only the connection's own thread touches it.
 */
typedef struct SaasConn
{
	struct SaasConn *prev;
	struct SaasConn *next;
	int			fd;
	uint8_t		client[16];		/* the address the per-client limit counts */
	char		ip[INET6_ADDRSTRLEN];
	SaasPhase	phase;
	int64_t		phase_start_us;
	uint64_t	bytes_idle;		/* TCP bytes received when it went idle */
	bool		bytes_known;	/* TCP_INFO gave that count */
	bool		request_begun;	/* the relay holds a request (URI callback ran) */
	bool		cut;			/* a deadline passed: 408 sent, socket shut */
	SaasPhase	cut_phase;
	char		rid[SAAS_REQUEST_ID_MAX + 1];	/* request id, once known */

	void	   *request;		/* the relay's state of the current request */
} SaasConn;

extern SaasGuard *saas_guard_create(const SaasHttpConfig *cfg);
extern bool saas_guard_start(SaasGuard *g);
extern void saas_guard_destroy(SaasGuard *g);
extern int	saas_guard_mhd_limit(const SaasHttpConfig *cfg);

extern SaasConn *saas_guard_open(SaasGuard *g, struct MHD_Connection *conn);
extern void saas_guard_close(SaasGuard *g, SaasConn *c);
extern bool saas_guard_enter(SaasGuard *g, SaasConn *c, SaasPhase phase,
							 const char *rid);
extern long saas_guard_answer(SaasGuard *g, SaasConn *c, SaasRelayError err,
							  const char *rid);
extern bool saas_guard_was_cut(SaasGuard *g, SaasConn *c, SaasPhase *phase,
							   char rid[SAAS_REQUEST_ID_MAX + 1]);

#endif							/* SAAS_HTTP_GUARD_H */
