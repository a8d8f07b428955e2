/*-------------------------------------------------------------------------
 *
 * worker_jobs.c
 *	  Applying ingested events, and one round of outbound jobs: claim,
 *	  call (outside any transaction), record.
 *
 * Retry policy (per service, from saas.integrations): 2xx is done; 408,
 * 429, 5xx, timeouts and connection errors are retried after
 * base_backoff_ms * backoff_multiplier^(attempt-1), capped at
 * max_backoff_seconds, with jitter (50-100%), and never sooner than a 429's
 * Retry-After; any other answer (4xx, 3xx) is dead at once, and so is a
 * request that cannot be made (its URL cannot be built from the job's
 * path, libcurl calls it malformed): both are the job's own problem, retried
 * only by saas.retry_job, and never counted against the service's breaker
 * (cb_record_call). A job out of attempts is dead. Jobs of a service whose
 * breaker is open are not claimed at all, so they wait without spending
 * attempts; neither are those of a service whose base_url is not a usable
 * URL (a setting to fix, not the jobs' fault).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
#include "fmgr.h"
#include "utils/timestamp.h"

#include "pg_saas.h"
#include "breaker.h"
#include "http_client.h"
#include "spi_util.h"
#include "worker_jobs.h"
#include "worker_shmem.h"

#define WK_MAX_CALLS 256

/* Set while the worker applies events: their changes are not pushed back. */
static bool wk_in_sync = false;

static SaasPlan plan_pending_events = {
	"SELECT org_id, service, event_id FROM saas.webhook_events WHERE applied_at IS NULL"
	" ORDER BY received_at, occurred_at LIMIT $1 FOR UPDATE SKIP LOCKED",
	1, {INT4OID},
	NULL, true				/* data-dependent: planned per use */
};

static SaasPlan plan_apply = {
	"SELECT saas._apply_event($1, $2, $3)",
	3, {UUIDOID, TEXTOID, TEXTOID}
};

static SaasPlan plan_reclaim = {
	"UPDATE saas.jobs SET state = 'retryable', run_at = now(), lease_until = NULL, updated_at = now(),"
	" last_error = coalesce(last_error, 'lease expired: the worker stopped during the call')"
	" WHERE state = 'running' AND lease_until < now()",
	0, {0},
	NULL, true				/* data-dependent: planned per use */
};

static SaasPlan plan_settings = {
	"SELECT service, base_url, timeout_ms, max_in_flight, max_retries, backoff_multiplier,"
	" base_backoff_ms, max_backoff_seconds, breaker_failure_rate, breaker_min_volume,"
	" breaker_window_seconds, breaker_reset_seconds, breaker_half_open_probes, enabled"
	" FROM saas.integrations",
	0, {0}
};

static SaasPlan plan_claim = {
	"WITH due AS (SELECT org_id, id FROM saas.jobs"
	"  WHERE state IN ('available', 'retryable') AND run_at <= now() AND service = $1"
	"  ORDER BY run_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
	" UPDATE saas.jobs j SET state = 'running', attempt = j.attempt + 1,"
	"  lease_until = now() + make_interval(secs => $3), updated_at = now()"
	" FROM due WHERE j.org_id = due.org_id AND j.id = due.id"
	" RETURNING j.org_id, j.id, j.payload ->> 'method', j.payload ->> 'path', j.payload -> 'body',"
	"  j.attempt, j.max_attempts, j.idempotency_key, j.payload -> 'on_success'",
	3, {TEXTOID, INT4OID, FLOAT8OID},
	NULL, true				/* data-dependent: planned per use */
};

/* All successes of a round in one statement. */
static SaasPlan plan_done = {
	"UPDATE saas.jobs j SET state = 'succeeded', finished_at = now(), updated_at = now(),"
	" lease_until = NULL, last_status = u.status, last_error = NULL"
	" FROM unnest($1::uuid[], $2::uuid[], $3::int[]) AS u(org_id, id, status)"
	" WHERE j.org_id = u.org_id AND j.id = u.id",
	3, {UUIDARRAYOID, UUIDARRAYOID, INT4ARRAYOID},
	NULL, true				/* data-dependent: planned per use */
};

static SaasPlan plan_retry = {
	"UPDATE saas.jobs SET state = 'retryable', run_at = now() + make_interval(secs => $3),"
	" updated_at = now(), lease_until = NULL, last_status = $4, last_error = $5"
	" WHERE org_id = $1 AND id = $2",
	5, {UUIDOID, UUIDOID, FLOAT8OID, INT4OID, TEXTOID}
};

static SaasPlan plan_dead = {
	"UPDATE saas.jobs SET state = 'dead', finished_at = now(), updated_at = now(),"
	" lease_until = NULL, last_status = $3, last_error = $4 WHERE org_id = $1 AND id = $2",
	4, {UUIDOID, UUIDOID, INT4OID, TEXTOID}
};

static SaasPlan plan_transition = {
	"INSERT INTO saas._breaker_events (service, from_state, to_state, reason) VALUES ($1, $2, $3, $4)",
	4, {TEXTOID, TEXTOID, TEXTOID, TEXTOID}
};

static SaasPlan plan_prune = {
	"DELETE FROM saas.jobs WHERE ctid = ANY (ARRAY(SELECT ctid FROM saas.jobs"
	" WHERE state = 'succeeded' AND finished_at < now() - interval '7 days' LIMIT 5000))",
	0, {0}
};

/* The earliest due job: one index probe per service (jobs_due_idx is by service). */
static SaasPlan plan_next_due = {
	"SELECT extract(epoch FROM min(d) - now()) FROM (VALUES"
	" ((SELECT min(run_at) FROM saas.jobs WHERE service = 'user-service' AND state IN ('available', 'retryable'))),"
	" ((SELECT min(run_at) FROM saas.jobs WHERE service = 'payment-service' AND state IN ('available', 'retryable'))),"
	" ((SELECT min(run_at) FROM saas.jobs WHERE service = 'communication-service' AND state IN ('available', 'retryable')))"
	") AS t(d)",
	0, {0}
};

static SaasPlan plan_on_success = {
	"SELECT saas._job_succeeded($1, $2, $3, $4)",
	4, {UUIDOID, UUIDOID, JSONBOID, TEXTOID}
};

/* Settings of one service for a round. */
typedef struct WkService
{
	char	   *base_url;
	bool		base_ok;		/* base_url makes URLs (wk_build_url) */
	int			timeout_ms;
	int			max_in_flight;
	int			max_retries;
	double		multiplier;
	int			base_backoff_ms;
	int			max_backoff_s;
	CbSettings	cb;
	bool		enabled;
	bool		present;
} WkService;

/* One claimed job and its call. */
typedef struct WkJob
{
	pg_uuid_t	org_id;
	pg_uuid_t	id;
	int			attempt;
	int			max_attempts;
	char	   *on_success;
} WkJob;

static Datum
wk_uuid(const pg_uuid_t *u)
{
	pg_uuid_t  *c = palloc(sizeof(pg_uuid_t));

	*c = *u;
	return UUIDPGetDatum(c);
}

/*
 * wk_apply_events: apply up to batch pending events, each under a trusted
 * context of its organization. Runs inside the caller's transaction.
 */
int
wk_apply_events(int batch)
{
	Datum		arg = Int32GetDatum(batch);
	uint64		n,
				i;
	SPITupleTable *events;

	if (saas_exec(&plan_pending_events, &arg, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pending events");
	n = SPI_processed;
	events = SPI_tuptable;
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		args[3];
		pg_uuid_t	org;
		int			nest;

		org = *DatumGetUUIDP(SPI_getbinval(events->vals[i], events->tupdesc, 1, &isnull));
		args[0] = wk_uuid(&org);
		args[1] = SPI_getbinval(events->vals[i], events->tupdesc, 2, &isnull);
		args[2] = SPI_getbinval(events->vals[i], events->tupdesc, 3, &isnull);
		nest = saas_context_push_service(&org, TextDatumGetCString(args[1]));
		wk_in_sync = true;
		PG_TRY();
		{
			if (saas_exec(&plan_apply, args, NULL, false, 1) != SPI_OK_SELECT)
				elog(ERROR, "could not apply event");
		}
		PG_FINALLY();
		{
			wk_in_sync = false;
		}
		PG_END_TRY();
		saas_context_pop(nest);
	}
	if (n > 0)
		pg_atomic_fetch_add_u64(&saas_worker_shared->events_applied, n);
	return (int) n;
}

void
wk_reclaim_expired_leases(void)
{
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
 * wk_load_settings: the services' settings, by breaker index; strings are
 * copied into keep (they outlive the transaction).
 */
static void
wk_load_settings(WkService *svcs, MemoryContext keep)
{
	uint64		i;

	memset(svcs, 0, sizeof(WkService) * SAAS_NSERVICES);
	if (saas_exec(&plan_settings, NULL, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read saas.integrations");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		isnull;
		int			s = saas_service_index(SPI_getvalue(t, d, 1));
		WkService  *w;

		if (s < 0)
			continue;
		w = &svcs[s];
		w->base_url = MemoryContextStrdup(keep, SPI_getvalue(t, d, 2));
		w->base_ok = wk_check_base(s, w->base_url);
		w->timeout_ms = DatumGetInt32(SPI_getbinval(t, d, 3, &isnull));
		w->max_in_flight = DatumGetInt32(SPI_getbinval(t, d, 4, &isnull));
		w->max_retries = DatumGetInt32(SPI_getbinval(t, d, 5, &isnull));
		w->multiplier = DatumGetFloat8(SPI_getbinval(t, d, 6, &isnull));
		w->base_backoff_ms = DatumGetInt32(SPI_getbinval(t, d, 7, &isnull));
		w->max_backoff_s = DatumGetInt32(SPI_getbinval(t, d, 8, &isnull));
		w->cb.failure_rate = DatumGetFloat8(SPI_getbinval(t, d, 9, &isnull));
		w->cb.min_volume = DatumGetInt32(SPI_getbinval(t, d, 10, &isnull));
		w->cb.window_s = DatumGetInt32(SPI_getbinval(t, d, 11, &isnull));
		w->cb.reset_s = DatumGetInt32(SPI_getbinval(t, d, 12, &isnull));
		w->cb.probes = DatumGetInt32(SPI_getbinval(t, d, 13, &isnull));
		w->enabled = DatumGetBool(SPI_getbinval(t, d, 14, &isnull));
		w->present = true;
	}
}

/* wk_backoff_s: the delay before the next attempt, with jitter. */
static double
wk_backoff_s(const WkService *w, int attempt, int retry_after_s)
{
	double		ms = w->base_backoff_ms;
	int			i;
	double		cap = (double) w->max_backoff_s * 1000.0;

	for (i = 1; i < attempt && ms < cap; i++)
		ms *= w->multiplier;
	ms = Min(ms, cap);
	ms = ms * (0.5 + 0.5 * pg_prng_double(&pg_global_prng_state));
	if (retry_after_s > 0)
		ms = Max(ms, retry_after_s * 1000.0);
	return ms / 1000.0;
}

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
wk_job_url(const char *base_url, const char *path, char *err, size_t errlen)
{
	const char *segs[2];
	int			nsegs = 0;
	size_t		n;

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
	return wk_build_url(base_url, segs, nsegs, NULL, 0, err, errlen);
}

/*
 * wk_run_jobs_round: claim, call, record. Returns how many jobs it
 * finished; sets *sleep_ms to when the next job is due (capped).
 */
int
wk_run_jobs_round(long *sleep_ms)
{
	WkService	svcs[SAAS_NSERVICES];
	WkCall	   *calls = palloc0(sizeof(WkCall) * WK_MAX_CALLS);
	WkJob	   *jobs = palloc0(sizeof(WkJob) * WK_MAX_CALLS);
	CbTransition pending_tr[SAAS_NSERVICES * 2];
	int			ntr = 0;
	int			n = 0;
	int			s,
				i;
	int64		now;
	bool		isnull;
	MemoryContext keep = CurrentMemoryContext;	/* outlives SPI_finish */
	Datum	   *done_org,
			   *done_id,
			   *done_status;
	int			ndone = 0;

	/* Claim, and commit the claim, before any call. */
	if (!wk_xact_begin("pg_saas worker: claiming jobs"))
	{
		wk_xact_commit();
		return 0;
	}
	wk_load_settings(svcs, keep);
	now = GetCurrentTimestamp();
	for (s = 0; s < SAAS_NSERVICES; s++)
	{
		WkService  *w = &svcs[s];
		int			want,
					allowed;
		bool		moved;
		Datum		args[3];
		uint64		k;

		if (!w->present || !w->enabled || !w->base_ok)
			continue;
		want = Min(w->max_in_flight, WK_MAX_CALLS - n);
		if (want <= 0)
			break;
		allowed = cb_acquire(s, &w->cb, now, want, &pending_tr[ntr], &moved);
		if (moved)
			ntr++;
		if (allowed == 0)
			continue;
		args[0] = CStringGetTextDatum(saas_service_names[s]);
		args[1] = Int32GetDatum(allowed);
		args[2] = Float8GetDatum(w->timeout_ms / 1000.0 * 2 + 30);
		if (saas_exec(&plan_claim, args, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "could not claim jobs");
		for (k = 0; k < SPI_processed; k++)
		{
			HeapTuple	t = SPI_tuptable->vals[k];
			TupleDesc	d = SPI_tuptable->tupdesc;
			char	   *method = SPI_getvalue(t, d, 3);
			char	   *path = SPI_getvalue(t, d, 4);
			char	   *body = SPI_getvalue(t, d, 5);
			WkCall	   *c = &calls[n];
			WkJob	   *j = &jobs[n];
			char	   *url;

			j->org_id = *DatumGetUUIDP(SPI_getbinval(t, d, 1, &isnull));
			j->id = *DatumGetUUIDP(SPI_getbinval(t, d, 2, &isnull));
			j->attempt = DatumGetInt32(SPI_getbinval(t, d, 6, &isnull));
			j->max_attempts = DatumGetInt32(SPI_getbinval(t, d, 7, &isnull));
			j->on_success = SPI_getvalue(t, d, 9);
			if (j->on_success)
				j->on_success = MemoryContextStrdup(keep, j->on_success);
			c->svc = s;
			c->method = MemoryContextStrdup(keep, method ? method : "POST");
			url = wk_job_url(w->base_url, path, c->error, sizeof(c->error));
			c->url = url ? MemoryContextStrdup(keep, url) : NULL;
			c->body = body ? MemoryContextStrdup(keep, body) : NULL;
			c->idempotency_key = MemoryContextStrdup(keep, SPI_getvalue(t, d, 8));
			c->timeout_ms = w->timeout_ms;
			n++;
		}
		/* Probes granted but not used go back. */
		if ((int) SPI_processed < allowed && cb_state(s) == CB_HALF_OPEN)
		{
			LWLockAcquire(saas_worker_lock(), LW_EXCLUSIVE);
			saas_worker_shared->breakers[s].probes_in_flight =
				Max(0, saas_worker_shared->breakers[s].probes_in_flight - (allowed - (int) SPI_processed));
			LWLockRelease(saas_worker_lock());
		}
	}
	for (i = 0; i < ntr; i++)
		wk_note_transition(&pending_tr[i]);
	ntr = 0;
	wk_xact_commit();

	if (n > 0)
	{
		pgstat_report_activity(STATE_RUNNING, "pg_saas worker: calling services");
		wk_http_run(calls, n);
		pg_atomic_fetch_add_u64(&saas_worker_shared->calls, n);
	}

	/* Record every outcome in one transaction. */
	done_org = palloc(sizeof(Datum) * Max(n, 1));
	done_id = palloc(sizeof(Datum) * Max(n, 1));
	done_status = palloc(sizeof(Datum) * Max(n, 1));
	if (!wk_xact_begin("pg_saas worker: recording outcomes"))
	{
		/* Dropped while we called: the jobs went with it. */
		wk_xact_commit();
		return n;
	}
	now = GetCurrentTimestamp();
	for (i = 0; i < n; i++)
	{
		WkCall	   *c = &calls[i];
		WkJob	   *j = &jobs[i];
		WkService  *w = &svcs[c->svc];
		bool		ok = (c->outcome == WK_OK);
		bool		retryable = (c->outcome == WK_SERVICE_FAILED || c->outcome == WK_THROTTLED ||
								 c->outcome == WK_LOCAL_ERROR);
		char		err[400];
		bool		moved;
		Datum		args[5];
		char		nulls[6] = "     ";

		if (c->status != 0)
			snprintf(err, sizeof(err), "HTTP %ld: %.300s", c->status, c->resp ? c->resp : "");
		else if (c->outcome == WK_UNSENDABLE)
			snprintf(err, sizeof(err), "the request cannot be made: %s", c->error);
		else
			snprintf(err, sizeof(err), "%s", c->error[0] ? c->error : "no answer");

		/* Only the service's own failures count against its breaker. */
		cb_record_call(&w->cb, c, now, &pending_tr[ntr], &moved);
		if (moved && ntr < (int) lengthof(pending_tr) - 1)
			ntr++;

		args[0] = wk_uuid(&j->org_id);
		args[1] = wk_uuid(&j->id);
		if (ok)
		{
			done_org[ndone] = args[0];
			done_id[ndone] = args[1];
			done_status[ndone] = Int32GetDatum((int32) c->status);
			ndone++;
			if (j->on_success)
			{
				Datum		a2[4];
				char		n2[5] = "    ";

				a2[0] = args[0];
				a2[1] = args[1];
				a2[2] = DirectFunctionCall1(jsonb_in, CStringGetDatum(j->on_success));
				a2[3] = CStringGetTextDatum(c->resp ? c->resp : "");
				(void) saas_exec(&plan_on_success, a2, n2, false, 0);
			}
		}
		else if (retryable && j->attempt < j->max_attempts)
		{
			args[2] = Float8GetDatum(wk_backoff_s(w, j->attempt, c->retry_after_s));
			args[3] = Int32GetDatum((int32) c->status);
			if (c->status == 0)
				nulls[3] = 'n';
			args[4] = CStringGetTextDatum(err);
			(void) saas_exec(&plan_retry, args, nulls, false, 0);
		}
		else
		{
			char		why[480];

			snprintf(why, sizeof(why), "%s%s", err,
					 retryable ? " (attempts exhausted)" : " (not retryable)");
			args[2] = Int32GetDatum((int32) c->status);
			if (c->status == 0)
				nulls[2] = 'n';
			args[3] = CStringGetTextDatum(why);
			(void) saas_exec(&plan_dead, args, nulls, false, 0);
		}
	}
	if (ndone > 0)
	{
		Datum		arrs[3];

		arrs[0] = PointerGetDatum(construct_array(done_org, ndone, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
		arrs[1] = PointerGetDatum(construct_array(done_id, ndone, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
		arrs[2] = PointerGetDatum(construct_array(done_status, ndone, INT4OID, 4, true, TYPALIGN_INT));
		if (saas_exec(&plan_done, arrs, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not record finished jobs");
	}
	for (i = 0; i < ntr; i++)
		wk_note_transition(&pending_tr[i]);

	/* Sleep until the next due job (at most a second: the safety net). */
	if (saas_exec(&plan_next_due, NULL, NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			double		secs = DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));

			/* Due now but not claimed means a breaker holds them: poll gently. */
			if (secs <= 0 && n == 0)
				*sleep_ms = 1000;
			else
				*sleep_ms = (long) Min(1000.0, Max(10.0, secs * 1000.0));
		}
	}
	wk_xact_commit();
	return n;
}

/*
 * wk_prune_finished_jobs: succeeded jobs older than a week are deleted, a
 * bounded batch once a minute, so the queue table does not grow forever.
 * Dead jobs stay until someone retries or deletes them.
 */
void
wk_prune_finished_jobs(void)
{
	static int64 last = 0;
	int64		now = GetCurrentTimestamp();

	if (now - last < 60 * USECS_PER_SEC)
		return;
	last = now;
	if (wk_xact_begin("pg_saas worker: pruning finished jobs"))
		(void) saas_exec(&plan_prune, NULL, NULL, false, 0);
	wk_xact_commit();
}

/* wk_set_in_sync: mark changes as coming from a service (sync.c). */
void
wk_set_in_sync(bool on)
{
	wk_in_sync = on;
}

/* ---- SQL-callable pieces of the worker ---- */

PG_FUNCTION_INFO_V1(saas_in_sync);
PG_FUNCTION_INFO_V1(saas_wake_worker);

/* SQL: saas._in_sync(): true while this process applies a service's change. */
Datum
saas_in_sync(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(wk_in_sync);
}

/* SQL: saas._wake_worker(): wake the worker when this transaction commits. */
Datum
saas_wake_worker(PG_FUNCTION_ARGS)
{
	saas_worker_wake_at_commit();
	PG_RETURN_VOID();
}
