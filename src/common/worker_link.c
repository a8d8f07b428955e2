/*-------------------------------------------------------------------------
 *
 * worker_link.c
 *	  What the extension knows of its background worker: whether it runs,
 *	  and how to wake it when a transaction gave it work (instead of it
 *	  polling).
 *
 * The extension owns this small shared struct and the worker's processes
 * write to it (saas_worker_link_attach when one starts, _detach when it
 * exits), so the worker depends on the extension and never the reverse:
 * health checks and webhook ingestion need nothing from bgworker/. Slot 0
 * is the main worker; the others (saas.worker_processes) drain the queue.
 * Locking: see shmem.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"

#include "common/common.h"

typedef struct SaasWorkerLinkSlot
{
	int			pid;			/* 0: not running */
	int			pgprocno;		/* index into ProcGlobal, never a pointer */
} SaasWorkerLinkSlot;

typedef struct SaasWorkerLink
{
	SaasWorkerLinkSlot procs[SAAS_WORKER_MAX_PROCS];
	pg_atomic_uint64 wakeups;	/* commits that woke the worker */
} SaasWorkerLink;

static SaasWorkerLink *wlink = NULL;
static bool wake_registered = false;
static bool wake_pending = false;

static Size
link_shmem_size(void)
{
	return MAXALIGN(sizeof(SaasWorkerLink));
}

/* link_shmem_init: create or attach the link (shared memory registry). */
static void
link_shmem_init(LWLockPadded *locks)
{
	bool		found;

	wlink = ShmemInitStruct("pg_saas worker link", sizeof(SaasWorkerLink), &found);
	if (!found)
	{
		memset(wlink, 0, sizeof(SaasWorkerLink));
		pg_atomic_init_u64(&wlink->wakeups, 0);
	}
}

static const SaasShmemModule link_shmem = {
	"pg_saas worker link", link_shmem_size, 0, link_shmem_init
};

/* saas_worker_link_register: from _PG_init (preload only). */
void
saas_worker_link_register(void)
{
	saas_shmem_register(&link_shmem);
}

/* saas_worker_link_attach: a worker process announces itself in its slot. */
void
saas_worker_link_attach(int slot)
{
	if (wlink == NULL || slot < 0 || slot >= SAAS_WORKER_MAX_PROCS)
		return;
	wlink->procs[slot].pgprocno = MyProc->pgprocno;
	pg_write_barrier();
	wlink->procs[slot].pid = MyProcPid;
}

/* saas_worker_link_detach: it leaves (only if the slot is still its own). */
void
saas_worker_link_detach(int slot)
{
	if (wlink != NULL && slot >= 0 && slot < SAAS_WORKER_MAX_PROCS &&
		wlink->procs[slot].pid == MyProcPid)
		wlink->procs[slot].pid = 0;
}

/* saas_worker_running: whether the main worker (slot 0) is up. */
bool
saas_worker_running(void)
{
	return wlink != NULL && wlink->procs[0].pid != 0;
}

/* saas_worker_wakeups: commits that woke the worker, since server start. */
uint64
saas_worker_wakeups(void)
{
	return wlink != NULL ? pg_atomic_read_u64(&wlink->wakeups) : 0;
}

/* worker_set_latch: wake every worker process there is. */
static void
worker_set_latch(void)
{
	int			i;

	if (wlink == NULL)
		return;
	for (i = 0; i < SAAS_WORKER_MAX_PROCS; i++)
	{
		int			procno;

		if (wlink->procs[i].pid == 0)
			continue;
		pg_read_barrier();
		procno = wlink->procs[i].pgprocno;
		if (procno >= 0 && procno < (int) ProcGlobal->allProcCount)
			SetLatch(&ProcGlobal->allProcs[procno].procLatch);
	}
	pg_atomic_fetch_add_u64(&wlink->wakeups, 1);
}

/* worker_xact_callback: set the latch once the work is committed. */
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
