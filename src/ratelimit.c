/*-------------------------------------------------------------------------
 *
 * ratelimit.c
 *	  Rate limiting with the generic cell rate algorithm (GCRA) in shared
 *	  memory, so every relay process and every SQL caller shares one limit.
 *
 * Each key (scope + identity, e.g. "user:<uuid>", "auth_ip:1.2.3.4") keeps
 * one number, its theoretical arrival time (TAT). A request at time now is
 * allowed when TAT - now <= tau, where T = 60 s / requests_per_minute is
 * the emission interval and tau = T * (burst - 1) the burst tolerance; it
 * then moves TAT to max(TAT, now) + T.
 *
 * Memory is bounded: a fixed table of slots split into partitions, each
 * with its own LWLock. A key probes a few slots of its partition; when
 * none is free, the slot least recently seen is reused (its key forgets its
 * history: the limiter fails open for the coldest key, never closed).
 *
 * Locking: a partition's LWLock guards its slots; nothing else is shared.
 *
 * Limits per subscription tier and scope live in saas.rate_limits, cached
 * per backend and dropped when that table changes (relcache invalidation
 * sent by its statement trigger, as for signing keys).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg_saas.h"
#include "ratelimit.h"
#include "shmem.h"

PG_FUNCTION_INFO_V1(saas_rate_limit_check);
PG_FUNCTION_INFO_V1(saas_rate_limit_bench);

#define RL_SLOTS		16384	/* 16 partitions x 1024 slots, 24 bytes each */
#define RL_PER_PART		(RL_SLOTS / SAAS_RL_PARTITIONS)
#define RL_PROBES		8

typedef struct RlSlot
{
	uint64		key;			/* hash of scope:key; 0 = free */
	int64		tat;			/* theoretical arrival time, µs */
	int64		last_seen;		/* µs */
} RlSlot;

typedef struct RlShared
{
	pg_atomic_uint64 checks;
	pg_atomic_uint64 refused;
	pg_atomic_uint64 evictions;
	RlSlot		slots[RL_SLOTS];
} RlShared;

static RlShared *rl = NULL;

Size
saas_ratelimit_shmem_size(void)
{
	return MAXALIGN(sizeof(RlShared));
}

void
saas_ratelimit_shmem_init(void)
{
	bool		found;

	rl = ShmemInitStruct("pg_saas rate limiter", sizeof(RlShared), &found);
	if (!found)
	{
		memset(rl, 0, sizeof(RlShared));
		pg_atomic_init_u64(&rl->checks, 0);
		pg_atomic_init_u64(&rl->refused, 0);
		pg_atomic_init_u64(&rl->evictions, 0);
	}
}

bool
saas_ratelimit_available(void)
{
	return rl != NULL && saas_lwlocks() != NULL;
}

/*
 * saas_rate_check: count one request for scope:key. False (and *out
 * untouched) when shared memory is not there (not preloaded): no limiting.
 */
bool
saas_rate_check(const char *scope, const char *key, int per_minute, int burst,
				SaasRateResult *out)
{
	uint64		h;
	int			part,
				base,
				i,
				victim = -1;
	int64		now = GetCurrentTimestamp();
	int64		T,
				tau,
				tat,
				oldest = PG_INT64_MAX;
	RlSlot	   *s = NULL;
	LWLock	   *lock;
	char		buf[256];
	int			len;

	if (!saas_ratelimit_available() || per_minute <= 0)
		return false;
	if (burst < 1)
		burst = 1;
	len = snprintf(buf, sizeof(buf), "%s:%s", scope, key);
	if (len >= (int) sizeof(buf))
		len = sizeof(buf) - 1;
	h = hash_bytes_extended((const unsigned char *) buf, len, 0x5aa5);
	if (h == 0)
		h = 1;
	part = h % SAAS_RL_PARTITIONS;
	base = part * RL_PER_PART;
	T = Max((int64) 60 * USECS_PER_SEC / per_minute, 1);	/* above 60M/min: 1 µs */
	tau = T * (burst - 1);

	lock = &saas_lwlocks()[part].lock;
	LWLockAcquire(lock, LW_EXCLUSIVE);
	for (i = 0; i < RL_PROBES; i++)
	{
		RlSlot	   *c = &rl->slots[base + (int) (((h >> 8) + i) % RL_PER_PART)];

		if (c->key == h)
		{
			s = c;
			break;
		}
		/* A free slot, or one whose bucket is full again, costs nobody anything. */
		if (c->key == 0 || c->tat <= now)
		{
			if (oldest != PG_INT64_MIN)
			{
				victim = c - &rl->slots[0];
				oldest = PG_INT64_MIN;
			}
		}
		else if (oldest != PG_INT64_MIN && c->last_seen < oldest)
		{
			oldest = c->last_seen;
			victim = c - &rl->slots[0];
		}
	}
	if (s == NULL)
	{
		s = &rl->slots[victim];
		if (s->key != 0 && s->tat > now)
			pg_atomic_fetch_add_u64(&rl->evictions, 1);
		s->key = h;
		s->tat = now;
	}
	tat = Max(s->tat, now);
	s->last_seen = now;
	out->limit = burst;
	if (tat - now > tau)
	{
		out->allowed = false;
		out->remaining = 0;
		out->retry_after_s = (int) ((tat - now - tau + USECS_PER_SEC - 1) / USECS_PER_SEC);
		out->reset_s = (int) ((tat - now + USECS_PER_SEC - 1) / USECS_PER_SEC);
		pg_atomic_fetch_add_u64(&rl->refused, 1);
	}
	else
	{
		int64		used;

		s->tat = tat + T;
		used = (s->tat - now + T - 1) / T;
		out->allowed = true;
		out->remaining = (int) Max(0, burst - used);
		out->retry_after_s = 0;
		out->reset_s = (int) ((s->tat - now + USECS_PER_SEC - 1) / USECS_PER_SEC);
	}
	LWLockRelease(lock);
	pg_atomic_fetch_add_u64(&rl->checks, 1);
	return true;
}

/* ---- limits per tier and scope (saas.rate_limits), cached per backend ---- */

typedef struct RlLimit
{
	char		tier[16];
	char		scope[24];
	int			per_minute;
	int			burst;
} RlLimit;

#define RL_MAX_LIMITS 64
static RlLimit *limits = NULL;
static int	nlimits = 0;
static bool limits_valid = false;
static Oid	limits_relid = InvalidOid;

static void
rl_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == limits_relid)
		limits_valid = false;
}

void
saas_ratelimit_init(void)
{
	CacheRegisterRelcacheCallback(rl_invalidate, (Datum) 0);
}

static void
rl_load_limits(void)
{
	SaasElevation elev;
	Oid			nsp = get_namespace_oid("saas", true);
	uint64		i;

	nlimits = 0;
	limits_relid = OidIsValid(nsp) ? get_relname_relid("rate_limits", nsp) : InvalidOid;
	if (!OidIsValid(limits_relid))
	{
		limits_valid = true;
		return;
	}
	if (limits == NULL)
		limits = MemoryContextAllocZero(TopMemoryContext, sizeof(RlLimit) * RL_MAX_LIMITS);
	saas_elevate(&elev);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT tier, scope, requests_per_minute, burst FROM saas.rate_limits",
					true, RL_MAX_LIMITS) != SPI_OK_SELECT)
		elog(ERROR, "could not read saas.rate_limits");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *tier = SPI_getvalue(tup, desc, 1);
		char	   *scope = SPI_getvalue(tup, desc, 2);

		if (!tier || !scope)
			continue;
		strlcpy(limits[nlimits].tier, tier, sizeof(limits[nlimits].tier));
		strlcpy(limits[nlimits].scope, scope, sizeof(limits[nlimits].scope));
		limits[nlimits].per_minute = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		limits[nlimits].burst = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		nlimits++;
	}
	SPI_finish();
	saas_unelevate(&elev);
	limits_valid = true;
}

/*
 * saas_rate_limits_for: the limit of scope for tier; the tier "*" row is
 * the fallback, then a built-in default (so a missing row never disables).
 */
void
saas_rate_limits_for(const char *tier, const char *scope, int *per_minute, int *burst)
{
	int			i;
	const RlLimit *any = NULL;

	if (!limits_valid)
		rl_load_limits();
	for (i = 0; i < nlimits; i++)
	{
		if (strcmp(limits[i].scope, scope) != 0)
			continue;
		if (tier && strcmp(limits[i].tier, tier) == 0)
		{
			*per_minute = limits[i].per_minute;
			*burst = limits[i].burst;
			return;
		}
		if (strcmp(limits[i].tier, "*") == 0)
			any = &limits[i];
	}
	*per_minute = any ? any->per_minute : 60;
	*burst = any ? any->burst : 20;
}

/*
 * SQL: saas.rate_limit_check(scope text, key text, requests_per_minute int,
 * burst int) RETURNS TABLE(allowed, limit, remaining, reset_s, retry_after_s).
 * Owner only: it spends the named key's budget.
 */
Datum
saas_rate_limit_check(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	SaasRateResult r;
	Datum		values[5];
	bool		nulls[5] = {false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (!saas_rate_check(text_to_cstring(PG_GETARG_TEXT_PP(0)),
						 text_to_cstring(PG_GETARG_TEXT_PP(1)),
						 PG_GETARG_INT32(2), PG_GETARG_INT32(3), &r))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rate limiting needs pg_saas in shared_preload_libraries")));
	values[0] = BoolGetDatum(r.allowed);
	values[1] = Int32GetDatum(r.limit);
	values[2] = Int32GetDatum(r.remaining);
	values[3] = Int32GetDatum(r.reset_s);
	values[4] = Int32GetDatum(r.retry_after_s);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

/*
 * SQL: saas._rate_limit_bench(n int) RETURNS float8: nanoseconds per check
 * over n checks of 1000 rotating keys, measured in C (no per-call SQL cost).
 */
Datum
saas_rate_limit_bench(PG_FUNCTION_ARGS)
{
	int32		n = PG_GETARG_INT32(0);
	int32		i;
	instr_time	start,
				dur;
	SaasRateResult r;
	char		key[32];

	if (!saas_ratelimit_available())
		PG_RETURN_NULL();
	INSTR_TIME_SET_CURRENT(start);
	for (i = 0; i < n; i++)
	{
		snprintf(key, sizeof(key), "bench-%d", i % 1000);
		(void) saas_rate_check("bench", key, 1000000, 1000, &r);
	}
	INSTR_TIME_SET_CURRENT(dur);
	INSTR_TIME_SUBTRACT(dur, start);
	PG_RETURN_FLOAT8(INSTR_TIME_GET_DOUBLE(dur) * 1e9 / Max(n, 1));
}
