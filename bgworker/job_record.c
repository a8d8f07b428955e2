/*-------------------------------------------------------------------------
 *
 * job_record.c
 *	  The recording half of the job queue: what each completed call means
 *	  for its job (the retry policy), written as soon as the call completes.
 *
 * Retry policy, per service (saas.integrations), decided by the call's
 * WkOutcome (http_client.c, the one classifier the pull sync uses too):
 *
 * - WK_OK (2xx): succeeded; saas._job_succeeded records the service's ids
 *   and chains follow-up calls.
 * - WK_SERVICE_FAILED (connection error, timeout, 408, 5xx): retried after
 *   base_backoff_ms * backoff_multiplier^(attempt-1), capped at
 *   max_backoff_seconds, with jitter (50-100%). The job is dead only when
 *   both its attempts are spent and its retry window (retry_window_seconds
 *   since it was enqueued, 3 days by default) has passed: an outage of
 *   hours costs no work. Attempts are spent only on calls the service was
 *   let to answer: while its breaker is open or a 429 paused it, jobs are
 *   not claimed at all.
 * - WK_THROTTLED (429) and WK_LOCAL_ERROR (our side failed): retried no
 *   sooner than Retry-After, and the attempt is given back: the service did
 *   not judge the request.
 * - WK_REFUSED (3xx, other 4xx) and WK_UNSENDABLE (no request could be
 *   made): dead at once; the job's own problem, retried by saas.retry_job(s).
 *
 * When: calls are collected as they complete (wk_record_collect, the
 * breaker hears them then), and their outcomes are written in the
 * transaction that claims the next jobs (wk_claim_and_start): one commit a
 * round. Recording first frees the room the claims then fill.
 *
 * Isolation: all outcomes of a batch are written in one subtransaction;
 * if any statement fails, that is rolled back and each job is written in
 * its own, so one bad job (say, a rule refusing the id a service returned)
 * cannot lose the others' outcomes. A success whose result cannot be
 * recorded is dead with the reason (its call is not repeated); a job whose
 * outcome cannot be written at all stays running, and its lease brings it
 * back.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "pg_saas.h"
#include "common/common.h"
#include "breaker.h"
#include "http_client.h"
#include "worker_jobs.h"
#include "worker_shmem.h"

#define REC_MAX (WK_MAX_IN_FLIGHT + SAAS_NSERVICES)

typedef enum RecKind
{
	REC_DONE,
	REC_RETRY,
	REC_DEAD,
	REC_NONE					/* a health call: nothing to write */
} RecKind;

typedef struct RecJob
{
	WkInflight *f;
	RecKind		kind;
	double		delay_s;		/* REC_RETRY */
	int			refund;			/* REC_RETRY: 1 gives the attempt back */
	char		error[480];
} RecJob;

/* Finished calls not yet recorded (pg_saas was busy being dropped). */
static WkInflight *rec_held[REC_MAX];
static int	rec_nheld = 0;

static SaasPlan plan_done = {
	"UPDATE saas.jobs j SET state = 'succeeded', finished_at = now(), updated_at = now(),"
	" lease_until = NULL, lease_owner = NULL, last_status = u.status, last_error = NULL"
	" FROM unnest($1::uuid[], $2::uuid[], $3::int[]) AS u(org_id, id, status)"
	" WHERE j.org_id = u.org_id AND j.id = u.id AND j.state = 'running'",
	3, {UUIDARRAYOID, UUIDARRAYOID, INT4ARRAYOID}
	/* Generic plan: a nested loop over the arrays, one jobs_pkey probe each. */
};

/* Where Citus is loaded: one success, routed to its job's shard by org_id. */
static SaasPlan plan_done_citus = {
	"UPDATE saas.jobs SET state = 'succeeded', finished_at = now(), updated_at = now(),"
	" lease_until = NULL, lease_owner = NULL, last_status = $3, last_error = NULL"
	" WHERE org_id = $1 AND id = $2 AND state = 'running'",
	3, {UUIDOID, UUIDOID, INT4OID}
};

static SaasPlan plan_on_success = {
	"SELECT saas._job_succeeded($1, $2, $3, $4)",
	4, {UUIDOID, UUIDOID, JSONBOID, TEXTOID}
};

static SaasPlan plan_retry = {
	"UPDATE saas.jobs SET state = 'retryable', run_at = now() + make_interval(secs => $3),"
	" attempt = greatest(attempt - $6, 0), updated_at = now(), lease_until = NULL, lease_owner = NULL,"
	" last_status = $4, last_error = $5 WHERE org_id = $1 AND id = $2 AND state = 'running'",
	6, {UUIDOID, UUIDOID, FLOAT8OID, INT4OID, TEXTOID, INT4OID}
};

static SaasPlan plan_dead = {
	"UPDATE saas.jobs SET state = 'dead', finished_at = now(), updated_at = now(),"
	" lease_until = NULL, lease_owner = NULL, last_status = $3, last_error = $4"
	" WHERE org_id = $1 AND id = $2 AND state = 'running'",
	4, {UUIDOID, UUIDOID, INT4OID, TEXTOID}
};

/* rec_backoff_s: the delay before the next attempt, with jitter. */
static double
rec_backoff_s(const WkService *w, int attempt, int retry_after_s)
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

/* rec_decide: what the call's outcome means for its job (the policy above). */
static void
rec_decide(RecJob *r, int64 now)
{
	WkInflight *f = r->f;
	WkCall	   *c = &f->call;
	const WkService *w = &wk_services[c->svc];
	char		err[400];
	bool		window_open;

	if (f->health)
	{
		r->kind = REC_NONE;
		return;
	}
	if (c->outcome == WK_OK)
	{
		r->kind = REC_DONE;
		return;
	}
	if (c->status != 0)
		snprintf(err, sizeof(err), "HTTP %ld: %.300s", c->status, c->resp ? c->resp : "");
	else if (c->outcome == WK_UNSENDABLE)
		snprintf(err, sizeof(err), "the request cannot be made: %s", c->error);
	else
		snprintf(err, sizeof(err), "%s", c->error[0] ? c->error : "no answer");

	window_open = now < f->created_at + (int64) w->retry_window_s * USECS_PER_SEC;
	switch (c->outcome)
	{
		case WK_OK:
			r->kind = REC_DONE;
			break;
		case WK_THROTTLED:
		case WK_LOCAL_ERROR:
			r->kind = REC_RETRY;
			r->refund = 1;
			r->delay_s = rec_backoff_s(w, f->attempt, Max(c->retry_after_s, 1));
			strlcpy(r->error, err, sizeof(r->error));
			break;
		case WK_SERVICE_FAILED:
			if (f->attempt < f->max_attempts || window_open)
			{
				r->kind = REC_RETRY;
				r->delay_s = rec_backoff_s(w, f->attempt, c->retry_after_s);
				strlcpy(r->error, err, sizeof(r->error));
			}
			else
			{
				r->kind = REC_DEAD;
				snprintf(r->error, sizeof(r->error),
						 "%s (attempts exhausted and retry window passed)", err);
			}
			break;
		case WK_REFUSED:
		case WK_UNSENDABLE:
			r->kind = REC_DEAD;
			snprintf(r->error, sizeof(r->error), "%s (not retryable)", err);
			break;
	}
}

/* rec_write_one: the retry or death of one job, or a success's follow-ups. */
static void
rec_write_one(RecJob *r)
{
	WkInflight *f = r->f;
	WkCall	   *c = &f->call;
	Datum		args[6];
	char		nulls[7] = "      ";

	args[0] = wk_uuid(&f->org_id);
	args[1] = wk_uuid(&f->id);
	if (r->kind == REC_DONE && f->on_success)
	{
		args[2] = DirectFunctionCall1(jsonb_in, CStringGetDatum(f->on_success));
		args[3] = CStringGetTextDatum(c->resp ? c->resp : "");
		(void) saas_exec(&plan_on_success, args, "    ", false, 0);
	}
	else if (r->kind == REC_RETRY)
	{
		args[2] = Float8GetDatum(r->delay_s);
		args[3] = Int32GetDatum((int32) c->status);
		if (c->status == 0)
			nulls[3] = 'n';
		args[4] = CStringGetTextDatum(r->error);
		args[5] = Int32GetDatum(r->refund);
		(void) saas_exec(&plan_retry, args, nulls, false, 0);
	}
	else if (r->kind == REC_DEAD)
	{
		args[2] = Int32GetDatum((int32) c->status);
		if (c->status == 0)
			nulls[2] = 'n';
		args[3] = CStringGetTextDatum(r->error);
		(void) saas_exec(&plan_dead, args, nulls, false, 0);
	}
}

/* rec_write_done: the successes of recs[0..n) in one statement. */
static void
rec_write_done(RecJob *recs, int n)
{
	Datum	   *org = palloc(sizeof(Datum) * n);
	Datum	   *id = palloc(sizeof(Datum) * n);
	Datum	   *st = palloc(sizeof(Datum) * n);
	Datum		arrs[3];
	int			i,
				k = 0;

	for (i = 0; i < n; i++)
		if (recs[i].kind == REC_DONE)
		{
			org[k] = wk_uuid(&recs[i].f->org_id);
			id[k] = wk_uuid(&recs[i].f->id);
			st[k] = Int32GetDatum((int32) recs[i].f->call.status);
			k++;
		}
	if (k == 0)
		return;
	if (saas_citus_loaded())
	{
		/* Citus cannot join a distributed table to unnest() in an UPDATE. */
		for (i = 0; i < k; i++)
		{
			Datum		args[3] = {org[i], id[i], st[i]};

			if (saas_exec(&plan_done_citus, args, NULL, false, 0) != SPI_OK_UPDATE)
				elog(ERROR, "could not record finished jobs");
		}
		return;
	}
	arrs[0] = PointerGetDatum(construct_array(org, k, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
	arrs[1] = PointerGetDatum(construct_array(id, k, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
	arrs[2] = PointerGetDatum(construct_array(st, k, INT4OID, 4, true, TYPALIGN_INT));
	if (saas_exec(&plan_done, arrs, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record finished jobs");
}

/*
 * rec_in_subxact: run the writes of recs[0..n) in a subtransaction; false
 * (rolled back, the error's message in err) when any of them failed.
 */
/* A batch for rec_in_subxact through saas_subxact_run. */
typedef struct RecBatch
{
	RecJob	   *recs;
	int			n;
} RecBatch;

static void
rec_write_batch(void *arg)
{
	RecBatch   *b = arg;
	int			i;

	rec_write_done(b->recs, b->n);
	for (i = 0; i < b->n; i++)
		rec_write_one(&b->recs[i]);
}

static bool
rec_in_subxact(RecJob *recs, int n, char *err, size_t errlen)
{
	RecBatch	b = {recs, n};
	ErrorData  *ed = saas_subxact_run(rec_write_batch, &b, true);

	if (ed == NULL)
		return true;
	strlcpy(err, ed->message, errlen);
	FreeErrorData(ed);
	return false;
}

/*
 * rec_one_by_one: the batch failed; each job alone. A job that still fails
 * is logged; a success among them is recorded dead with the reason (its
 * call took effect; repeating it would not help), anything else is left
 * to its lease.
 */
static void
rec_one_by_one(RecJob *recs, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		char		err[256];
		RecJob		dead;

		if (recs[i].kind == REC_NONE || rec_in_subxact(&recs[i], 1, err, sizeof(err)))
			continue;
		elog(WARNING, "pg_saas worker: could not record the outcome of a %s job: %s",
			 saas_service_names[recs[i].f->call.svc], err);
		if (recs[i].kind != REC_DONE)
			continue;
		dead = recs[i];
		dead.kind = REC_DEAD;
		snprintf(dead.error, sizeof(dead.error),
				 "the call succeeded (HTTP %ld) but its result could not be recorded: %s",
				 recs[i].f->call.status, err);
		(void) rec_in_subxact(&dead, 1, err, sizeof(err));
	}
}

/* Breaker transitions of the calls collected, recorded with their outcomes. */
static CbTransition rec_trs[REC_MAX];
static int	rec_ntr = 0;

/*
 * wk_record_collect: take the calls that completed since the last time
 * (no transaction): the breaker hears each one once, now; their outcomes
 * are written by wk_record_write. Returns how many wait to be written.
 */
int
wk_record_collect(void)
{
	WkCall	   *c;
	int64		now = GetCurrentTimestamp();

	while ((c = wk_http_next_done()) != NULL)
	{
		WkInflight *f = (WkInflight *) c;
		bool		moved;

		cb_record_call(&wk_services[c->svc].cb, c, now, &rec_trs[rec_ntr], &moved);
		if (moved && rec_ntr < REC_MAX - 1)
			rec_ntr++;
		pg_atomic_fetch_add_u64(&saas_worker_shared->calls, 1);
		if (rec_nheld < REC_MAX)
			rec_held[rec_nheld++] = f;
		else
			wk_finish_inflight(f);	/* cannot happen: the lease brings it back */
	}
	return rec_nheld;
}

/*
 * wk_record_write: inside the caller's transaction (pg_saas ready), write
 * the outcomes of the calls collected and the breaker transitions. Returns
 * how many calls it recorded.
 */
int
wk_record_write(void)
{
	RecJob	   *recs;
	int64		now = GetCurrentTimestamp();
	int			n = rec_nheld,
				i;
	char		err[256];

	if (n > 0)
	{
		recs = palloc0(sizeof(RecJob) * n);
		for (i = 0; i < n; i++)
		{
			recs[i].f = rec_held[i];
			rec_decide(&recs[i], now);
		}
		if (!rec_in_subxact(recs, n, err, sizeof(err)))
			rec_one_by_one(recs, n);
		for (i = 0; i < n; i++)
			wk_finish_inflight(rec_held[i]);
		rec_nheld = 0;
	}
	for (i = 0; i < rec_ntr; i++)
		wk_note_transition(&rec_trs[i]);
	rec_ntr = 0;
	return n;
}

/*
 * wk_record_not_ready: pg_saas could not be used this round. Dropped: the
 * jobs went with it, so their outcomes go too. Busy (being dropped or
 * altered): they are kept for the next round.
 */
void
wk_record_not_ready(void)
{
	int			i;

	if (OidIsValid(get_extension_oid("pg_saas", true)))
		return;
	for (i = 0; i < rec_nheld; i++)
		wk_finish_inflight(rec_held[i]);
	rec_nheld = 0;
	rec_ntr = 0;
}

/*
 * wk_record_finished: collect and record the completed calls in a
 * transaction of their own (while pg_saas is missing, so the calls that
 * were in flight when it went are let go). Returns how many it recorded.
 */
int
wk_record_finished(void)
{
	int			n;

	if (wk_record_collect() == 0 && rec_ntr == 0)
		return 0;
	if (!wk_xact_begin("pg_saas worker: recording outcomes"))
	{
		n = rec_nheld;
		wk_record_not_ready();
		wk_xact_commit();
		return n - rec_nheld;
	}
	n = wk_record_write();
	wk_xact_commit();
	return n;
}
