/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared memory hooks (the PostgreSQL 15 way): space and an LWLock
 *	  tranche are requested from shmem_request_hook, structures are created
 *	  or attached from shmem_startup_hook under AddinShmemInitLock.
 *
 * Only plain data, atomics and locks live there: no pointer or handle of a
 * single process, so a restarted worker never touches a dead one's state.
 * Without shared_preload_libraries none of this exists; callers check
 * saas_ratelimit_available() and the like and degrade gracefully.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"

#include "shmem.h"
#include "worker_api.h"
#include "metrics_shmem.h"

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static LWLockPadded *saas_locks = NULL;

static void
saas_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(saas_ratelimit_shmem_size());
	RequestAddinShmemSpace(saas_worker_shmem_size());
	RequestAddinShmemSpace(saas_metrics_shmem_size());
	RequestNamedLWLockTranche(SAAS_LWLOCK_TRANCHE, SAAS_LWLOCKS);
}

static void
saas_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	saas_locks = GetNamedLWLockTranche(SAAS_LWLOCK_TRANCHE);
	saas_ratelimit_shmem_init();
	saas_worker_shmem_init();
	saas_metrics_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

/* saas_shmem_install_hooks: from _PG_init, only while preloading. */
void
saas_shmem_install_hooks(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = saas_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = saas_shmem_startup;
}

LWLockPadded *
saas_lwlocks(void)
{
	return saas_locks;
}
