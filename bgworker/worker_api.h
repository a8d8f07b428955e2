/*-------------------------------------------------------------------------
 *
 * worker_api.h
 *	  What the background worker offers the module entry (../pg_saas.c):
 *	  registering its shared memory and itself; and what bgworker/ files
 *	  share about breaker states. The worker uses the extension's
 *	  interfaces (src/); nothing in src/ includes this file.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_WORKER_API_H
#define SAAS_WORKER_API_H

#include "postgres.h"

#include "common/common.h"

extern void saas_worker_define_gucs(void);
extern void saas_worker_register(void);
extern void saas_worker_shmem_register(void);

/* Circuit breaker states, as stored in shared memory. */
#define CB_CLOSED		0
#define CB_OPEN			1
#define CB_HALF_OPEN	2
extern const char *saas_breaker_state_name(int state);

#endif
