/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  pg_saas's shared memory: requested at preload, attached at startup.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_SHMEM_H
#define SAAS_SHMEM_H

#include "storage/lwlock.h"

#define SAAS_LWLOCK_TRANCHE "pg_saas"
#define SAAS_RL_PARTITIONS 16
#define SAAS_LWLOCKS (SAAS_RL_PARTITIONS + 1)	/* rate limiter partitions + breaker */

extern void saas_shmem_install_hooks(void);
extern LWLockPadded *saas_lwlocks(void);

/* Subsystems that live in shared memory. */
extern Size saas_ratelimit_shmem_size(void);
extern void saas_ratelimit_shmem_init(void);
extern bool saas_ratelimit_available(void);

#endif
