/*-------------------------------------------------------------------------
 *
 * worker_shmem.c
 *	  The worker's shared state, and waking the worker when a transaction
 *	  that gave it work commits (instead of polling).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"

#include "shmem.h"
#include "worker_shmem.h"

SaasWorkerShared *saas_worker_shared = NULL;

const char *const saas_service_names[SAAS_NSERVICES] = {
	"user-service", "payment-service", "communication-service"
};

static bool wake_registered = false;
static bool wake_pending = false;

int
saas_service_index(const char *service)
{
	int			i;

	for (i = 0; i < SAAS_NSERVICES; i++)
		if (strcmp(saas_service_names[i], service) == 0)
			return i;
	return -1;
}

const char *
saas_breaker_state_name(int state)
{
	return state == CB_OPEN ? "open" : state == CB_HALF_OPEN ? "half_open" : "closed";
}

Size
saas_worker_shmem_size(void)
{
	return MAXALIGN(sizeof(SaasWorkerShared));
}

void
saas_worker_shmem_init(void)
{
	bool		found;

	saas_worker_shared = ShmemInitStruct("pg_saas worker", sizeof(SaasWorkerShared), &found);
	if (!found)
	{
		memset(saas_worker_shared, 0, sizeof(SaasWorkerShared));
		pg_atomic_init_u64(&saas_worker_shared->wakeups, 0);
		pg_atomic_init_u64(&saas_worker_shared->calls, 0);
		pg_atomic_init_u64(&saas_worker_shared->events_applied, 0);
	}
}

LWLock *
saas_worker_lock(void)
{
	return &saas_lwlocks()[SAAS_RL_PARTITIONS].lock;
}

/* saas_worker_running: whether the main worker (slot 0) is up. */
bool
saas_worker_running(void)
{
	return saas_worker_shared != NULL && saas_worker_shared->procs[0].pid != 0;
}

/* worker_set_latch: wake every worker process there is. */
static void
worker_set_latch(void)
{
	int			i;

	if (saas_worker_shared == NULL)
		return;
	for (i = 0; i < WK_MAX_PROCS; i++)
	{
		int			procno = saas_worker_shared->procs[i].pgprocno;

		if (saas_worker_shared->procs[i].pid != 0 &&
			procno >= 0 && procno < (int) ProcGlobal->allProcCount)
			SetLatch(&ProcGlobal->allProcs[procno].procLatch);
	}
	pg_atomic_fetch_add_u64(&saas_worker_shared->wakeups, 1);
}

static void
worker_xact_callback(XactEvent event, void *arg)
{
	if (!wake_pending)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		wake_pending = false;
		worker_set_latch();
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		wake_pending = false;
}

/*
 * saas_worker_wake_at_commit: the current transaction gave the worker
 * work; wake it once the work is visible (after commit), not before.
 */
void
saas_worker_wake_at_commit(void)
{
	if (!wake_registered)
	{
		RegisterXactCallback(worker_xact_callback, NULL);
		wake_registered = true;
	}
	wake_pending = true;
}
