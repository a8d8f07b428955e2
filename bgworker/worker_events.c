/*-------------------------------------------------------------------------
 *
 * worker_events.c
 *	  Applying ingested webhook events: the worker's first step each round.
 *
 * Each pending event is applied by saas._apply_event under a trusted
 * context of its organization, in the worker's transaction; the changes it
 * makes are marked as coming from the service (saas._in_sync()), so the
 * outbound triggers do not push them back.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "port/atomics.h"
#include "utils/builtins.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"
#include "worker_jobs.h"
#include "worker_shmem.h"

/* Set while the worker applies events: their changes are not pushed back. */
static bool wk_in_sync = false;

static SaasPlan plan_pending_events = {
	"SELECT org_id, service, event_id FROM saas.webhook_events WHERE applied_at IS NULL"
	" ORDER BY received_at, occurred_at LIMIT $1 FOR UPDATE SKIP LOCKED",
	1, {INT4OID},
	NULL, true				/* data-dependent: planned per use */
};

static SaasPlan plan_apply = {
	"SELECT saas._apply_event($1, $2, $3)",
	3, {UUIDOID, TEXTOID, TEXTOID}
};

/*
 * Where Citus is loaded (webhook_events distributed by org_id), the same
 * read without FOR UPDATE, which Citus runs only routed to one shard.
 */
static SaasPlan plan_pending_events_citus = {
	"SELECT org_id, service, event_id FROM saas.webhook_events WHERE applied_at IS NULL"
	" ORDER BY received_at, occurred_at LIMIT $1",
	1, {INT4OID}
	/*
	 * No lock across the shards: only the main worker applies events, and
	 * saas._apply_event locks its event (a router query) and skips one
	 * already applied.
	 */
};

/*
 * wk_apply_events: apply up to batch pending events, each under a trusted
 * context of its organization. Runs inside the caller's transaction.
 */
int
wk_apply_events(int batch)
{
	Datum		arg = Int32GetDatum(batch);
	uint64		n,
				i;
	SPITupleTable *events;

	if (saas_exec(saas_citus_loaded() ? &plan_pending_events_citus : &plan_pending_events,
				  &arg, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pending events");
	n = SPI_processed;
	events = SPI_tuptable;
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		args[3];
		pg_uuid_t	org;
		int			nest;

		org = *DatumGetUUIDP(SPI_getbinval(events->vals[i], events->tupdesc, 1, &isnull));
		args[0] = wk_uuid(&org);
		args[1] = SPI_getbinval(events->vals[i], events->tupdesc, 2, &isnull);
		args[2] = SPI_getbinval(events->vals[i], events->tupdesc, 3, &isnull);
		nest = saas_context_push_service(&org, TextDatumGetCString(args[1]));
		wk_in_sync = true;
		PG_TRY();
		{
			if (saas_exec(&plan_apply, args, NULL, false, 1) != SPI_OK_SELECT)
				elog(ERROR, "could not apply event");
		}
		PG_FINALLY();
		{
			wk_in_sync = false;
		}
		PG_END_TRY();
		saas_context_pop(nest);
	}
	if (n > 0)
		pg_atomic_fetch_add_u64(&saas_worker_shared->events_applied, n);
	return (int) n;
}

/* wk_set_in_sync: mark changes as coming from a service (sync.c). */
void
wk_set_in_sync(bool on)
{
	wk_in_sync = on;
}

PG_FUNCTION_INFO_V1(saas_in_sync);

/* SQL: saas._in_sync(): true while this process applies a service's change. */
Datum
saas_in_sync(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(wk_in_sync);
}
