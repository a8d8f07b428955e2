/*-------------------------------------------------------------------------
 *
 * worker_api.h
 *	  What the rest of the extension needs from the background worker:
 *	  registration, shared memory, waking it at commit, and breaker state.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_WORKER_API_H
#define SAAS_WORKER_API_H

#include "postgres.h"

#define SAAS_NSERVICES 3

extern const char *const saas_service_names[SAAS_NSERVICES];
extern int	saas_service_index(const char *service);

extern void saas_worker_define_gucs(void);
extern void saas_worker_register(void);
extern Size saas_worker_shmem_size(void);
extern void saas_worker_shmem_init(void);
extern void saas_worker_wake_at_commit(void);
extern bool saas_worker_running(void);

/* Circuit breaker states, as stored in shared memory. */
#define CB_CLOSED		0
#define CB_OPEN			1
#define CB_HALF_OPEN	2
extern const char *saas_breaker_state_name(int state);

#endif
