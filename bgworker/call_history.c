/*-------------------------------------------------------------------------
 *
 * call_history.c
 *	  The worker's calls per service and minute over the last hour, in
 *	  shared memory, read by saas._call_history() for the dashboard's chart
 *	  (GET /integrations/calls, extension/sql/92_dashboard.sql).
 *
 * The counters of metrics_shmem.c only ever grow (Prometheus wants them
 * so); a chart of the last hour needs them by minute.  Each service has a
 * ring of CH_SLOTS minutes; a slot holds the minute it counts (minutes
 * since the PostgreSQL epoch), and is reset when a call of a newer minute
 * lands in it.  A reader skips slots older than the hour it asks for, so a
 * quiet service's stale slots never show.
 *
 * Locking: one spinlock per service, held for a few instructions by the
 * recording call and by the reader's copy of the ring; never across
 * anything that can fail.  Only plain data lives here.
 *
 * The latency is what metrics_shmem.c puts in its histogram: calls that
 * reached the wire only (a request that could not be made took no time at
 * the service); such calls still count as calls, and as errors.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "common/common.h"
#include "call_history.h"

PG_FUNCTION_INFO_V1(saas_call_history);

#define CH_SLOTS	64			/* more than the hour a reader asks for */

typedef struct ChSlot
{
	int64		minute;			/* minutes since 2000-01-01 UTC; 0: never used */
	uint64		calls;
	uint64		errors;			/* every outcome but a 2xx */
	uint64		timed;			/* calls whose latency counts */
	uint64		lat_sum_ms;
	uint32		lat_max_ms;
} ChSlot;

typedef struct ChService
{
	slock_t		mutex;
	ChSlot		slots[CH_SLOTS];
} ChService;

typedef struct ChShared
{
	ChService	svc[SAAS_NSERVICES];
} ChShared;

static ChShared *ch = NULL;

static Size
ch_shmem_size(void)
{
	return MAXALIGN(sizeof(ChShared));
}

/* Under AddinShmemInitLock, from the shared memory startup hook. */
static void
ch_shmem_init(LWLockPadded *locks)
{
	bool		found;

	(void) locks;
	ch = ShmemInitStruct("pg_saas call history", sizeof(ChShared), &found);
	if (!found)
	{
		memset(ch, 0, sizeof(ChShared));
		for (int s = 0; s < SAAS_NSERVICES; s++)
			SpinLockInit(&ch->svc[s].mutex);
	}
}

static const SaasShmemModule ch_module = {
	"pg_saas call history", ch_shmem_size, 0, ch_shmem_init
};

/* saas_call_history_register: from saas_metrics_shmem_register. */
void
saas_call_history_register(void)
{
	saas_shmem_register(&ch_module);
}

static int64
ch_minute_now(void)
{
	return (int64) (GetCurrentTimestamp() / USECS_PER_MINUTE);
}

/*
 * ch_record_call: one finished call (a job's or the pull sync's), counted in
 * its minute.  Lock-cheap, a no-op without shared memory.
 */
void
ch_record_call(const WkCall *c)
{
	int64		minute = ch_minute_now();
	ChService  *sv;
	ChSlot	   *slot;
	bool		timed;
	uint32		ms;

	if (ch == NULL || c->svc < 0 || c->svc >= SAAS_NSERVICES || minute <= 0)
		return;
	timed = c->outcome != WK_UNSENDABLE && c->outcome != WK_LOCAL_ERROR;
	ms = (uint32) Max(c->latency_ms, 0);
	sv = &ch->svc[c->svc];
	slot = &sv->slots[minute % CH_SLOTS];
	SpinLockAcquire(&sv->mutex);
	if (slot->minute != minute)
	{
		if (slot->minute > minute)
		{
			/* the clock went back: never overwrite a newer minute */
			SpinLockRelease(&sv->mutex);
			return;
		}
		memset(slot, 0, sizeof(ChSlot));
		slot->minute = minute;
	}
	slot->calls++;
	if (c->outcome != WK_OK)
		slot->errors++;
	if (timed)
	{
		slot->timed++;
		slot->lat_sum_ms += ms;
		if (ms > slot->lat_max_ms)
			slot->lat_max_ms = ms;
	}
	SpinLockRelease(&sv->mutex);
}

/*
 * saas_call_history: saas._call_history(minutes) RETURNS TABLE (service,
 * minute, calls, errors, latency_avg_ms, latency_max_ms): the minutes of
 * the last `minutes` (1-60) that saw calls, per service.  Private: the
 * public reader is saas.integration_calls_json(), which checks the role.
 */
Datum
saas_call_history(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int32		minutes = PG_GETARG_INT32(0);
	int64		now = ch_minute_now();

	if (minutes < 1 || minutes > 60)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("minutes must be from 1 to 60")));
	InitMaterializedSRF(fcinfo, 0);
	if (ch == NULL)
		PG_RETURN_VOID();		/* not preloaded: no worker, no calls */
	for (int s = 0; s < SAAS_NSERVICES; s++)
	{
		ChSlot		copy[CH_SLOTS];

		SpinLockAcquire(&ch->svc[s].mutex);
		memcpy(copy, ch->svc[s].slots, sizeof(copy));
		SpinLockRelease(&ch->svc[s].mutex);
		for (int i = 0; i < CH_SLOTS; i++)
		{
			Datum		values[6];
			bool		nulls[6] = {false, false, false, false, false, false};

			if (copy[i].minute <= 0 || copy[i].minute > now ||
				copy[i].minute <= now - minutes)
				continue;
			values[0] = CStringGetTextDatum(saas_service_names[s]);
			values[1] = TimestampTzGetDatum((TimestampTz) (copy[i].minute * USECS_PER_MINUTE));
			values[2] = Int64GetDatum((int64) copy[i].calls);
			values[3] = Int64GetDatum((int64) copy[i].errors);
			if (copy[i].timed > 0)
			{
				values[4] = Float8GetDatum((double) copy[i].lat_sum_ms / (double) copy[i].timed);
				values[5] = Int64GetDatum((int64) copy[i].lat_max_ms);
			}
			else
				nulls[4] = nulls[5] = true;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	PG_RETURN_VOID();
}
