/*-------------------------------------------------------------------------
 *
 * worker_jobs.c
 *	  The claiming half of the job queue:
 *	  which jobs to call now, and starting their calls.
 *
 * The worker keeps calls in flight across its rounds (http_client.c): each
 * round claims, for every service that has room under its max_in_flight
 * (and the worker's WK_MAX_IN_FLIGHT), as many due jobs as fit, commits the
 * claim, and starts the calls; job_record.c records each one when it
 * completes. A slow service fills its own slots and no one else's.
 *
 * Which jobs: claims rotate across organizations, so one tenant's backlog
 * cannot delay another's jobs. Per service, a walk over the organizations
 * with queued jobs (one index descent each, jobs_fair_idx) starts after the
 * organization served last and visits at most as many as there are free
 * slots; each organization visited gets the same share of the slots, its
 * oldest due jobs (a share left unused is claimed in the next round).
 *
 * When not to claim: while the service's breaker is open or a 429 paused it
 * (cb_acquire), its jobs wait in their state without spending attempts; a
 * half-open breaker lets its probes through, with the oldest waiting jobs,
 * or, when no job waits, with a health call (GET base_url: any answer but a
 * 5xx or 408 shows the service is back), so it closes by itself. Neither
 * are jobs claimed for a service whose base_url is not a usable URL (a
 * setting to fix, not the jobs' fault).
 *
 * Leases: a claim writes the lease (2 x timeout_ms + 30 s) and the worker's
 * incarnation (lease_owner, random per process start). A restarted worker
 * takes over the running jobs of any other incarnation at once, since only
 * one worker serves the database and its predecessor is gone; the lease
 * stays the safety net for anything else (expired leases are made due).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "fmgr.h"
#include "utils/timestamp.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"
#include "breaker.h"
#include "http_client.h"
#include "worker_jobs.h"
#include "worker_shmem.h"

WkService	wk_services[SAAS_NSERVICES];
int64		wk_incarnation = 0;

/* Where each service's walk over organizations resumes. */
static pg_uuid_t wk_cursor[SAAS_NSERVICES];

/* A health call in flight, per service (at most one). */
static bool wk_health_in_flight[SAAS_NSERVICES];

/* Parent of every call's memory context. */
static MemoryContext wk_calls_cxt = NULL;

static MemoryContext wk_settings_cxt = NULL;

static ArrayType *wk_live_incarnations(void);

/*
 * Each service's base URL as wk_build_url makes it, without trailing
 * slashes (in wk_settings_cxt; NULL when it makes no URL): a job's URL is
 * this plus its escaped segments, without parsing the base again per job.
 */
static char *wk_url_prefix[SAAS_NSERVICES];

static SaasPlan plan_reclaim = {
	"UPDATE saas.jobs SET state = 'retryable', run_at = now(), lease_until = NULL, lease_owner = NULL,"
	" updated_at = now(),"
	" last_error = coalesce(last_error, 'lease expired: the worker stopped during the call')"
	" WHERE state = 'running' AND lease_until < now()",
	0, {0},
	NULL, true				/* data-dependent: planned per use */
};

static SaasPlan plan_take_over = {
	"UPDATE saas.jobs SET state = 'retryable', run_at = now(), lease_until = NULL, lease_owner = NULL,"
	" updated_at = now(),"
	" last_error = coalesce(last_error, 'taken over: the previous worker stopped during the call')"
	" WHERE state = 'running'"
	"   AND NOT coalesce(lease_owner IN (SELECT unnest(saas._worker_incarnations())), false)",
	0, {0},
	NULL, true				/* data-dependent: planned per use */
	/*
	 * The live incarnations are read inside the statement, after its
	 * snapshot: a job claimed by a process that started since is either
	 * invisible to the snapshot (still queued) or its owner is in the list.
	 */
};

static SaasPlan plan_settings = {
	"SELECT service, base_url, timeout_ms, max_in_flight, max_retries, backoff_multiplier,"
	" base_backoff_ms, max_backoff_seconds, enabled, retry_window_seconds, "
	CB_SETTINGS_COLUMNS
	" FROM saas.integrations",
	0, {0}
};

/* Up to $3 organizations with queued jobs of service $1, after $2. */
static SaasPlan plan_org_walk = {
	"WITH RECURSIVE o(org_id, n) AS ("
	"  (SELECT j.org_id, 1 FROM saas.jobs j"
	"    WHERE j.service = $1 AND j.state IN ('available', 'retryable') AND j.org_id > $2"
	"    ORDER BY j.org_id LIMIT 1)"
	"  UNION ALL"
	"  SELECT (SELECT j.org_id FROM saas.jobs j"
	"           WHERE j.service = $1 AND j.state IN ('available', 'retryable') AND j.org_id > o.org_id"
	"           ORDER BY j.org_id LIMIT 1), o.n + 1"
	"    FROM o WHERE o.org_id IS NOT NULL AND o.n < $3)"
	" SELECT org_id FROM o WHERE org_id IS NOT NULL ORDER BY n",
	3, {TEXTOID, UUIDOID, INT4OID}
	/*
	 * Generic plan: whatever the values, it is one descent of
	 * jobs_fair_idx per organization (an index-only scan on
	 * (service, org_id)); planning it per use cost 0.2 ms a service a
	 * round, more than running it (0.04 ms for a service with nothing
	 * queued).
	 */
};

/*
 * Claim, for each of the organizations $4, up to $2 of its due jobs of
 * service $1, oldest first: the same share for every organization walked.
 */
static SaasPlan plan_claim = {
	"WITH due AS ("
	"  SELECT c.org_id, c.id FROM unnest($4::uuid[]) AS o(org_id)"
	"    CROSS JOIN LATERAL (SELECT j.org_id, j.id FROM saas.jobs j"
	"       WHERE j.service = $1 AND j.state IN ('available', 'retryable') AND j.org_id = o.org_id"
	"         AND j.run_at <= now() ORDER BY j.run_at LIMIT $2 FOR UPDATE SKIP LOCKED) c)"
	" UPDATE saas.jobs j SET state = 'running', attempt = j.attempt + 1,"
	"  lease_until = now() + make_interval(secs => $3), lease_owner = $5, updated_at = now()"
	" FROM due WHERE j.org_id = due.org_id AND j.id = due.id"
	" RETURNING j.org_id, j.id, j.payload ->> 'method', j.payload ->> 'path', (j.payload -> 'body')::text,"
	"  j.attempt, j.max_attempts, j.idempotency_key, (j.payload -> 'on_success')::text, j.created_at",
	5, {TEXTOID, INT4OID, FLOAT8OID, UUIDARRAYOID, INT8OID},
	NULL, true				/* data-dependent: planned per use (a generic plan
							 * scans the whole queue) */
};

static SaasPlan plan_transition = {
	"INSERT INTO saas._breaker_events (service, from_state, to_state, reason) VALUES ($1, $2, $3, $4)",
	4, {TEXTOID, TEXTOID, TEXTOID, TEXTOID}
};

/* The service is back: the jobs its outage pushed into the future are due now. */
static SaasPlan plan_due_after_close = {
	"UPDATE saas.jobs SET run_at = now() WHERE service = $1 AND state = 'retryable' AND run_at > now()",
	1, {TEXTOID},
	NULL, true				/* data-dependent: planned per use */
};

/*
 * The earliest due job: one index probe per service of saas.integrations
 * (jobs_due_idx is by service), no service spelled here.
 */
static SaasPlan plan_next_due = {
	"SELECT extract(epoch FROM min(d.run_at) - now()) FROM saas.integrations i"
	" CROSS JOIN LATERAL (SELECT min(j.run_at) AS run_at FROM saas.jobs j"
	"   WHERE j.service = i.service AND j.state IN ('available', 'retryable')) d",
	0, {0}
};

/*
 * Where Citus is loaded, saas.jobs and saas.webhook_events are distributed
 * by org_id (docs/scale-out.md): Citus runs FOR UPDATE only in a query routed
 * to one shard, and neither a recursive walk nor a subquery calling this
 * node's shared memory across the shards. So there the walk reads bounded
 * windows of the queue (worker_walk.c), each organization's claim is a router
 * query (org_id = $4), and every other statement is routed by its key or a
 * multi-shard statement Citus accepts. The single node keeps the statements
 * above.
 */
static SaasPlan plan_take_over_citus = {
	"UPDATE saas.jobs SET state = 'retryable', run_at = now(), lease_until = NULL, lease_owner = NULL,"
	" updated_at = now(),"
	" last_error = coalesce(last_error, 'taken over: the previous worker stopped during the call')"
	" WHERE state = 'running' AND updated_at < $2 AND NOT coalesce(lease_owner = ANY ($1), false)",
	2, {INT8ARRAYOID, TIMESTAMPTZOID}
	/*
	 * The live incarnations ($1) are read before the statement, at $2: a
	 * process missing from them registered after $2 and claims with a later
	 * now(), so its jobs are spared by updated_at < $2.
	 */
};

/* One organization's claim ($4), routed to its shard. */
static SaasPlan plan_claim_citus = {
	"WITH due AS ("
	"  SELECT j.id FROM saas.jobs j"
	"   WHERE j.org_id = $4 AND j.service = $1 AND j.state IN ('available', 'retryable')"
	"     AND j.run_at <= now() ORDER BY j.run_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
	" UPDATE saas.jobs j SET state = 'running', attempt = j.attempt + 1,"
	"  lease_until = now() + make_interval(secs => $3), lease_owner = $5, updated_at = now()"
	" FROM due WHERE j.org_id = $4 AND j.id = due.id"
	" RETURNING j.org_id, j.id, j.payload ->> 'method', j.payload ->> 'path', (j.payload -> 'body')::text,"
	"  j.attempt, j.max_attempts, j.idempotency_key, (j.payload -> 'on_success')::text, j.created_at",
	5, {TEXTOID, INT4OID, FLOAT8OID, UUIDOID, INT8OID}
};

/* The earliest due job of service $1: one index descent per shard. */
static SaasPlan plan_next_due_citus = {
	"SELECT extract(epoch FROM min(j.run_at) - now()) FROM saas.jobs j"
	" WHERE j.service = $1 AND j.state IN ('available', 'retryable')",
	1, {TEXTOID}
};

Datum
wk_uuid(const pg_uuid_t *u)
{
	pg_uuid_t  *c = palloc(sizeof(pg_uuid_t));

	*c = *u;
	return UUIDPGetDatum(c);
}

/*
 * wk_recover_leases: jobs left running by a worker that is gone are made
 * due again. take_over (once per extension seen by this process): every
 * running job whose incarnation is not a live worker process's, at once;
 * otherwise, once a second, those whose lease ran out.
 */
void
wk_recover_leases(bool take_over)
{
	static int64 last = 0;
	int64		now = GetCurrentTimestamp();

	if (take_over)
	{
		if (saas_citus_loaded())
		{
			Datum		args[2];

			args[1] = TimestampTzGetDatum(now);
			args[0] = PointerGetDatum(wk_live_incarnations());
			(void) saas_exec(&plan_take_over_citus, args, NULL, false, 0);
		}
		else
			(void) saas_exec(&plan_take_over, NULL, NULL, false, 0);
		if (SPI_processed > 0)
			elog(LOG, "pg_saas worker: took over %lu running jobs of a worker process that is gone",
				 (unsigned long) SPI_processed);
		return;
	}
	if (now - last < USECS_PER_SEC)
		return;
	last = now;
	(void) saas_exec(&plan_reclaim, NULL, NULL, false, 0);
}

/*
 * wk_check_base: whether a service's base_url can make URLs. A bad one is
 * logged once per value; its jobs wait (they are not at fault).
 */
static bool
wk_check_base(int svc, const char *base_url)
{
	static uint32 warned[SAAS_NSERVICES];
	char		err[256];
	char	   *url = wk_build_url(base_url, NULL, 0, NULL, 0, err, sizeof(err));
	uint32		h;

	if (url != NULL)
	{
		size_t		len = strlen(url);

		/* No query or fragment (wk_build_url refuses them): the URL ends with its path. */
		while (len > 0 && url[len - 1] == '/')
			len--;
		wk_url_prefix[svc] = MemoryContextStrdup(wk_settings_cxt, url);
		wk_url_prefix[svc][len] = '\0';
		warned[svc] = 0;
		return true;
	}
	h = hash_bytes((const unsigned char *) base_url, strlen(base_url)) | 1;
	if (warned[svc] != h)
		elog(WARNING, "pg_saas worker: %s: %s; its jobs wait until saas.integrations.base_url is fixed",
			 saas_service_names[svc], err);
	warned[svc] = h;
	return false;
}

/*
 * wk_load_settings: the services' settings into wk_services, by breaker
 * index; they serve the claims and the recording of calls that complete
 * later, so they live in their own context until the next load.
 */
static void
wk_load_settings(void)
{
	uint64		i;

	if (wk_settings_cxt == NULL)
		wk_settings_cxt = AllocSetContextCreate(TopMemoryContext, "pg_saas worker settings",
												ALLOCSET_SMALL_SIZES);
	if (saas_exec(&plan_settings, NULL, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read saas.integrations");
	MemoryContextReset(wk_settings_cxt);
	memset(wk_services, 0, sizeof(wk_services));
	memset(wk_url_prefix, 0, sizeof(wk_url_prefix));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		isnull;
		int			s = saas_service_index(SPI_getvalue(t, d, 1));
		WkService  *w;

		if (s < 0)
			continue;
		w = &wk_services[s];
		w->base_url = MemoryContextStrdup(wk_settings_cxt, SPI_getvalue(t, d, 2));
		w->base_ok = wk_check_base(s, w->base_url);
		w->timeout_ms = DatumGetInt32(SPI_getbinval(t, d, 3, &isnull));
		w->max_in_flight = DatumGetInt32(SPI_getbinval(t, d, 4, &isnull));
		w->max_retries = DatumGetInt32(SPI_getbinval(t, d, 5, &isnull));
		w->multiplier = DatumGetFloat8(SPI_getbinval(t, d, 6, &isnull));
		w->base_backoff_ms = DatumGetInt32(SPI_getbinval(t, d, 7, &isnull));
		w->max_backoff_s = DatumGetInt32(SPI_getbinval(t, d, 8, &isnull));
		w->enabled = DatumGetBool(SPI_getbinval(t, d, 9, &isnull));
		w->retry_window_s = DatumGetInt32(SPI_getbinval(t, d, 10, &isnull));
		cb_settings_read(t, d, 11, &w->cb);
		w->present = true;
	}
}

/*
 * wk_note_transition: a breaker moved; recorded in saas._breaker_events and
 * the log. When it closes, the jobs that backed off during the outage are
 * due at once: the service is back, so they need not wait out a backoff
 * meant for a failing service.
 */
void
wk_note_transition(const CbTransition *tr)
{
	Datum		args[4];

	args[0] = CStringGetTextDatum(saas_service_names[tr->service]);
	args[1] = CStringGetTextDatum(saas_breaker_state_name(tr->from));
	args[2] = CStringGetTextDatum(saas_breaker_state_name(tr->to));
	args[3] = CStringGetTextDatum(tr->reason);
	(void) saas_exec(&plan_transition, args, NULL, false, 0);
	elog(LOG, "pg_saas worker: circuit of %s %s -> %s (%s)", saas_service_names[tr->service],
		 saas_breaker_state_name(tr->from), saas_breaker_state_name(tr->to), tr->reason);
	if (tr->to == CB_CLOSED)
		(void) saas_exec(&plan_due_after_close, args, NULL, false, 0);
}

/*
 * wk_job_url: the URL of a job's call, or NULL with err set. A job's path
 * is "/" resource or "/" resource "/" id, as the outbound flows write it
 * (extension/sql/70_jobs.sql): the resource is one of their literals, the id
 * a service's reference pasted in as it is. So the resource must be a plain
 * name, and everything after the next '/' is the id: one segment whatever
 * it holds ('/', "..", '?', '%', spaces), escaped and never parsed. A call
 * that needs more segments will have to pass them apart.
 */
static char *
wk_job_url(int svc, const char *base_url, const char *path, char *err, size_t errlen)
{
	const char *segs[2];
	int			nsegs = 0;
	size_t		n;
	StringInfoData url;

	if (path == NULL || path[0] != '/')
	{
		snprintf(err, errlen, "the job's path does not start with '/'");
		return NULL;
	}
	path++;
	n = strspn(path, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");
	if (n == 0 || (path[n] != '\0' && path[n] != '/'))
	{
		snprintf(err, errlen, "the job's path is not /resource or /resource/id");
		return NULL;
	}
	segs[nsegs++] = pnstrdup(path, n);
	if (path[n] == '/')
		segs[nsegs++] = path + n + 1;
	if (wk_url_prefix[svc] == NULL || nsegs == 2)
		return wk_build_url(base_url, segs, nsegs, NULL, 0, err, errlen);

	/*
	 * The common case, a collection ("/messages"): the same URL wk_build_url
	 * makes (its base, without trailing slashes, then "/" and the segment),
	 * without parsing the base again: the resource is a non-empty run of
	 * A-Z a-z 0-9 _ -, all unreserved, so escaping leaves it as it is and it
	 * is never "." or "..". A path with an id goes through wk_build_url,
	 * which escapes and checks the id.
	 */
	initStringInfo(&url);
	appendStringInfoString(&url, wk_url_prefix[svc]);
	appendStringInfoChar(&url, '/');
	appendStringInfoString(&url, segs[0]);
	return url.data;
}

/* Calls made ready inside the claim transaction, started after its commit. */
static WkInflight *wk_ready[WK_MAX_IN_FLIGHT + SAAS_NSERVICES];
static int	wk_nready = 0;

/* wk_new_inflight: a call's own memory context and record. */
static WkInflight *
wk_new_inflight(int svc)
{
	MemoryContext cxt;
	WkInflight *f;

	if (wk_calls_cxt == NULL)
		wk_calls_cxt = AllocSetContextCreate(TopMemoryContext, "pg_saas worker calls",
											 ALLOCSET_DEFAULT_SIZES);
	cxt = AllocSetContextCreate(wk_calls_cxt, "pg_saas call", ALLOCSET_SMALL_SIZES);
	f = MemoryContextAllocZero(cxt, sizeof(WkInflight));
	f->cxt = cxt;
	f->call.svc = svc;
	f->call.timeout_ms = wk_services[svc].timeout_ms;
	return f;
}

/* wk_finish_inflight: the call is recorded; its memory goes. */
void
wk_finish_inflight(WkInflight *f)
{
	if (f->health)
		wk_health_in_flight[f->call.svc] = false;
	MemoryContextDelete(f->cxt);
}

/*
 * wk_start_health: a half-open breaker with a probe slot and no job to
 * probe with: GET base_url. It is judged by cb_record_call like any call.
 */
static void
wk_start_health(int svc)
{
	WkInflight *f = wk_new_inflight(svc);
	MemoryContext old = MemoryContextSwitchTo(f->cxt);

	f->health = true;
	f->call.method = "GET";
	f->call.url = wk_build_url(wk_services[svc].base_url, NULL, 0, NULL, 0,
							   f->call.error, sizeof(f->call.error));
	f->call.resp_max = 4096;
	wk_health_in_flight[svc] = true;
	wk_ready[wk_nready++] = f;
	MemoryContextSwitchTo(old);
}

/*
 * wk_share: this process's part of a service's max_in_flight. The parts of
 * all worker processes add up to it exactly (the first ones get the
 * remainder), so the cap holds without the processes talking; a service
 * whose cap is below the number of processes is called by the first ones.
 */
static int
wk_share(int max_in_flight)
{
	int			n = saas_worker_processes;

	return max_in_flight / n + (wk_slot < max_in_flight % n ? 1 : 0);
}

static void wk_ready_claimed(int s, int n);

/*
 * wk_claim_service: claim up to allowed jobs of one service, fairly across
 * organizations, make their calls ready (wk_ready_claimed), and remember
 * where the next claim starts. Returns how many jobs it claimed.
 */
static int
wk_claim_service(int s, int allowed)
{
	WkService  *w = &wk_services[s];
	int			limit = Min(allowed, 256);
	bool		citus = saas_citus_loaded();
	Datum		args[5];
	Datum	   *orgs;
	int			norgs,
				i,
				claimed = 0;
	bool		end;
	static const pg_uuid_t zero;

	args[0] = CStringGetTextDatum(saas_service_names[s]);
	if (citus)
	{
		orgs = palloc(sizeof(Datum) * limit);
		norgs = wk_walk_citus(args[0], &wk_cursor[s], limit, orgs, &end);
	}
	else
	{
		args[1] = UUIDPGetDatum(&wk_cursor[s]);
		args[2] = Int32GetDatum(limit);
		if (saas_exec(&plan_org_walk, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not find organizations with queued jobs");
		norgs = (int) SPI_processed;
		end = norgs < limit;
		orgs = palloc(sizeof(Datum) * Max(norgs, 1));
		for (i = 0; i < norgs; i++)
		{
			bool		isnull;

			orgs[i] = wk_uuid(DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[i],
														  SPI_tuptable->tupdesc, 1, &isnull)));
		}
	}
	if (norgs == 0)
	{
		wk_cursor[s] = zero;
		return 0;
	}

	args[1] = Int32GetDatum(Max(allowed / norgs, 1));	/* each one's share */
	args[2] = Float8GetDatum(w->timeout_ms / 1000.0 * 2 + 30);
	args[4] = Int64GetDatum(wk_incarnation);
	if (citus)
	{
		/* One router query per organization, on its shard. */
		for (i = 0; i < norgs && claimed < allowed; i++)
		{
			args[3] = orgs[i];
			if (saas_exec(&plan_claim_citus, args, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
				elog(ERROR, "could not claim jobs");
			wk_ready_claimed(s, (int) SPI_processed);
			claimed += (int) SPI_processed;
		}
	}
	else
	{
		args[3] = PointerGetDatum(construct_array(orgs, norgs, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
		if (saas_exec(&plan_claim, args, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "could not claim jobs");
		claimed = (int) SPI_processed;
		wk_ready_claimed(s, claimed);
	}

	/* Every organization walked had its share: the next walk starts after them. */
	if (end)
		wk_cursor[s] = zero;	/* the walk reached the end: wrap around */
	else
		wk_cursor[s] = *DatumGetUUIDP(orgs[norgs - 1]);
	return claimed;
}

/*
 * wk_text_col: a text column of a row as a C string in the current memory
 * context, or NULL; without SPI_getvalue's lookup of the output function
 * for every value.
 */
static char *
wk_text_col(HeapTuple t, TupleDesc d, int col)
{
	bool		isnull;
	Datum		v = SPI_getbinval(t, d, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(v);
}

/*
 * wk_ready_claimed: the calls of the rows wk_claim_service returned, copied
 * out of SPI into their own contexts; they start after the commit.
 */
static void
wk_ready_claimed(int s, int n)
{
	WkService  *w = &wk_services[s];
	SPITupleTable *tt = SPI_tuptable;
	int			k;

	for (k = 0; k < n; k++)
	{
		HeapTuple	t = tt->vals[k];
		TupleDesc	d = tt->tupdesc;
		bool		isnull;
		WkInflight *f = wk_new_inflight(s);
		MemoryContext old = MemoryContextSwitchTo(f->cxt);
		char	   *method = wk_text_col(t, d, 3);
		char	   *body = wk_text_col(t, d, 5);

		f->org_id = *DatumGetUUIDP(SPI_getbinval(t, d, 1, &isnull));
		f->id = *DatumGetUUIDP(SPI_getbinval(t, d, 2, &isnull));
		f->attempt = DatumGetInt32(SPI_getbinval(t, d, 6, &isnull));
		f->max_attempts = DatumGetInt32(SPI_getbinval(t, d, 7, &isnull));
		f->on_success = wk_text_col(t, d, 9);
		f->created_at = DatumGetTimestampTz(SPI_getbinval(t, d, 10, &isnull));
		f->call.method = method ? method : "POST";
		f->call.url = wk_job_url(s, w->base_url, wk_text_col(t, d, 4), f->call.error,
								 sizeof(f->call.error));
		f->call.body = body;
		f->call.idempotency_key = wk_text_col(t, d, 8);
		wk_ready[wk_nready++] = f;
		MemoryContextSwitchTo(old);
	}
}

/*
 * wk_next_due: seconds until the earliest queued job is due (negative:
 * overdue); false when nothing is queued. Where Citus is loaded, one
 * multi-shard read per service (a lateral join over the reference table
 * saas.integrations is not one Citus can run).
 */
static bool
wk_next_due(double *secs)
{
	bool		found = false;
	bool		isnull;
	Datum		d;
	int			s;

	if (!saas_citus_loaded())
	{
		if (saas_exec(&plan_next_due, NULL, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			return false;
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (isnull)
			return false;
		*secs = DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
		return true;
	}
	for (s = 0; s < SAAS_NSERVICES; s++)
	{
		Datum		arg;
		double		v;

		if (!wk_services[s].present)
			continue;
		arg = CStringGetTextDatum(saas_service_names[s]);
		if (saas_exec(&plan_next_due_citus, &arg, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			continue;
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (isnull)
			continue;
		v = DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
		if (!found || v < *secs)
			*secs = v;
		found = true;
	}
	return found;
}

/*
 * wk_claim_and_start: one transaction that records the calls completed
 * since the last round (job_record.c) and claims jobs for every service
 * with room; then the calls start, only once the claim is committed (a
 * call never runs for a claim that could still roll back). Returns how many jobs were
 * claimed; *wait_ms is how long the worker may wait for completions or new
 * work before the next round.
 */
int
wk_claim_and_start(long *wait_ms)
{
	CbTransition trs[SAAS_NSERVICES];
	int			ntr = 0;
	int			claimed[SAAS_NSERVICES] = {0};
	int			total = 0;
	int			s,
				i;
	bool		blocked = false;
	int64		now;

	*wait_ms = 1000;
	(void) wk_record_collect();
	if (!wk_xact_begin("pg_saas worker: recording outcomes and claiming jobs"))
	{
		wk_record_not_ready();
		wk_xact_commit();
		return 0;
	}
	(void) wk_record_write();
	wk_load_settings();
	now = GetCurrentTimestamp();
	for (s = 0; s < SAAS_NSERVICES; s++)
	{
		WkService  *w = &wk_services[s];
		int			room,
					allowed;
		bool		moved;

		if (!w->present || !w->enabled || !w->base_ok)
			continue;
		room = Min(Min(wk_share(w->max_in_flight), WK_MAX_IN_FLIGHT) - wk_http_in_flight(s),
				   WK_MAX_IN_FLIGHT - wk_http_in_flight_total() - total);
		if (room <= 0)
			continue;

		allowed = cb_acquire(s, &w->cb, now, room, &trs[ntr], &moved);
		if (moved)
			ntr++;
		if (allowed == 0)
		{
			blocked = true;
			continue;
		}
		claimed[s] = wk_claim_service(s, allowed);
		total += claimed[s];
		if (claimed[s] < allowed && cb_state(s) == CB_HALF_OPEN)
		{
			int			unused = allowed - claimed[s];

			/* Nothing to probe with: one health call uses one slot. */
			if (claimed[s] == 0 && !wk_health_in_flight[s])
			{
				unused--;
				wk_start_health(s);
			}
			cb_unused(s, unused);
		}
	}
	for (i = 0; i < ntr; i++)
		wk_note_transition(&trs[i]);

	/* Sleep until the next due job (at most a second: the safety net). */
	if (total == 0)
	{
		double		secs;

		if (wk_next_due(&secs))
		{
			/* Due now but not claimed: a breaker or a pause holds them; poll gently. */
			if (secs <= 0)
				*wait_ms = blocked ? 250 : 1000;
			else
				*wait_ms = (long) Min(1000.0, Max(10.0, secs * 1000.0));
		}
	}
	wk_xact_commit();

	/* The claims are committed: now the calls may go. */
	if (wk_nready > 0)
		pgstat_report_activity(STATE_RUNNING, "pg_saas worker: calling services");
	for (i = 0; i < wk_nready; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(wk_ready[i]->cxt);

		wk_http_start(&wk_ready[i]->call, true);
		MemoryContextSwitchTo(old);
	}
	wk_nready = 0;
	return total;
}

/* ---- SQL-callable pieces of the worker ---- */

PG_FUNCTION_INFO_V1(saas_wake_worker);
PG_FUNCTION_INFO_V1(saas_worker_incarnations);

/*
 * wk_live_incarnations: the lease owners of the worker processes alive now
 * (their jobs are theirs to finish), as a bigint[].
 */
static ArrayType *
wk_live_incarnations(void)
{
	Datum		inc[WK_MAX_PROCS];
	int			n = 0,
				i;

	LWLockAcquire(saas_worker_lock(), LW_SHARED);
	for (i = 0; i < WK_MAX_PROCS; i++)
		if (saas_worker_shared->procs[i].incarnation != 0)
			inc[n++] = Int64GetDatum(saas_worker_shared->procs[i].incarnation);
	LWLockRelease(saas_worker_lock());
	return construct_array(inc, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* SQL: saas._worker_incarnations(): wk_live_incarnations. */
Datum
saas_worker_incarnations(PG_FUNCTION_ARGS)
{
	PG_RETURN_ARRAYTYPE_P(wk_live_incarnations());
}

/* SQL: saas._wake_worker(): wake the worker when this transaction commits. */
Datum
saas_wake_worker(PG_FUNCTION_ARGS)
{
	saas_worker_wake_at_commit();
	PG_RETURN_VOID();
}
