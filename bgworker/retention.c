/*-------------------------------------------------------------------------
 *
 * retention.c
 *	  Retention: the worker deletes finished work once it is older than its
 *	  table's setting (saas.retention_* GUCs, seconds; -1 keeps forever).
 *
 * Why a loop of batches and not one DELETE: one large DELETE holds its
 * locks and its snapshot for as long as it runs, and bloats the WAL of one
 * transaction; a batch of saas.retention_batch rows in its own short
 * transaction does not, and the worker's other steps run in between.
 *
 * Why the succeeded jobs are pruned every second, within a time budget:
 * the worker can finish thousands of jobs a second, so pruning must keep
 * up with arrivals, not trail them at a fixed rate (it used to delete at
 * most 5,000 a minute).  Each step deletes batches until a batch comes back
 * short (nothing more is old enough) or the budget is spent; when it falls
 * behind, the next step, a second later, continues.  The batches find their
 * rows through the partial index jobs_succeeded_idx (finished_at, state =
 * 'succeeded'), so their cost does not depend on how many recent jobs are
 * kept.  The other tables grow with events and tenants, not with every
 * call: they are pruned every saas.retention_interval (a minute).
 *
 * The status view and GET /integrations/status never read succeeded jobs
 * (see _integration_status_rows), so how long they are kept changes what
 * an operator can look back at, never what the status costs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "common/common.h"
#include "metrics_shmem.h"
#include "retention.h"
#include "worker_jobs.h"

#define RT_JOBS_EVERY_US	(1 * USECS_PER_SEC)
#define RT_JOBS_BUDGET_US	(500 * 1000)	/* per step: half the worker's second at most */
#define RT_OTHER_BUDGET_US	(200 * 1000)	/* per table and step */

#define DAY_S (24 * 3600)

static int	rt_succeeded_jobs_s = 3600;
static int	rt_dead_jobs_s = 30 * DAY_S;
static int	rt_webhook_events_s = 7 * DAY_S;
static int	rt_notifications_s = 90 * DAY_S;
static int	rt_entity_versions_s = 30 * DAY_S;
static int	rt_breaker_events_s = 30 * DAY_S;
static int	rt_batch = 5000;
static int	rt_interval_s = 60;

/*
 * One DELETE per table: the rows older than $1 seconds, at most $2 of them,
 * found by an index where the table has one for it, deleted by ctid.
 * Events are deleted only once applied (a pending event is work to do).
 */
static SaasPlan rt_plans[WM_PRUNE_NTABLES] = {
	[WM_PRUNE_SUCCEEDED_JOBS] = {
		"DELETE FROM saas.jobs WHERE ctid = ANY (ARRAY(SELECT ctid FROM saas.jobs"
		" WHERE state = 'succeeded' AND finished_at < now() - make_interval(secs => $1)"
		" ORDER BY finished_at LIMIT $2))",
	2, {FLOAT8OID, INT4OID}, NULL, true},
	[WM_PRUNE_DEAD_JOBS] = {
		"DELETE FROM saas.jobs WHERE ctid = ANY (ARRAY(SELECT ctid FROM saas.jobs"
		" WHERE state = 'dead' AND finished_at < now() - make_interval(secs => $1) LIMIT $2))",
	2, {FLOAT8OID, INT4OID}, NULL, true},
	[WM_PRUNE_WEBHOOK_EVENTS] = {
		"DELETE FROM saas.webhook_events WHERE ctid = ANY (ARRAY(SELECT ctid FROM saas.webhook_events"
		" WHERE applied_at IS NOT NULL AND received_at < now() - make_interval(secs => $1)"
		" ORDER BY received_at LIMIT $2))",
	2, {FLOAT8OID, INT4OID}, NULL, true},
	[WM_PRUNE_NOTIFICATIONS] = {
		"DELETE FROM saas.notifications WHERE ctid = ANY (ARRAY(SELECT ctid FROM saas.notifications"
		" WHERE updated_at < now() - make_interval(secs => $1) LIMIT $2))",
	2, {FLOAT8OID, INT4OID}, NULL, true},
	[WM_PRUNE_ENTITY_VERSIONS] = {
		"DELETE FROM saas.entity_versions WHERE ctid = ANY (ARRAY(SELECT ctid FROM saas.entity_versions"
		" WHERE last_event_at < now() - make_interval(secs => $1) LIMIT $2))",
	2, {FLOAT8OID, INT4OID}, NULL, true},
	[WM_PRUNE_BREAKER_EVENTS] = {
		"DELETE FROM saas._breaker_events WHERE ctid = ANY (ARRAY(SELECT ctid FROM saas._breaker_events"
		" WHERE at < now() - make_interval(secs => $1) ORDER BY id LIMIT $2))",
	2, {FLOAT8OID, INT4OID}, NULL, true},
};

/*
 * Where Citus is loaded, the same batches found by key instead of ctid (a
 * ctid means nothing across shards): Citus reads the batch on the shards,
 * then deletes it with a multi-shard DELETE. _breaker_events is local.
 */
static SaasPlan rt_plans_citus[WM_PRUNE_NTABLES] = {
	[WM_PRUNE_SUCCEEDED_JOBS] = {
		"DELETE FROM saas.jobs WHERE (org_id, id) IN (SELECT org_id, id FROM saas.jobs"
		" WHERE state = 'succeeded' AND finished_at < now() - make_interval(secs => $1)"
		" ORDER BY finished_at LIMIT $2)",
	2, {FLOAT8OID, INT4OID}},
	[WM_PRUNE_DEAD_JOBS] = {
		"DELETE FROM saas.jobs WHERE (org_id, id) IN (SELECT org_id, id FROM saas.jobs"
		" WHERE state = 'dead' AND finished_at < now() - make_interval(secs => $1) LIMIT $2)",
	2, {FLOAT8OID, INT4OID}},
	[WM_PRUNE_WEBHOOK_EVENTS] = {
		"DELETE FROM saas.webhook_events WHERE (org_id, service, event_id) IN"
		" (SELECT org_id, service, event_id FROM saas.webhook_events"
		" WHERE applied_at IS NOT NULL AND received_at < now() - make_interval(secs => $1)"
		" ORDER BY received_at LIMIT $2)",
	2, {FLOAT8OID, INT4OID}},
	[WM_PRUNE_NOTIFICATIONS] = {
		"DELETE FROM saas.notifications WHERE (org_id, message_ref) IN (SELECT org_id, message_ref"
		" FROM saas.notifications WHERE updated_at < now() - make_interval(secs => $1) LIMIT $2)",
	2, {FLOAT8OID, INT4OID}},
	[WM_PRUNE_ENTITY_VERSIONS] = {
		"DELETE FROM saas.entity_versions WHERE (org_id, service, entity_ref) IN"
		" (SELECT org_id, service, entity_ref FROM saas.entity_versions"
		" WHERE last_event_at < now() - make_interval(secs => $1) LIMIT $2)",
	2, {FLOAT8OID, INT4OID}},
	[WM_PRUNE_BREAKER_EVENTS] = {
		"DELETE FROM saas._breaker_events WHERE ctid = ANY (ARRAY(SELECT ctid FROM saas._breaker_events"
		" WHERE at < now() - make_interval(secs => $1) ORDER BY id LIMIT $2))",
	2, {FLOAT8OID, INT4OID}, NULL, true},
};

static const char *const rt_activity[WM_PRUNE_NTABLES] = {
	"pg_saas worker: pruning succeeded jobs",
	"pg_saas worker: pruning dead jobs",
	"pg_saas worker: pruning applied webhook events",
	"pg_saas worker: pruning notifications",
	"pg_saas worker: pruning entity versions",
	"pg_saas worker: pruning breaker events"
};

/* rt_define: one retention setting, in seconds; -1 keeps rows forever. */
static void
rt_define(const char *name, const char *desc, int *var, int def)
{
	DefineCustomIntVariable(name, desc,
							"In seconds (units accepted, e.g. '7d'); -1 keeps them forever.",
							var, def, -1, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
}

/* saas_retention_define_gucs: from _PG_init. */
void
saas_retention_define_gucs(void)
{
	rt_define("saas.retention_succeeded_jobs",
			  "How long succeeded jobs are kept after they finished.",
			  &rt_succeeded_jobs_s, 3600);
	rt_define("saas.retention_dead_jobs",
			  "How long dead jobs are kept after they died (saas.retry_job revives them until then).",
			  &rt_dead_jobs_s, 30 * DAY_S);
	rt_define("saas.retention_webhook_events",
			  "How long applied webhook events are kept: the window in which a redelivery is a duplicate.",
			  &rt_webhook_events_s, 7 * DAY_S);
	rt_define("saas.retention_notifications",
			  "How long a notification is kept after its last change.",
			  &rt_notifications_s, 90 * DAY_S);
	rt_define("saas.retention_entity_versions",
			  "How long the newest event time of an entity is kept after that event.",
			  &rt_entity_versions_s, 30 * DAY_S);
	rt_define("saas.retention_breaker_events",
			  "How long circuit breaker transitions are kept.",
			  &rt_breaker_events_s, 30 * DAY_S);
	DefineCustomIntVariable("saas.retention_batch",
							"Rows deleted per retention statement (each in its own transaction).",
							NULL, &rt_batch, 5000, 100, 1000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("saas.retention_interval",
							"How often the tables other than succeeded jobs are pruned.",
							NULL, &rt_interval_s, 60, 1, 24 * 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
}

/* rt_keep_s: how long rows of a pruned table are kept (its setting). */
static int
rt_keep_s(WmPruneTable t)
{
	switch (t)
	{
		case WM_PRUNE_SUCCEEDED_JOBS:
			return rt_succeeded_jobs_s;
		case WM_PRUNE_DEAD_JOBS:
			return rt_dead_jobs_s;
		case WM_PRUNE_WEBHOOK_EVENTS:
			return rt_webhook_events_s;
		case WM_PRUNE_NOTIFICATIONS:
			return rt_notifications_s;
		case WM_PRUNE_ENTITY_VERSIONS:
			return rt_entity_versions_s;
		case WM_PRUNE_BREAKER_EVENTS:
			return rt_breaker_events_s;
		default:
			return -1;
	}
}

/*
 * rt_prune_table: batches, each in its own transaction, until one comes
 * back short or budget_us is spent. Returns the rows deleted.
 */
static uint64
rt_prune_table(WmPruneTable t, int64 budget_us)
{
	int			keep = rt_keep_s(t);
	int64		start = GetCurrentTimestamp();
	uint64		total = 0;

	if (keep < 0)
		return 0;
	for (;;)
	{
		Datum		args[2];
		uint64		n = 0;
		bool		ready;

		args[0] = Float8GetDatum((double) keep);
		args[1] = Int32GetDatum(rt_batch);
		ready = wk_xact_begin(rt_activity[t]);
		if (ready && saas_exec(saas_citus_loaded() ? &rt_plans_citus[t] : &rt_plans[t],
							 args, NULL, false, 0) == SPI_OK_DELETE)
			n = SPI_processed;
		wk_xact_commit();
		total += n;
		if (!ready || n < (uint64) rt_batch || GetCurrentTimestamp() - start >= budget_us)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	wm_record_prune(t, total, GetCurrentTimestamp() - start);
	return total;
}

/*
 * wk_retention_step: one of the worker loop's steps. Succeeded jobs every
 * second (within RT_JOBS_BUDGET_US), everything else every
 * saas.retention_interval.
 */
void
wk_retention_step(void)
{
	static int64 last_jobs = 0;
	static int64 last_others = 0;
	int64		now = GetCurrentTimestamp();
	int			t;

	if (now - last_jobs >= RT_JOBS_EVERY_US)
	{
		last_jobs = now;
		(void) rt_prune_table(WM_PRUNE_SUCCEEDED_JOBS, RT_JOBS_BUDGET_US);
	}
	if (now - last_others >= (int64) rt_interval_s * USECS_PER_SEC)
	{
		last_others = now;
		for (t = WM_PRUNE_DEAD_JOBS; t < WM_PRUNE_NTABLES; t++)
			(void) rt_prune_table((WmPruneTable) t, RT_OTHER_BUDGET_US);
	}
}
