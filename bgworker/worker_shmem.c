/*-------------------------------------------------------------------------
 *
 * worker_shmem.c
 *	  The worker's shared state (breakers, counters), registered with the
 *	  extension's shared memory registry under the "pg_saas worker" LWLock
 *	  tranche.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/shmem.h"

#include "worker_shmem.h"

SaasWorkerShared *saas_worker_shared = NULL;
static LWLock *worker_lock = NULL;

/* saas_breaker_state_name: a breaker state as the status view and logs spell it. */
const char *
saas_breaker_state_name(int state)
{
	return state == CB_OPEN ? "open" : state == CB_HALF_OPEN ? "half_open" : "closed";
}

static Size
worker_shmem_size(void)
{
	return MAXALIGN(sizeof(SaasWorkerShared));
}

/* worker_shmem_init: create or attach the breakers (shared memory registry). */
static void
worker_shmem_init(LWLockPadded *locks)
{
	bool		found;

	worker_lock = &locks[0].lock;
	saas_worker_shared = ShmemInitStruct("pg_saas worker", sizeof(SaasWorkerShared), &found);
	if (!found)
	{
		memset(saas_worker_shared, 0, sizeof(SaasWorkerShared));
		pg_atomic_init_u64(&saas_worker_shared->calls, 0);
		pg_atomic_init_u64(&saas_worker_shared->events_applied, 0);
	}
}

static const SaasShmemModule worker_shmem = {
	"pg_saas worker", worker_shmem_size, 1, worker_shmem_init
};

/*
 * saas_worker_shmem_register: from _PG_init (preload only): the worker's
 * state, its metrics, and the extension's link to it.
 */
void
saas_worker_shmem_register(void)
{
	saas_shmem_register(&worker_shmem);
	saas_metrics_shmem_register();
	saas_worker_link_register();
}

/*
 * saas_worker_lock: the "pg_saas worker" LWLock (rules in src/common/shmem.c).
 */
LWLock *
saas_worker_lock(void)
{
	return worker_lock;
}
