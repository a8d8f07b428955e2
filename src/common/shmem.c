/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  The shared memory registry of pg_saas, and its locking rules.
 *
 * Shared memory is set up the PostgreSQL 15 way: space and LWLock tranches
 * are requested from shmem_request_hook, structures are created or attached
 * from shmem_startup_hook under AddinShmemInitLock. Rather than one hook
 * that knows every subsystem, each subsystem registers itself from
 * _PG_init with saas_shmem_register (its size, how many LWLocks it needs,
 * and its init function); the hooks walk the registry. Each subsystem gets
 * its own NAMED LWLock tranche, so a lock is never "the index after another
 * subsystem's locks", and pg_stat_activity's wait_event names the owner.
 *
 * Only plain data, atomics and locks live there: no pointer or handle of a
 * single process, so a restarted worker never touches a dead one's state.
 * Without shared_preload_libraries nothing is registered and nothing exists;
 * every reader checks its own pointer and degrades gracefully (the rate
 * limiter allows, the status reports no worker).
 *
 * Locking rules (the one place they are written; the structures are in the
 * files named):
 *
 * - "pg_saas rate limiter" (ratelimit/ratelimit.c): RL_PARTITIONS LWLocks,
 *	 lock i protects the slots of partition i. A check takes exactly one
 *	 partition lock, exclusively, and takes no other lock while holding it.
 *	 The secret is written once at creation and read without a lock; the
 *	 counters are atomics, read and bumped without a lock.
 *
 * - "pg_saas worker" (bgworker/worker_shmem.c): one LWLock protecting the
 *	 circuit breakers and the worker processes' slots (pid, incarnation).
 *	 Only the worker processes take it exclusively (breaker.c,
 *	 worker_main.c); the status view, the metrics and
 *	 saas._worker_incarnations() take it shared to copy state out. It is
 *	 held for a copy or a few assignments, never across I/O, SPI or another
 *	 lock. The call counters next to it are atomics, outside the lock.
 *
 * - "pg_saas worker metrics" (bgworker/metrics_shmem.c): no lock; only
 *	 64-bit atomic counters, bumped by the worker, read by anyone.
 *
 * - "pg_saas worker link" (common/worker_link.c): no lock. Only a worker
 *	 process writes its slot's pid and PGPROC number (when it starts and
 *	 exits); backends read them to set the latches, and a stale read costs
 *	 at most one wakeup of nobody, or one missed wakeup that the worker's
 *	 poll catches.
 *
 * Order: no pg_saas LWLock is ever held while taking another LWLock or a
 * heavyweight lock, so there is no order to respect between them.
 * AddinShmemInitLock is taken only here, at startup, around the init
 * functions, which take no lock of their own.
 *
 * Heavyweight locks follow their own rules, kept next to the code: the
 * audit chain's advisory lock per organization (audit/audit_chain.c), the
 * last-admin rule's row locks (extension/sql/22_rules.sql), the job queue's
 * SKIP LOCKED claims (bgworker/worker_jobs.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"

#include "common/common.h"

#define SAAS_SHMEM_MAX_MODULES 8

static const SaasShmemModule *modules[SAAS_SHMEM_MAX_MODULES];
static int	nmodules = 0;
static bool hooks_installed = false;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* saas_shmem_request: ask the postmaster for every module's space and locks. */
static void
saas_shmem_request(void)
{
	int			i;

	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	for (i = 0; i < nmodules; i++)
	{
		RequestAddinShmemSpace(modules[i]->size());
		if (modules[i]->nlocks > 0)
			RequestNamedLWLockTranche(modules[i]->name, modules[i]->nlocks);
	}
}

/* saas_shmem_startup: create or attach every module's structures. */
static void
saas_shmem_startup(void)
{
	int			i;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	for (i = 0; i < nmodules; i++)
		modules[i]->init(modules[i]->nlocks > 0 ?
						 GetNamedLWLockTranche(modules[i]->name) : NULL);
	LWLockRelease(AddinShmemInitLock);
}

/*
 * saas_shmem_register: from _PG_init. Outside shared_preload_libraries
 * shared memory can no longer be requested: the module is then left out,
 * and its pointers stay NULL.
 */
void
saas_shmem_register(const SaasShmemModule *module)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	if (nmodules >= SAAS_SHMEM_MAX_MODULES)
		elog(ERROR, "pg_saas: too many shared memory modules");
	modules[nmodules++] = module;
}

/* saas_shmem_install_hooks: from _PG_init, once, only while preloading. */
void
saas_shmem_install_hooks(void)
{
	if (!process_shared_preload_libraries_in_progress || hooks_installed)
		return;
	hooks_installed = true;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = saas_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = saas_shmem_startup;
}
