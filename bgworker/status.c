/*-------------------------------------------------------------------------
 *
 * status.c
 *	  saas._breaker_status(): the breakers' shared state as rows, for the
 *	  saas.integration_status view and GET /integrations/status.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "common/common.h"
#include "worker_shmem.h"

PG_FUNCTION_INFO_V1(saas_breaker_status);

/* cmp_u32: qsort order of latency samples, for the percentiles. */
static int
cmp_u32(const void *a, const void *b)
{
	uint32		x = *(const uint32 *) a,
				y = *(const uint32 *) b;

	return x < y ? -1 : x > y;
}

/*
 * SQL: saas._breaker_status() RETURNS TABLE(service, circuit, calls_1m,
 * failures_1m, last_error, p50_ms, p95_ms, last_success, last_failure,
 * worker_running). Without shared memory (not preloaded): closed, nulls.
 */
Datum
saas_breaker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			s;

	InitMaterializedSRF(fcinfo, 0);
	for (s = 0; s < SAAS_NSERVICES; s++)
	{
		Datum		v[10];
		bool		nulls[10] = {false};
		SaasBreaker b;
		bool		have = (saas_worker_shared != NULL);
		int64		sec = GetCurrentTimestamp() / USECS_PER_SEC;
		uint32		calls = 0,
					fails = 0;
		int			i;

		if (have)
		{
			LWLockAcquire(saas_worker_lock(), LW_SHARED);
			memcpy(&b, &saas_worker_shared->breakers[s], sizeof(b));
			LWLockRelease(saas_worker_lock());
		}
		else
			memset(&b, 0, sizeof(b));
		for (i = 0; i < CB_BUCKETS; i++)
			if (b.bucket_sec[i] > sec - 60 && b.bucket_sec[i] <= sec)
			{
				calls += b.ok[i] + b.fail[i];
				fails += b.fail[i];
			}
		v[0] = CStringGetTextDatum(saas_service_names[s]);
		v[1] = CStringGetTextDatum(saas_breaker_state_name(b.state));
		v[2] = Int32GetDatum((int32) calls);
		v[3] = Int32GetDatum((int32) fails);
		if (b.last_error[0])
			v[4] = CStringGetTextDatum(b.last_error);
		else
			nulls[4] = true;
		{
			int			n = Min(b.lat_count, CB_LAT_SAMPLES);

			if (n > 0)
			{
				uint32		sorted[CB_LAT_SAMPLES];

				memcpy(sorted, b.lat_ms, sizeof(uint32) * n);
				qsort(sorted, n, sizeof(uint32), cmp_u32);
				v[5] = Int32GetDatum((int32) sorted[(n - 1) / 2]);
				v[6] = Int32GetDatum((int32) sorted[(int) ((n - 1) * 0.95)]);
			}
			else
			{
				v[5] = Int32GetDatum(0);
				v[6] = Int32GetDatum(0);
			}
		}
		if (b.last_success)
			v[7] = TimestampTzGetDatum(b.last_success);
		else
			nulls[7] = true;
		if (b.last_failure)
			v[8] = TimestampTzGetDatum(b.last_failure);
		else
			nulls[8] = true;
		v[9] = BoolGetDatum(saas_worker_running());
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
	}
	return (Datum) 0;
}
