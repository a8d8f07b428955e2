/*-------------------------------------------------------------------------
 *
 * metrics_shmem.c
 *	  The worker's counters in shared memory, and saas._worker_metrics_text()
 *	  that renders them (with the breakers' state) in Prometheus text format
 *	  for saas.metrics_text() and the relay's GET /metrics.
 *
 * Why here and not in the breakers' struct: the breakers are guarded by an
 * LWLock and owned by the worker's core; counters only ever grow, so plain
 * atomics do (no lock on the call path, and a reader never blocks the
 * worker).  Counters start at zero with the server, as Prometheus expects
 * of counters (it handles the reset).
 *
 * Label values are fixed sets (services, outcomes, breaker states, pruned
 * tables), so the exposition stays small whatever the traffic.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "common/common.h"
#include "call_history.h"
#include "metrics_shmem.h"
#include "worker_shmem.h"

PG_FUNCTION_INFO_V1(saas_worker_metrics_text);

/* Outcomes as labels; anything the enum grows later counts as "other". */
#define WM_NOUTCOMES	7
static const char *const wm_outcome_labels[WM_NOUTCOMES] = {
	"ok", "refused", "throttled", "failed", "unsendable", "local_error", "other"
};

/* Upper bounds of the latency buckets, in ms (+Inf implied). */
static const int wm_lat_bounds_ms[] = {
	5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000
};
#define WM_NLAT		((int) lengthof(wm_lat_bounds_ms))

static const char *const wm_prune_labels[WM_PRUNE_NTABLES] = {
	"jobs_succeeded", "jobs_dead", "webhook_events", "notifications",
	"entity_versions", "breaker_events"
};

/* Only pg_atomic_uint64 members: initialised as one array. */
typedef struct SaasWorkerMetrics
{
	pg_atomic_uint64 calls[SAAS_NSERVICES][WM_NOUTCOMES];
	pg_atomic_uint64 lat_bucket[SAAS_NSERVICES][WM_NLAT + 1];
	pg_atomic_uint64 lat_sum_ms[SAAS_NSERVICES];
	pg_atomic_uint64 transitions[SAAS_NSERVICES][3];	/* by state entered */
	pg_atomic_uint64 pruned[WM_PRUNE_NTABLES];
	pg_atomic_uint64 prune_us[WM_PRUNE_NTABLES];
} SaasWorkerMetrics;

static SaasWorkerMetrics *wm = NULL;

static Size
metrics_shmem_size(void)
{
	return MAXALIGN(sizeof(SaasWorkerMetrics));
}

/* Under AddinShmemInitLock, from the shared memory startup hook. */
static void
metrics_shmem_init(LWLockPadded *locks)
{
	bool		found;

	StaticAssertStmt(sizeof(SaasWorkerMetrics) % sizeof(pg_atomic_uint64) == 0,
					 "SaasWorkerMetrics holds only 64-bit atomics");
	wm = ShmemInitStruct("pg_saas worker metrics", sizeof(SaasWorkerMetrics), &found);
	if (!found)
	{
		pg_atomic_uint64 *a = (pg_atomic_uint64 *) wm;
		size_t		i;

		for (i = 0; i < sizeof(SaasWorkerMetrics) / sizeof(pg_atomic_uint64); i++)
			pg_atomic_init_u64(&a[i], 0);
	}
}

static const SaasShmemModule metrics_shmem = {
	"pg_saas worker metrics", metrics_shmem_size, 0, metrics_shmem_init
};

/* saas_metrics_shmem_register: from saas_worker_shmem_register. */
void
saas_metrics_shmem_register(void)
{
	saas_shmem_register(&metrics_shmem);
	saas_call_history_register();	/* the dashboard's chart, by minute */
}

/*
 * wm_outcome_index: the label index of a call outcome ("other" for new ones).
 */
static int
wm_outcome_index(WkOutcome o)
{
	switch (o)
	{
		case WK_OK:
			return 0;
		case WK_REFUSED:
			return 1;
		case WK_THROTTLED:
			return 2;
		case WK_SERVICE_FAILED:
			return 3;
		case WK_UNSENDABLE:
			return 4;
		case WK_LOCAL_ERROR:
			return 5;
		default:
			return WM_NOUTCOMES - 1;
	}
}

/*
 * wm_record_call: one finished call (a job's or the pull sync's). Its
 * latency goes into the histogram only when something went over the wire:
 * a request that could not be made, or failed on our side, took no time
 * at the service.
 */
void
wm_record_call(const WkCall *c)
{
	int			o;
	int			b;
	uint32		ms;

	if (wm == NULL || c->svc < 0 || c->svc >= SAAS_NSERVICES)
		return;
	ch_record_call(c);
	o = wm_outcome_index(c->outcome);
	pg_atomic_fetch_add_u64(&wm->calls[c->svc][o], 1);
	if (c->outcome == WK_UNSENDABLE || c->outcome == WK_LOCAL_ERROR)
		return;
	ms = (uint32) Max(c->latency_ms, 0);
	for (b = 0; b < WM_NLAT && ms > (uint32) wm_lat_bounds_ms[b]; b++)
		;
	pg_atomic_fetch_add_u64(&wm->lat_bucket[c->svc][b], 1);
	pg_atomic_fetch_add_u64(&wm->lat_sum_ms[c->svc], ms);
}

/* wm_record_transition: a breaker entered to_state (CB_CLOSED, ...). */
void
wm_record_transition(int svc, int to_state)
{
	if (wm == NULL || svc < 0 || svc >= SAAS_NSERVICES || to_state < 0 || to_state > 2)
		return;
	pg_atomic_fetch_add_u64(&wm->transitions[svc][to_state], 1);
}

/* wm_record_prune: rows retention deleted from one table, and the time it took. */
void
wm_record_prune(WmPruneTable t, uint64 rows, int64 elapsed_us)
{
	if (wm == NULL || t < 0 || t >= WM_PRUNE_NTABLES)
		return;
	pg_atomic_fetch_add_u64(&wm->pruned[t], rows);
	pg_atomic_fetch_add_u64(&wm->prune_us[t], (uint64) Max(elapsed_us, 0));
}

static uint64
wm_get(pg_atomic_uint64 *a)
{
	return pg_atomic_read_u64(a);
}

/* The call counters and latency histograms. */
static void
wm_render_calls(StringInfo out)
{
	int			s,
				o,
				b;

	appendStringInfoString(out,
						   "# HELP saas_worker_calls_total Calls to the services (job attempts and pull-sync reads) by outcome.\n"
						   "# TYPE saas_worker_calls_total counter\n");
	for (s = 0; s < SAAS_NSERVICES; s++)
		for (o = 0; o < WM_NOUTCOMES; o++)
			appendStringInfo(out, "saas_worker_calls_total{service=\"%s\",outcome=\"%s\"} " UINT64_FORMAT "\n",
							 saas_service_names[s], wm_outcome_labels[o], wm_get(&wm->calls[s][o]));

	appendStringInfoString(out,
						   "# HELP saas_worker_call_duration_seconds Duration of the calls that reached the wire, per service.\n"
						   "# TYPE saas_worker_call_duration_seconds histogram\n");
	for (s = 0; s < SAAS_NSERVICES; s++)
	{
		uint64		cum = 0;
		uint64		sum = wm_get(&wm->lat_sum_ms[s]);

		for (b = 0; b <= WM_NLAT; b++)
		{
			cum += wm_get(&wm->lat_bucket[s][b]);
			if (b < WM_NLAT)
				appendStringInfo(out, "saas_worker_call_duration_seconds_bucket{service=\"%s\",le=\"%g\"} " UINT64_FORMAT "\n",
								 saas_service_names[s], wm_lat_bounds_ms[b] / 1000.0, cum);
			else
				appendStringInfo(out, "saas_worker_call_duration_seconds_bucket{service=\"%s\",le=\"+Inf\"} " UINT64_FORMAT "\n",
								 saas_service_names[s], cum);
		}
		appendStringInfo(out, "saas_worker_call_duration_seconds_sum{service=\"%s\"} " UINT64_FORMAT ".%03d\n"
						 "saas_worker_call_duration_seconds_count{service=\"%s\"} " UINT64_FORMAT "\n",
						 saas_service_names[s], sum / 1000, (int) (sum % 1000),
						 saas_service_names[s], cum);
	}
}

/* Breakers: state (one series per state, 1 for the current), transitions, throttling. */
static void
wm_render_breakers(StringInfo out)
{
	SaasBreaker b;
	int			state[SAAS_NSERVICES];
	bool		throttled[SAAS_NSERVICES];
	int64		now = GetCurrentTimestamp();
	int			s,
				k;

	for (s = 0; s < SAAS_NSERVICES; s++)
	{
		LWLockAcquire(saas_worker_lock(), LW_SHARED);
		memcpy(&b, &saas_worker_shared->breakers[s], sizeof(b));
		LWLockRelease(saas_worker_lock());
		state[s] = b.state;
		throttled[s] = now < b.throttled_until;
	}
	appendStringInfoString(out,
						   "# HELP saas_worker_breaker_state Circuit breaker of each service: 1 for its current state.\n"
						   "# TYPE saas_worker_breaker_state gauge\n");
	for (s = 0; s < SAAS_NSERVICES; s++)
		for (k = 0; k < 3; k++)
			appendStringInfo(out, "saas_worker_breaker_state{service=\"%s\",state=\"%s\"} %d\n",
							 saas_service_names[s], saas_breaker_state_name(k), state[s] == k ? 1 : 0);
	appendStringInfoString(out,
						   "# HELP saas_worker_breaker_transitions_total Breaker transitions, by the state entered.\n"
						   "# TYPE saas_worker_breaker_transitions_total counter\n");
	for (s = 0; s < SAAS_NSERVICES; s++)
		for (k = 0; k < 3; k++)
			appendStringInfo(out, "saas_worker_breaker_transitions_total{service=\"%s\",to=\"%s\"} " UINT64_FORMAT "\n",
							 saas_service_names[s], saas_breaker_state_name(k), wm_get(&wm->transitions[s][k]));
	appendStringInfoString(out,
						   "# HELP saas_worker_throttled 1 while a 429's Retry-After pauses calls to the service.\n"
						   "# TYPE saas_worker_throttled gauge\n");
	for (s = 0; s < SAAS_NSERVICES; s++)
		appendStringInfo(out, "saas_worker_throttled{service=\"%s\"} %d\n",
						 saas_service_names[s], throttled[s] ? 1 : 0);
}

/* Retention: rows deleted and time spent, per table (their ratio is the prune rate). */
static void
wm_render_retention(StringInfo out)
{
	int			t;

	appendStringInfoString(out,
						   "# HELP saas_worker_pruned_rows_total Rows deleted by retention, per table.\n"
						   "# TYPE saas_worker_pruned_rows_total counter\n");
	for (t = 0; t < WM_PRUNE_NTABLES; t++)
		appendStringInfo(out, "saas_worker_pruned_rows_total{table=\"%s\"} " UINT64_FORMAT "\n",
						 wm_prune_labels[t], wm_get(&wm->pruned[t]));
	appendStringInfoString(out,
						   "# HELP saas_worker_prune_seconds_total Time retention spent deleting, per table.\n"
						   "# TYPE saas_worker_prune_seconds_total counter\n");
	for (t = 0; t < WM_PRUNE_NTABLES; t++)
	{
		uint64		us = wm_get(&wm->prune_us[t]);

		appendStringInfo(out, "saas_worker_prune_seconds_total{table=\"%s\"} " UINT64_FORMAT ".%06d\n",
						 wm_prune_labels[t], us / 1000000, (int) (us % 1000000));
	}
}

/*
 * SQL: saas._worker_metrics_text() RETURNS text. What shared memory knows
 * (saas.metrics_text() adds what the tables know). Without shared memory
 * (library not preloaded) only saas_worker_up 0.
 */
/* wm_processes_alive: the worker processes with an incarnation in their slot. */
static int
wm_processes_alive(void)
{
	int			n = 0,
				i;

	if (saas_worker_shared == NULL)
		return 0;
	LWLockAcquire(saas_worker_lock(), LW_SHARED);
	for (i = 0; i < WK_MAX_PROCS; i++)
		if (saas_worker_shared->procs[i].incarnation != 0)
			n++;
	LWLockRelease(saas_worker_lock());
	return n;
}

Datum
saas_worker_metrics_text(PG_FUNCTION_ARGS)
{
	StringInfoData out;

	initStringInfo(&out);
	appendStringInfo(&out,
					 "# HELP saas_worker_up 1 while the background worker runs.\n"
					 "# TYPE saas_worker_up gauge\nsaas_worker_up %d\n"
					 "# HELP saas_worker_processes Worker processes running (the worker and its drainers), "
					 "of saas.worker_processes.\n"
					 "# TYPE saas_worker_processes gauge\nsaas_worker_processes %d\n",
					 saas_worker_running() ? 1 : 0, wm_processes_alive());
	if (wm != NULL && saas_worker_shared != NULL)
	{
		appendStringInfo(&out,
						 "# HELP saas_worker_events_applied_total Webhook events the worker applied.\n"
						 "# TYPE saas_worker_events_applied_total counter\n"
						 "saas_worker_events_applied_total " UINT64_FORMAT "\n"
						 "# HELP saas_worker_wakeups_total Commits that woke the worker.\n"
						 "# TYPE saas_worker_wakeups_total counter\n"
						 "saas_worker_wakeups_total " UINT64_FORMAT "\n",
						 pg_atomic_read_u64(&saas_worker_shared->events_applied),
						 saas_worker_wakeups());
		wm_render_calls(&out);
		wm_render_breakers(&out);
		wm_render_retention(&out);
	}
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}
