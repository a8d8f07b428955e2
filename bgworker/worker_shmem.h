/*-------------------------------------------------------------------------
 *
 * worker_shmem.h
 *	  The worker's shared state: its processes' incarnations, call counters,
 *	  and one circuit breaker per service with its rolling window and
 *	  latency samples. Whom to wake is the extension's
 *	  (common/worker_link.c).
 *
 * Locking: saas_worker_lock(), the "pg_saas worker" tranche; the rules are
 * in src/common/shmem.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_WORKER_SHMEM_H
#define SAAS_WORKER_SHMEM_H

#include "port/atomics.h"
#include "storage/lwlock.h"

#include "common/common.h"
#include "metrics_shmem.h"
#include "worker_api.h"

#define CB_BUCKETS		120		/* one per second: windows up to two minutes */
#define CB_LAT_SAMPLES	256

typedef struct SaasBreaker
{
	int			state;
	int64		opened_at;		/* µs; when it last opened */
	int			probes_in_flight;
	int			probe_successes;
	int64		bucket_sec[CB_BUCKETS];
	uint32		ok[CB_BUCKETS];
	uint32		fail[CB_BUCKETS];
	uint32		lat_ms[CB_LAT_SAMPLES];
	uint32		lat_count;
	int64		last_success;
	int64		last_failure;
	char		last_error[256];
	uint64		transitions;
	int64		throttled_until;	/* µs; a 429's Retry-After pauses the service */
	int			consecutive_failures;	/* failures since the last success */
} SaasBreaker;

/* Most worker processes saas.worker_processes may ask for (the link's slots). */
#define WK_MAX_PROCS	SAAS_WORKER_MAX_PROCS

/*
 * One worker process: slot 0 is the main worker, the others drain the queue
 * too. Whom to wake is in the extension's link (common/worker_link.c);
 * this is what the take-over needs: which lease owners are alive.
 */
typedef struct SaasWorkerSlot
{
	int64		incarnation;	/* lease_owner of the jobs it claims; 0: not running */
} SaasWorkerSlot;

typedef struct SaasWorkerShared
{
	SaasWorkerSlot procs[WK_MAX_PROCS];
	pg_atomic_uint64 calls;
	pg_atomic_uint64 events_applied;
	SaasBreaker breakers[SAAS_NSERVICES];
} SaasWorkerShared;

extern SaasWorkerShared *saas_worker_shared;
extern int	saas_worker_processes;
extern LWLock *saas_worker_lock(void);

#endif
