/*-------------------------------------------------------------------------
 *
 * worker_walk.c
 *	  The fair walk over organizations where Citus is loaded.
 *
 * On a single node the walk is one recursive statement that descends
 * jobs_fair_idx once per organization (worker_jobs.c, plan_org_walk). Citus
 * runs no recursive walk across shards, and a DISTINCT there reads, per
 * shard, every queued job of the organizations it walks: one organization's
 * backlog made every walk that reached it slower (docs/scale-out.md,
 * "The queue on Citus"; test/bench/citus_fairness.sh). Here the walk reads
 * bounded windows of the queue instead.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/uuid.h"

#include "pg_saas.h"
#include "common/common.h"
#include "worker_jobs.h"

/*
 * The first $3 queued jobs of service $1 after organization $2, in org_id
 * order: a window over the organizations with queued jobs (wk_walk_citus).
 * Citus sends the ORDER BY and the LIMIT to every shard, where each reads at
 * most $3 entries of jobs_fair_idx, and merges their rows. (A DISTINCT
 * instead read every queued job of the organizations it walked, per shard:
 * PostgreSQL 15 has no skip scan, and Citus runs no recursive walk across
 * shards.)
 */
static SaasPlan plan_org_window_citus = {
	"SELECT j.org_id FROM saas.jobs j"
	" WHERE j.service = $1 AND j.state IN ('available', 'retryable') AND j.org_id > $2"
	" ORDER BY j.org_id LIMIT $3",
	3, {TEXTOID, UUIDOID, INT4OID}
};

/*
 * The window's size for a walk of limit organizations, and the most windows
 * read in one walk: a walk costs at most WK_WALK_WINDOWS multi-shard reads of
 * at most WK_WALK_WINDOW_MAX rows a shard, whatever one organization's
 * backlog.
 */
#define WK_WALK_WINDOW_MIN	32
#define WK_WALK_WINDOW_MAX	1024
#define WK_WALK_WINDOWS		8

/*
 * wk_walk_citus: the single node's walk where Citus is loaded: up to limit
 * organizations with queued jobs of a service, after *cursor, in org_id
 * order, into orgs (as Datums of copies). Returns how many; *end says the
 * walk reached the last organization with queued jobs.
 *
 * Windows of queued jobs (plan_org_window_citus) in org_id order: every
 * organization in a window has queued jobs, and none is missed between the
 * cursor and a window's last row, so the next window starts after that row's
 * organization. A window with fewer rows than asked, all of them read, is the
 * end of the queue (the walk wraps around); one whose rows gave limit
 * organizations before its last row is not.
 * A window crowded by one organization's backlog still gives that
 * organization, and the next one starts past it: each window adds at least
 * one organization. After WK_WALK_WINDOWS windows the walk stops short with
 * what it found (not the end: the next walk goes on from there), so that
 * many organizations with large backlogs cost a bounded number of reads.
 */
int
wk_walk_citus(Datum service, const pg_uuid_t *cursor, int limit, Datum *orgs, bool *end)
{
	int			window = Min(Max(limit * 4, WK_WALK_WINDOW_MIN), WK_WALK_WINDOW_MAX);
	pg_uuid_t	after = *cursor;
	int			n = 0,
				w;

	*end = false;
	for (w = 0; w < WK_WALK_WINDOWS && n < limit; w++)
	{
		Datum		args[3];
		uint64		rows,
					r;

		args[0] = service;
		args[1] = UUIDPGetDatum(&after);
		args[2] = Int32GetDatum(window);
		if (saas_exec(&plan_org_window_citus, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not find organizations with queued jobs");
		rows = SPI_processed;
		for (r = 0; r < rows && n < limit; r++)
		{
			bool		isnull;
			pg_uuid_t  *u = DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[r],
														SPI_tuptable->tupdesc, 1, &isnull));

			if (n > 0 && memcmp(u, DatumGetUUIDP(orgs[n - 1]), UUID_LEN) == 0)
				continue;
			orgs[n++] = wk_uuid(u);
		}
		if (r < rows)
			break;				/* limit organizations found before the window's end */
		if (rows < (uint64) window)
		{
			*end = true;		/* every queued job after the cursor was seen */
			break;
		}
		after = *DatumGetUUIDP(orgs[n - 1]);
	}
	return n;
}
