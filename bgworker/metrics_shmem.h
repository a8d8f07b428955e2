/*-------------------------------------------------------------------------
 *
 * metrics_shmem.h
 *	  The worker's counters for GET /metrics: calls by service and outcome,
 *	  call latency histograms, breaker transitions, and what retention
 *	  pruned.  Kept apart from the breakers' state (worker_shmem.h) so that
 *	  recording a metric is one call in the worker's code and takes no lock.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_METRICS_SHMEM_H
#define SAAS_METRICS_SHMEM_H

#include "postgres.h"

#include "common/common.h"
#include "http_client.h"

/* What retention deletes from, in the order of the metric's labels. */
typedef enum WmPruneTable
{
	WM_PRUNE_SUCCEEDED_JOBS,
	WM_PRUNE_DEAD_JOBS,
	WM_PRUNE_WEBHOOK_EVENTS,
	WM_PRUNE_NOTIFICATIONS,
	WM_PRUNE_ENTITY_VERSIONS,
	WM_PRUNE_BREAKER_EVENTS,
	WM_PRUNE_NTABLES
} WmPruneTable;

extern void saas_metrics_shmem_register(void);

/* Recording: lock-free, a no-op without shared memory. */
extern void wm_record_call(const WkCall *c);
extern void wm_record_transition(int svc, int to_state);
extern void wm_record_prune(WmPruneTable t, uint64 rows, int64 elapsed_us);

#endif
