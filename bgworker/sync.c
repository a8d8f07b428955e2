/*-------------------------------------------------------------------------
 *
 * sync.c
 *	  Pull sync: per linked organization, read the user service's users
 *	  changed since the last sync (every page), then upsert them.
 *
 * The pages are read with no transaction open; they are applied in one
 * transaction at the end, under a trusted context of the organization and
 * marked as coming from the service (not pushed back). lastSync moves only
 * when every page was read and applied. A failed read counts for the
 * service's breaker and leaves lastSync where it was.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "pg_saas.h"
#include "breaker.h"
#include "http_client.h"
#include "jwt.h"
#include "spi_util.h"
#include "worker_jobs.h"
#include "worker_shmem.h"

#define SYNC_ORGS_PER_ROUND	10
#define SYNC_MAX_PAGES		200
#define SYNC_CHECK_EVERY_S	5
#define SYNC_PAGE_MAX		(16 * 1024 * 1024)

static SaasPlan plan_due = {
	"SELECT o.id, coalesce(o.external_ids ->> 'user_service', o.id::text),"
	" to_char(s.cursor_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), i.base_url, i.timeout_ms,"
	" i.breaker_failure_rate, i.breaker_min_volume, i.breaker_window_seconds,"
	" i.breaker_reset_seconds, i.breaker_half_open_probes"
	" FROM saas.organizations o CROSS JOIN saas.integrations i"
	" LEFT JOIN saas.sync_state s ON s.org_id = o.id AND s.service = i.service"
	" WHERE i.service = 'user-service' AND i.enabled"
	" AND o.status = 'active'"
	" AND (s.last_sync IS NULL OR s.last_sync < now() - make_interval(secs => i.sync_interval_seconds))"
	" ORDER BY s.last_sync NULLS FIRST LIMIT $1",
	1, {INT4OID}
};

static SaasPlan plan_apply_page = {
	"SELECT saas._sync_users($1, $2)", 2, {UUIDOID, JSONBOID}
};

static SaasPlan plan_done = {
	"SELECT saas._sync_done($1, 'user-service', $2)", 2, {UUIDOID, TIMESTAMPTZOID}
};

typedef struct SyncOrg
{
	pg_uuid_t	org;
	char	   *ref;
	char	   *since;			/* RFC 3339 or NULL */
	char	   *base_url;
	int			timeout_ms;
	CbSettings	cb;
	List	   *pages;			/* response bodies (char *) */
	bool		complete;
} SyncOrg;

static int64 last_check = 0;
static const pg_uuid_t nil_user = {{0}};

/* sync_escape: a query-string value, percent-encoded. */
static char *
sync_escape(const char *s)
{
	StringInfoData o;

	initStringInfo(&o);
	for (; *s; s++)
	{
		unsigned char c = *s;

		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
			appendStringInfoChar(&o, c);
		else
			appendStringInfo(&o, "%%%02X", c);
	}
	return o.data;
}

/* sync_read_all: every page for one organization; false on any failure. */
static bool
sync_read_all(SyncOrg *o, MemoryContext keep)
{
	int			page;
	int			svc = saas_service_index("user-service");

	for (page = 1; page <= SYNC_MAX_PAGES; page++)
	{
		WkCall		c;
		CbTransition tr;
		bool		moved;
		bool		ok;

		if (cb_state(svc) == CB_OPEN)
			return false;
		memset(&c, 0, sizeof(c));
		c.svc = svc;
		c.method = "GET";
		c.timeout_ms = o->timeout_ms;
		c.resp_max = SYNC_PAGE_MAX;
		c.url = psprintf("%s/users?organization_id=%s&per_page=100&page=%d%s%s",
						 o->base_url, sync_escape(o->ref), page,
						 o->since ? "&updated_since=" : "", o->since ? sync_escape(o->since) : "");
		wk_http_run(&c, 1);
		ok = (c.status == 200);
		if (ok && (c.truncated || !saas_json_valid_strict(c.resp, c.resp_len, true)))
		{
			elog(LOG, "pg_saas worker: sync of %s: page %d is %s; lastSync stays",
				 o->ref, page, c.truncated ? "larger than 16 MB" : "not a JSON object");
			return false;
		}
		cb_record(svc, &o->cb, ok || (c.status >= 400 && c.status < 500 && c.status != 408 && c.status != 429),
				  c.latency_ms, ok ? NULL : (c.error[0] ? c.error : "sync read failed"),
				  GetCurrentTimestamp(), &tr, &moved);
		if (!ok)
		{
			elog(LOG, "pg_saas worker: sync of %s failed on page %d (HTTP %ld %s)",
				 o->ref, page, c.status, c.error);
			return false;
		}
		o->pages = lappend(o->pages, MemoryContextStrdup(keep, c.resp));
		if (strstr(c.resp, "\"has_more\":true") == NULL)
			return true;
	}
	return true;
}

/*
 * wk_sync_round: sync the organizations that are due. Returns how many
 * organizations completed a sync.
 */
int
wk_sync_round(void)
{
	int64		now = GetCurrentTimestamp();
	SyncOrg    *orgs;
	int			n = 0,
				i,
				done = 0;
	MemoryContext keep = CurrentMemoryContext;
	Datum		arg;

	if (now - last_check < (int64) SYNC_CHECK_EVERY_S * USECS_PER_SEC)
		return 0;
	last_check = now;

	arg = Int32GetDatum(SYNC_ORGS_PER_ROUND);
	orgs = MemoryContextAllocZero(keep, sizeof(SyncOrg) * SYNC_ORGS_PER_ROUND);
	if (wk_xact_begin("pg_saas worker: pull sync") &&
		saas_exec(&plan_due, &arg, NULL, true, 0) == SPI_OK_SELECT)
	{
		for (i = 0; i < (int) SPI_processed; i++)
		{
			HeapTuple	t = SPI_tuptable->vals[i];
			TupleDesc	d = SPI_tuptable->tupdesc;
			bool		isnull;
			SyncOrg    *o = &orgs[n++];
			char	   *since;

			o->org = *DatumGetUUIDP(SPI_getbinval(t, d, 1, &isnull));
			o->ref = MemoryContextStrdup(keep, SPI_getvalue(t, d, 2));
			since = SPI_getvalue(t, d, 3);
			if (since)
				o->since = MemoryContextStrdup(keep, since);
			o->base_url = MemoryContextStrdup(keep, SPI_getvalue(t, d, 4));
			o->timeout_ms = DatumGetInt32(SPI_getbinval(t, d, 5, &isnull));
			o->cb.failure_rate = DatumGetFloat8(SPI_getbinval(t, d, 6, &isnull));
			o->cb.min_volume = DatumGetInt32(SPI_getbinval(t, d, 7, &isnull));
			o->cb.window_s = DatumGetInt32(SPI_getbinval(t, d, 8, &isnull));
			o->cb.reset_s = DatumGetInt32(SPI_getbinval(t, d, 9, &isnull));
			o->cb.probes = DatumGetInt32(SPI_getbinval(t, d, 10, &isnull));
		}
	}
	wk_xact_commit();
	if (n == 0)
		return 0;

	/* Read, with no transaction open. */
	pgstat_report_activity(STATE_RUNNING, "pg_saas worker: pull sync");
	for (i = 0; i < n; i++)
		orgs[i].complete = sync_read_all(&orgs[i], keep);

	/* Apply what was read completely (unless pg_saas went away meanwhile). */
	if (!wk_xact_begin("pg_saas worker: applying pull sync"))
		n = 0;
	for (i = 0; i < n; i++)
	{
		SyncOrg    *o = &orgs[i];
		ListCell   *lc;
		Datum		newest = (Datum) 0;
		bool		have_newest = false;
		int			nest;
		Datum		args[2];
		char		nulls[3] = "  ";

		if (!o->complete)
			continue;
		nest = saas_context_push_trusted(&o->org, &nil_user, "admin");
		wk_set_in_sync(true);
		foreach(lc, o->pages)
		{
			bool		isnull;

			args[0] = UUIDPGetDatum(&o->org);
			args[1] = DirectFunctionCall1(jsonb_in, CStringGetDatum((char *) lfirst(lc)));
			if (saas_exec(&plan_apply_page, args, NULL, false, 1) == SPI_OK_SELECT && SPI_processed == 1)
			{
				Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

				if (!isnull && (!have_newest ||
								DatumGetTimestampTz(d) > DatumGetTimestampTz(newest)))
				{
					newest = d;
					have_newest = true;
				}
			}
		}
		wk_set_in_sync(false);
		args[0] = UUIDPGetDatum(&o->org);
		args[1] = newest;
		if (!have_newest)
			nulls[1] = 'n';
		(void) saas_exec(&plan_done, args, nulls, false, 1);
		saas_context_pop(nest);
		done++;
	}
	wk_xact_commit();
	return done;
}
