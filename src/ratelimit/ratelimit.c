/*-------------------------------------------------------------------------
 *
 * ratelimit.c
 *	  Rate limiting with the generic cell rate algorithm (GCRA) in shared
 *	  memory, so every relay process and every SQL caller shares one limit.
 *
 * Each key (scope + identity, e.g. "user" + "<uuid>", "auth_ip" +
 * "1.2.3.4") keeps one number, its theoretical arrival time (TAT). A
 * request at time now is allowed when TAT - now <= tau, where T = 60 s /
 * requests_per_minute is the emission interval and tau = T * (burst - 1)
 * the burst tolerance; it then moves TAT to max(TAT, now) + T. A key whose
 * TAT is not after now has its full budget, which is exactly the state of a
 * key never seen: it holds no history worth keeping.
 *
 * Keys cannot be dodged:
 *
 * - Emails (scope auth_email) are normalized by saas_email_normalize, the
 *   same lower() the login lookup applies, so every spelling that reaches
 *   one account ("K" as KELVIN SIGN U+212A, "İ") spends one budget.
 * - The slot of a key comes from SipHash-2-4 keyed with 16 random bytes
 *   drawn (pg_strong_random) when shared memory is created: nobody outside
 *   the server can compute which keys share slots, so nobody can aim many
 *   keys at a victim's slots.
 * - Memory is bounded: RL_SLOTS slots of 16 bytes in RL_PARTITIONS
 *   partitions, each under its own LWLock (src/common/shmem.c has the
 *   locking rules). A key lives in one of the RL_PROBES consecutive slots
 *   that start where its hash points (its window). A slot is reused only when its key's budget is full again, so
 *   reuse forgets nothing. When every slot of a newcomer's window holds a
 *   key with budget in use, the newcomer is refused (Retry-After until the
 *   first of them is full again): the limiter fails closed for the
 *   newcomer, and never forgives a limited key to make room.
 *
 * Limits per subscription tier and scope live in saas.rate_limits, cached
 * per backend and dropped when that table changes (relcache invalidation
 * sent by its statement trigger, as for signing keys).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"
#include "ratelimit/ratelimit.h"

PG_FUNCTION_INFO_V1(saas_rate_limit_check);
PG_FUNCTION_INFO_V1(saas_rate_limit_bench);
PG_FUNCTION_INFO_V1(saas_rate_limit_colliders);

#define RL_PARTITIONS	16
#define RL_SLOTS		65536	/* 16 partitions x 4096 slots, 16 bytes each: 1 MiB */
#define RL_PER_PART		(RL_SLOTS / RL_PARTITIONS)
#define RL_PROBES		16		/* a key's window: this many consecutive slots */
#define RL_SECRET_LEN	16		/* SipHash-2-4 key */

StaticAssertDecl((RL_PER_PART & (RL_PER_PART - 1)) == 0, "RL_PER_PART must be a power of two");

typedef struct RlSlot
{
	uint64		key;			/* keyed hash of scope and key; 0 = free */
	int64		tat;			/* theoretical arrival time, µs */
} RlSlot;

typedef struct RlShared
{
	uint8		secret[RL_SECRET_LEN];	/* set once at creation, read-only after */
	pg_atomic_uint64 checks;
	pg_atomic_uint64 refused;
	pg_atomic_uint64 no_room;	/* newcomers refused: their window was in use */
	RlSlot		slots[RL_SLOTS];
} RlShared;

static RlShared *rl = NULL;
static LWLockPadded *rl_locks = NULL;	/* RL_PARTITIONS, one per partition */

static Size
rl_shmem_size(void)
{
	return MAXALIGN(sizeof(RlShared));
}

/* rl_shmem_init: create or attach the slots (shared memory registry). */
static void
rl_shmem_init(LWLockPadded *locks)
{
	bool		found;

	rl_locks = locks;
	rl = ShmemInitStruct("pg_saas rate limiter", sizeof(RlShared), &found);
	if (!found)
	{
		memset(rl, 0, sizeof(RlShared));
		if (!pg_strong_random(rl->secret, RL_SECRET_LEN))
			ereport(FATAL,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate the rate limiter's secret")));
		pg_atomic_init_u64(&rl->checks, 0);
		pg_atomic_init_u64(&rl->refused, 0);
		pg_atomic_init_u64(&rl->no_room, 0);
	}
}

static const SaasShmemModule rl_shmem = {
	"pg_saas rate limiter", rl_shmem_size, RL_PARTITIONS, rl_shmem_init
};

/*
 * rl_available: shared memory exists only with shared_preload_libraries;
 * without it every check is allowed (see saas_rate_check).
 */
static bool
rl_available(void)
{
	return rl != NULL && rl_locks != NULL;
}

/*
 * saas_email_normalize: the one normal form of an email, for the login
 * lookup and for the per-email limit alike: SQL lower() under the
 * database's default collation (what "email = lower($1)" computes, and
 * what the users_email_check constraint demands of stored emails).
 * Returns a palloc'd string.
 */
char *
saas_email_normalize(const char *email)
{
	Datum		d;

	d = DirectFunctionCall1Coll(lower, DEFAULT_COLLATION_OID,
								PointerGetDatum(cstring_to_text(email)));
	return text_to_cstring(DatumGetTextPP(d));
}

/*
 * SipHash-2-4 (Aumasson and Bernstein), a keyed pseudo-random function:
 * without the key, finding inputs that share a value is as hard as
 * guessing it. Inputs are read as little-endian words on every platform,
 * so the reference test vectors hold.
 */
#define ROTL64(x, b)	(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND \
	do { \
		v0 += v1; v1 = ROTL64(v1, 13); v1 ^= v0; v0 = ROTL64(v0, 32); \
		v2 += v3; v3 = ROTL64(v3, 16); v3 ^= v2; \
		v0 += v3; v3 = ROTL64(v3, 21); v3 ^= v0; \
		v2 += v1; v1 = ROTL64(v1, 17); v1 ^= v2; v2 = ROTL64(v2, 32); \
	} while (0)

/* rl_le64: eight bytes as a little-endian integer (SipHash's word order). */
static inline uint64
rl_le64(const uint8 *p)
{
	return (uint64) p[0] | ((uint64) p[1] << 8) | ((uint64) p[2] << 16) |
		((uint64) p[3] << 24) | ((uint64) p[4] << 32) | ((uint64) p[5] << 40) |
		((uint64) p[6] << 48) | ((uint64) p[7] << 56);
}

/*
 * rl_siphash: SipHash-2-4 of in under the 16-byte key: a keyed hash, so
 * nobody without the secret can choose keys that share slots.
 */
static uint64
rl_siphash(const uint8 *key, const uint8 *in, size_t len)
{
	uint64		k0 = rl_le64(key),
				k1 = rl_le64(key + 8);
	uint64		v0 = UINT64CONST(0x736f6d6570736575) ^ k0;
	uint64		v1 = UINT64CONST(0x646f72616e646f6d) ^ k1;
	uint64		v2 = UINT64CONST(0x6c7967656e657261) ^ k0;
	uint64		v3 = UINT64CONST(0x7465646279746573) ^ k1;
	uint64		b = ((uint64) len) << 56;
	size_t		i;

	for (i = 0; i + 8 <= len; i += 8)
	{
		uint64		m = rl_le64(in + i);

		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	switch (len - i)
	{
		case 7:
			b |= ((uint64) in[i + 6]) << 48;
			/* FALLTHROUGH */
		case 6:
			b |= ((uint64) in[i + 5]) << 40;
			/* FALLTHROUGH */
		case 5:
			b |= ((uint64) in[i + 4]) << 32;
			/* FALLTHROUGH */
		case 4:
			b |= ((uint64) in[i + 3]) << 24;
			/* FALLTHROUGH */
		case 3:
			b |= ((uint64) in[i + 2]) << 16;
			/* FALLTHROUGH */
		case 2:
			b |= ((uint64) in[i + 1]) << 8;
			/* FALLTHROUGH */
		case 1:
			b |= (uint64) in[i];
			break;
		case 0:
			break;
	}
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/*
 * rl_hash: the keyed hash of scope and key, never 0 (0 marks a free slot).
 * The input is scope, a NUL, then the whole key (no truncation, so long
 * keys that share a prefix stay apart); emails first take their normal form.
 */
static uint64
rl_hash(const char *scope, const char *key)
{
	char		stackbuf[256];
	char	   *buf = stackbuf;
	char	   *norm = NULL;
	size_t		slen = strlen(scope),
				klen,
				len;
	uint64		h;

	if (strcmp(scope, "auth_email") == 0)
		key = norm = saas_email_normalize(key);
	klen = strlen(key);
	len = slen + 1 + klen;
	if (len > sizeof(stackbuf))
		buf = palloc(len);
	memcpy(buf, scope, slen + 1);
	memcpy(buf + slen + 1, key, klen);
	h = rl_siphash(rl->secret, (const uint8 *) buf, len);
	if (buf != stackbuf)
		pfree(buf);
	if (norm)
		pfree(norm);
	return h == 0 ? 1 : h;
}

/* rl_window: the partition and first slot of a hash's window. */
static inline void
rl_window(uint64 h, int *part, int *start)
{
	*part = (int) (h % RL_PARTITIONS);
	*start = (int) ((h >> 8) & (RL_PER_PART - 1));
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
				start,
				base,
				i;
	int64		now;
	int64		T,
				tau,
				tat,
				soonest = PG_INT64_MAX;
	RlSlot	   *s = NULL,
			   *room = NULL;
	LWLock	   *lock;

	if (!rl_available() || per_minute <= 0)
		return false;
	if (burst < 1)
		burst = 1;
	h = rl_hash(scope, key);
	rl_window(h, &part, &start);
	base = part * RL_PER_PART;
	T = Max((int64) 60 * USECS_PER_SEC / per_minute, 1);	/* above 60M/min: 1 µs */
	tau = T * (burst - 1);
	out->limit = burst;

	now = GetCurrentTimestamp();
	lock = &rl_locks[part].lock;
	LWLockAcquire(lock, LW_EXCLUSIVE);
	for (i = 0; i < RL_PROBES; i++)
	{
		RlSlot	   *c = &rl->slots[base + ((start + i) & (RL_PER_PART - 1))];

		if (c->key == h)
		{
			s = c;
			break;
		}
		if (c->key == 0 || c->tat <= now)
		{
			/* free, or its key's budget is full again: reuse forgets nothing */
			if (room == NULL)
				room = c;
		}
		else if (c->tat < soonest)
			soonest = c->tat;
	}
	if (s == NULL && room == NULL)
	{
		/*
		 * Every slot of the window holds a key with budget in use. Evicting
		 * one would forgive it; the newcomer waits instead, until the first
		 * of them is full again.
		 */
		LWLockRelease(lock);
		out->allowed = false;
		out->remaining = 0;
		out->retry_after_s = (int) Max((soonest - now + USECS_PER_SEC - 1) / USECS_PER_SEC, 1);
		out->reset_s = out->retry_after_s;
		pg_atomic_fetch_add_u64(&rl->refused, 1);
		pg_atomic_fetch_add_u64(&rl->no_room, 1);
		pg_atomic_fetch_add_u64(&rl->checks, 1);
		return true;
	}
	if (s == NULL)
	{
		s = room;
		s->key = h;
		s->tat = now;
	}
	tat = Max(s->tat, now);
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

/*
 * rl_invalidate: relcache callback; a change to saas.rate_limits (or a reset
 * of all) drops the cached limits.
 */
static void
rl_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == limits_relid)
		limits_valid = false;
}

/*
 * saas_ratelimit_init: from _PG_init. The limits' cache follows the table;
 * the slots are registered with the shared memory registry (preload only).
 */
void
saas_ratelimit_init(void)
{
	CacheRegisterRelcacheCallback(rl_invalidate, (Datum) 0);
	saas_shmem_register(&rl_shmem);
}

/*
 * rl_load_limits: read saas.rate_limits (as the extension owner) into the
 * backend's cache; without the table (extension not installed) none.
 */
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

	if (!rl_available())
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

/*
 * SQL (test only, owner only; not in the install script, the regress test
 * declares it): saas._rate_limit_colliders(scope text, key text, n int)
 * RETURNS text[]. n keys "c<number>" whose window is the window of
 * scope:key, found by trying numbers in turn. This is the search an
 * attacker would need the secret for; the test uses it to fill a victim's
 * window.
 */
Datum
saas_rate_limit_colliders(PG_FUNCTION_ARGS)
{
	char	   *scope = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *key = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int32		n = PG_GETARG_INT32(2);
	ArrayBuildState *astate = initArrayResult(TEXTOID, CurrentMemoryContext, false);
	int			part,
				start,
				p,
				st;
	int64		i;
	char		cand[32];

	if (!rl_available())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rate limiting needs pg_saas in shared_preload_libraries")));
	rl_window(rl_hash(scope, key), &part, &start);
	/* about RL_SLOTS tries per key found; give up after 1000 times that */
	for (i = 0; n > 0 && i < (int64) 1000 * RL_SLOTS; i++)
	{
		CHECK_FOR_INTERRUPTS();
		snprintf(cand, sizeof(cand), "c" INT64_FORMAT, i);
		rl_window(rl_hash(scope, cand), &p, &st);
		if (p == part && st == start)
		{
			astate = accumArrayResult(astate, CStringGetTextDatum(cand), false,
									  TEXTOID, CurrentMemoryContext);
			n--;
		}
	}
	PG_RETURN_DATUM(makeArrayResult(astate, CurrentMemoryContext));
}
