/*-------------------------------------------------------------------------
 *
 * worker_main.c
 *	  The pg_saas background worker: applies ingested webhook events and
 *	  drains the job queue of outbound calls, behind circuit breakers.
 *
 * The main loop is a sequence of named steps, each in its own transaction
 * (or none), as in PostgreSQL's worker_spi:
 *
 *	 1. wk_step_events		(transaction) apply pending events; recover the
 *							jobs of a worker process that is gone
 *	 2. wk_claim_and_start	(transaction) record the calls completed since
 *							the last round, claim due jobs for every service
 *							with room, commit, then start their calls
 *	 3. wk_step_wait		(no transaction) let calls progress until one
 *							completes, new work arrives, or a job is due
 *	 4. wk_sync_round		(transactions before and after its reads) pull
 *							sync of users; its page reads are calls in flight
 *							like the jobs', never waited for here
 *	 5. wk_retention_step	(transactions) delete finished work past its
 *							retention
 *
 * saas.worker_processes (1 by default) runs that loop in more processes:
 * slot 0, "pg_saas worker", does all of it; the others, "pg_saas drainer",
 * only steps 2 and 3 (and step 1's checks, without events, once a second).
 * A round's SQL and its calls take about the same CPU, one after the other
 * in one process; more processes overlap them where there are idle cores
 * (with the services on the same two cores, as in the benchmark, one
 * process drained faster: its rounds are larger). Claims are FOR UPDATE SKIP LOCKED, breakers and pauses live in
 * shared memory, and each process keeps to its share of a service's
 * max_in_flight, so they need not talk to each other.
 *
 * Calls stay in flight across iterations (libcurl's multi handle,
 * http_client.c), so a slow service never holds up the recording of
 * another's calls nor the claiming of new ones. Between iterations with
 * nothing in flight the worker sleeps on its latch, woken by committing
 * transactions that gave it work, or by a timeout.
 *
 * The worker never crashes on a missing extension: each round first checks
 * that pg_saas exists, and takes its tables with conditional locks, so
 * DROP EXTENSION neither fails nor waits for it. It exits 1 on errors so
 * the postmaster restarts it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "port.h"

#include "pg_saas.h"
#include "breaker.h"
#include "http_client.h"
#include "worker_jobs.h"
#include "worker_shmem.h"
#include "retention.h"

PGDLLEXPORT void saas_worker_main(Datum arg);

#define WK_IDLE_MS			1000
#define WK_EVENT_BATCH		500

int			saas_worker_processes = 1;

/* This process's slot: 0 for the main worker, 1.. for the other drainers. */
int			wk_slot = 0;

/*
 * saas_worker_register: from _PG_init while preloading. Slot 0 is the main
 * worker ("pg_saas worker"): events, claims and calls, sync, retention.
 * Slots 1.. ("pg_saas drainer") only claim, call and record jobs: the
 * queue's SQL and its HTTP calls take about the same CPU per job, and one
 * process does them one after the other, so more processes use the cores
 * that one leaves idle. Claims are FOR UPDATE SKIP LOCKED, so they never
 * take the same job; each process gets its share of a service's
 * max_in_flight (wk_room).
 */
void
saas_worker_register(void)
{
	int			i;

	for (i = 0; i < saas_worker_processes; i++)
	{
		BackgroundWorker w;

		memset(&w, 0, sizeof(w));
		w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		w.bgw_start_time = BgWorkerStart_RecoveryFinished;
		w.bgw_restart_time = 5;
		w.bgw_main_arg = Int32GetDatum(i);
		snprintf(w.bgw_library_name, BGW_MAXLEN, "pg_saas");
		snprintf(w.bgw_function_name, BGW_MAXLEN, "saas_worker_main");
		if (i == 0)
		{
			snprintf(w.bgw_name, BGW_MAXLEN, "pg_saas worker");
			snprintf(w.bgw_type, BGW_MAXLEN, "pg_saas worker");
		}
		else
		{
			snprintf(w.bgw_name, BGW_MAXLEN, "pg_saas drainer %d", i);
			snprintf(w.bgw_type, BGW_MAXLEN, "pg_saas drainer");
		}
		RegisterBackgroundWorker(&w);
	}
}

/*
 * saas_worker_define_gucs: from _PG_init. Fixed at server start; loaded
 * later (no worker), it is merely informational, like saas.database.
 */
void
saas_worker_define_gucs(void)
{
	DefineCustomIntVariable("saas.worker_processes",
							"Background processes that drain the job queue (the first also applies "
							"events, syncs and prunes).",
							NULL, &saas_worker_processes, 1, 1, WK_MAX_PROCS,
							process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SIGHUP,
							0, NULL, NULL, NULL);
}

/* Cleared at exit, so nobody sets a latch of a dead process or keeps its jobs. */
static void
wk_detach(int code, Datum arg)
{
	SaasWorkerSlot *me = &saas_worker_shared->procs[wk_slot];

	saas_worker_link_detach(wk_slot);
	LWLockAcquire(saas_worker_lock(), LW_EXCLUSIVE);
	if (me->incarnation == wk_incarnation)
		me->incarnation = 0;
	LWLockRelease(saas_worker_lock());
}

/* The memory context current before wk_xact_begin, restored by wk_xact_commit. */
static MemoryContext wk_caller_cxt = NULL;

/*
 * wk_xact_begin: the worker_spi transaction sequence (statement timestamp,
 * transaction, SPI, snapshot) and the activity shown in pg_stat_activity.
 * Returns whether pg_saas is there and its queue can be used; when it is
 * not, the caller commits at once and does nothing.
 */
bool
wk_xact_begin(const char *activity)
{
	wk_caller_cxt = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
	return wk_extension_ready();
}

/*
 * wk_xact_commit: finish SPI, commit, report statistics, and go back to the
 * caller's memory context: CommitTransactionCommand leaves TopMemoryContext
 * current, where everything a round allocates would leak.
 */
void
wk_xact_commit(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(wk_caller_cxt);
}

/* The last wk_extension_ready found a Citus worker node (for the log line). */
static bool wk_on_citus_worker = false;

/*
 * wk_citus_worker_node: this database belongs to a Citus worker node. The
 * queue is the coordinator's: on a worker node, pg_saas's tables are shells
 * and shards that the coordinator's worker reaches (docs/scale-out.md).
 */
static bool
wk_citus_worker_node(void)
{
	bool		isnull;
	Datum		d;

	if (!OidIsValid(get_extension_oid("citus", true)))
		return false;
	if (SPI_execute("SELECT groupid OPERATOR(pg_catalog.<>) 0 FROM pg_catalog.pg_dist_local_group",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		return false;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return !isnull && DatumGetBool(d);
}

/*
 * wk_extension_ready: pg_saas is installed, this is not a Citus worker node,
 * and its queue can be locked without waiting (DROP EXTENSION in progress
 * holds it exclusively).
 */
bool
wk_extension_ready(void)
{
	Oid			nsp;
	Oid			jobs,
				events;

	wk_on_citus_worker = false;
	if (!OidIsValid(get_extension_oid("pg_saas", true)))
		return false;
	if (wk_citus_worker_node())
	{
		wk_on_citus_worker = true;
		return false;
	}
	nsp = get_namespace_oid("saas", true);
	if (!OidIsValid(nsp))
		return false;
	jobs = get_relname_relid("jobs", nsp);
	events = get_relname_relid("webhook_events", nsp);
	if (!OidIsValid(jobs) || !OidIsValid(events))
		return false;
	if (!ConditionalLockRelationOid(jobs, RowExclusiveLock))
		return false;
	if (!ConditionalLockRelationOid(events, RowExclusiveLock))
		return false;
	return true;
}

/*
 * wk_database_being_dropped: DROP DATABASE holds an exclusive lock on the
 * database object while it waits for the database's sessions to end; the
 * worker is one of them, so it steps aside (and is restarted, and waits,
 * until the database exists again).
 */
static bool
wk_database_being_dropped(void)
{
	static int64 last = 0;
	int64		now = GetCurrentTimestamp();
	char		sql[256];
	bool		dropping = false;

	if (now - last < USECS_PER_SEC)
		return false;
	last = now;
	snprintf(sql, sizeof(sql),
			 "SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'object' AND database = 0"
			 " AND classid = %u AND objid = %u AND mode = 'AccessExclusiveLock'",
			 DatabaseRelationId, MyDatabaseId);
	if (SPI_execute(sql, true, 1) == SPI_OK_SELECT && SPI_processed > 0)
		dropping = true;
	return dropping;
}

/*
 * wk_step_events: in one transaction, apply pending events and bring back
 * the jobs of a worker that is gone (at once for the first round that sees
 * pg_saas, by lease after that). Returns whether pg_saas is ready; sets
 * *applied to the number of events applied.
 */
static bool
wk_step_events(int *applied)
{
	static bool took_over = false;
	bool		ready;

	*applied = 0;
	ready = wk_xact_begin(wk_slot == 0 ? "pg_saas worker: applying events"
						  : "pg_saas drainer: checking the queue");
	if (wk_database_being_dropped())
	{
		elog(LOG, "pg_saas worker: database \"%s\" is being dropped; the worker leaves it",
			 saas_database);
		proc_exit(1);
	}
	if (ready)
	{
		if (wk_slot == 0)
			*applied = wk_apply_events(WK_EVENT_BATCH);
		if (wk_slot == 0 || !took_over)
			wk_recover_leases(!took_over);
		took_over = true;
	}
	else
		took_over = false;		/* a new pg_saas may have jobs of anyone */
	wk_xact_commit();
	return ready;
}

/*
 * wk_step_checked: the main worker's events step every round; a drainer,
 * which applies no events, runs it (pg_saas there, the database not being
 * dropped, the first take-over) once a second, since its claim transaction
 * checks pg_saas too.
 */
static bool
wk_step_checked(int *applied)
{
	static int64 last = 0;
	static bool ready = false;
	int64		now = GetCurrentTimestamp();

	*applied = 0;
	if (wk_slot == 0 || !ready || now - last >= USECS_PER_SEC)
	{
		ready = wk_step_events(applied);
		last = now;
	}
	return ready;
}

/*
 * wk_step_wait: with calls in flight, drive them until one completes, the
 * latch is set or wait_ms passes; with none, sleep on the latch.
 */
static void
wk_step_wait(long wait_ms)
{
	if (wk_http_in_flight_total() > 0)
		(void) wk_http_drive(wait_ms, true);
	else if (wait_ms > 0 && !wk_http_has_done())
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms, PG_WAIT_EXTENSION);
}

/*
 * saas_worker_main: every worker process's entry point (exported: the
 * postmaster finds it by name; arg is the slot). Announces itself, then
 * loops as the file's header says, sleeping on its latch between rounds.
 */
void
saas_worker_main(Datum arg)
{
	MemoryContext round_cxt;
	int			warned = 0;		/* what the last "waiting" line said: 1 no pg_saas, 2 a Citus worker node */

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(saas_database, NULL, 0);

	/*
	 * Every statement of the worker is an index walk by design (the claim's
	 * descent per organization, records by primary key, retention by
	 * finished_at). Its plans are kept for the life of the process, and a
	 * plan made while the queue was empty is a sequential scan: a backlog of
	 * 100k jobs that arrives before the next ANALYZE then made each round
	 * scan the whole queue (an organization's jobs waited 0.4 s instead of
	 * milliseconds, test/bench/engine_6_fairness.sh). So the worker never
	 * plans a sequential scan where an index can serve. Nor does it JIT:
	 * its statements take microseconds, and a sequential scan it cannot
	 * avoid (a table with no index for it) now costs past jit_above_cost,
	 * which compiled each such statement for tens of milliseconds.
	 */
	SetConfigOption("enable_seqscan", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * Where Citus is loaded, the worker's transactions read across shards
	 * and then write a reference table (an applied subscription sets the
	 * organization's tier), which Citus refuses after a parallel read: one
	 * connection per node, as the API's operations (spi_util.c).
	 */
	if (saas_citus_loaded())
		SetConfigOption("citus.multi_shard_modify_mode", "sequential", PGC_SUSET, PGC_S_OVERRIDE);

	wk_slot = DatumGetInt32(arg);
	if (wk_slot < 0 || wk_slot >= WK_MAX_PROCS)
		elog(ERROR, "pg_saas worker: no slot %d", wk_slot);

	/*
	 * A new incarnation: the lease owner of every job this process claims.
	 * It is in shared memory before the first claim, so another process's
	 * take-over (which spares the incarnations found there) never takes a
	 * job of a live process.
	 */
	if (!pg_strong_random(&wk_incarnation, sizeof(wk_incarnation)) || wk_incarnation == 0)
		wk_incarnation = ((int64) MyProcPid << 32) ^ GetCurrentTimestamp();
	LWLockAcquire(saas_worker_lock(), LW_EXCLUSIVE);
	saas_worker_shared->procs[wk_slot].incarnation = wk_incarnation;
	LWLockRelease(saas_worker_lock());
	saas_worker_link_attach(wk_slot);
	before_shmem_exit(wk_detach, (Datum) 0);

	wk_http_init();
	round_cxt = AllocSetContextCreate(TopMemoryContext, "pg_saas worker round",
									  ALLOCSET_DEFAULT_SIZES);
	if (wk_slot == 0)
		elog(LOG, "pg_saas worker started in database \"%s\"", saas_database);
	else
		elog(LOG, "pg_saas drainer %d started in database \"%s\"", wk_slot, saas_database);

	for (;;)
	{
		long		wait_ms = WK_IDLE_MS;
		int			applied;

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextReset(round_cxt);
		MemoryContextSwitchTo(round_cxt);

		if (!wk_step_checked(&applied))
		{
			int			why = wk_on_citus_worker ? 2 : 1;

			if (warned != why && why == 2 && wk_slot == 0)
				elog(LOG, "pg_saas worker: \"%s\" is a Citus worker node's database, where the queue never runs; waiting",
					 saas_database);
			else if (warned != why && wk_slot == 0)
				elog(LOG, "pg_saas worker: extension pg_saas is not installed in \"%s\"; waiting",
					 saas_database);
			warned = why;
			/* Calls still in flight finish (and are dropped with their jobs). */
			wk_step_wait(5000);
			(void) wk_record_finished();
			MemoryContextSwitchTo(TopMemoryContext);
			continue;
		}
		warned = 0;

		(void) wk_claim_and_start(&wait_ms);
		wk_step_wait(applied > 0 ? 0 : wait_ms);
		if (wk_slot == 0)
		{
			(void) wk_sync_round();
			wk_retention_step();
		}

		MemoryContextSwitchTo(TopMemoryContext);
	}
}
