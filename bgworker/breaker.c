/*-------------------------------------------------------------------------
 *
 * breaker.c
 *	  Circuit breakers in shared memory, one per service.
 *
 * Closed: calls flow; outcomes land in one-second buckets of a rolling
 * window. When the window holds at least min_volume calls and the share of
 * failures (errors and timeouts) reaches failure_rate, the breaker opens;
 * it also opens after "consecutive" failures in a row, whatever the volume
 * (a service that is down fails every call, and at low volume the rate
 * alone would never open it while the jobs spend their attempts); a
 * failure is in the row only when no call succeeded while it was in
 * flight, so the timeouts of a service that answers most calls, which
 * complete late and together, do not make a row. A call
 * that succeeds but takes longer than slow_call_ms counts as a failure (as
 * resilience4j's slow-call threshold does): a service that answers in
 * seconds is as harmful as one that does not answer.
 * Open: no calls; jobs wait (not failed, no attempt spent). After reset_s
 * it goes half_open and lets "probes" calls through: that many successes
 * close it, one failure opens it again. Closing starts a fresh window and
 * forgets the last error, so the status says OK again by itself. Every
 * transition is reported to the caller, which records it in
 * saas._breaker_events.
 *
 * What counts is decided in one place, cb_record_call, for the jobs and
 * the pull sync alike: only the service's own failures (connection errors,
 * timeouts, 408, 5xx) count against it. A request that could not be made,
 * or that the service refused as wrong, is that request's problem: one
 * tenant's malformed external id must never open the circuit for all.
 *
 * Only the worker changes a breaker; the locking rules are in
 * src/common/shmem.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "datatype/timestamp.h"
#include "executor/spi.h"

#include "breaker.h"
#include "metrics_shmem.h"
#include "worker_shmem.h"

/*
 * cb_transition: move a breaker to state "to" (under the worker lock), report
 * the transition to the caller and count it; closing starts a fresh window.
 */
static void
cb_transition(SaasBreaker *b, int svc, int to, const char *reason, int64 now,
			  CbTransition *tr, bool *transitioned)
{
	tr->service = svc;
	tr->from = b->state;
	tr->to = to;
	strlcpy(tr->reason, reason, sizeof(tr->reason));
	*transitioned = true;
	b->state = to;
	b->transitions++;
	wm_record_transition(svc, to);
	if (to == CB_OPEN)
		b->opened_at = now;
	if (to == CB_HALF_OPEN || to == CB_CLOSED)
	{
		b->probes_in_flight = 0;
		b->probe_successes = 0;
	}
	if (to == CB_CLOSED)
	{
		/* A fresh window: the failures that opened it are history now. */
		memset(b->bucket_sec, 0, sizeof(b->bucket_sec));
		memset(b->ok, 0, sizeof(b->ok));
		memset(b->fail, 0, sizeof(b->fail));
		b->last_error[0] = '\0';
		b->consecutive_failures = 0;
	}
}

/* cb_window: calls and failures in the last window_s seconds. */
static void
cb_window(SaasBreaker *b, int window_s, int64 now, uint32 *calls, uint32 *fails)
{
	int64		sec = now / USECS_PER_SEC;
	int			i;

	*calls = 0;
	*fails = 0;
	for (i = 0; i < CB_BUCKETS; i++)
		if (b->bucket_sec[i] > sec - Min(window_s, CB_BUCKETS) && b->bucket_sec[i] <= sec)
		{
			*calls += b->ok[i] + b->fail[i];
			*fails += b->fail[i];
		}
}

/*
 * cb_acquire: how many of "want" calls may start now. Moves an open
 * breaker whose reset timeout has passed to half_open.
 */
int
cb_acquire(int svc, const CbSettings *s, int64 now, int want, CbTransition *tr,
		   bool *transitioned)
{
	SaasBreaker *b = &saas_worker_shared->breakers[svc];
	int			allowed;

	*transitioned = false;
	LWLockAcquire(saas_worker_lock(), LW_EXCLUSIVE);
	if (b->state == CB_OPEN && now - b->opened_at >= (int64) s->reset_s * USECS_PER_SEC)
		cb_transition(b, svc, CB_HALF_OPEN, "reset timeout elapsed: probing", now, tr, transitioned);
	if (b->state == CB_OPEN || now < b->throttled_until)
		allowed = 0;
	else if (b->state == CB_HALF_OPEN)
	{
		allowed = Min(want, Max(0, s->probes - b->probes_in_flight - b->probe_successes));
		b->probes_in_flight += allowed;
	}
	else
		allowed = want;
	LWLockRelease(saas_worker_lock());
	return allowed;
}

/* cb_record: one call's outcome; may open or close the breaker. */
void
cb_record(int svc, const CbSettings *s, bool success, int latency_ms, const char *error,
		  int64 now, CbTransition *tr, bool *transitioned)
{
	SaasBreaker *b = &saas_worker_shared->breakers[svc];
	int64		sec = now / USECS_PER_SEC;
	int			slot = (int) (sec % CB_BUCKETS);

	*transitioned = false;
	LWLockAcquire(saas_worker_lock(), LW_EXCLUSIVE);
	if (b->bucket_sec[slot] != sec)
	{
		b->bucket_sec[slot] = sec;
		b->ok[slot] = 0;
		b->fail[slot] = 0;
	}
	if (success)
	{
		b->ok[slot]++;
		b->last_success = now;
		b->consecutive_failures = 0;
		b->lat_ms[b->lat_count++ % CB_LAT_SAMPLES] = (uint32) Max(latency_ms, 0);
	}
	else
	{
		b->fail[slot]++;
		b->last_failure = now;
		/*
		 * In a row means with no success since the call started: a call
		 * that timed out while others succeeded does not extend a run
		 * (timeouts complete late and together, so counting by completion
		 * would see a run in a service that answers 70 % of its calls).
		 */
		if (b->last_success <= now - (int64) Max(latency_ms, 0) * 1000)
			b->consecutive_failures++;
		if (error)
			strlcpy(b->last_error, error, sizeof(b->last_error));
	}

	if (b->state == CB_HALF_OPEN)
	{
		if (b->probes_in_flight > 0)
			b->probes_in_flight--;
		if (!success)
			cb_transition(b, svc, CB_OPEN, "a half-open probe failed", now, tr, transitioned);
		else if (++b->probe_successes >= s->probes)
			cb_transition(b, svc, CB_CLOSED, "half-open probes succeeded", now, tr, transitioned);
	}
	else if (b->state == CB_CLOSED && !success)
	{
		uint32		calls,
					fails;

		cb_window(b, s->window_s, now, &calls, &fails);
		if (calls >= (uint32) s->min_volume && (double) fails / calls >= s->failure_rate)
		{
			char		why[160];

			snprintf(why, sizeof(why), "%u of %u calls failed in %d s", fails, calls, s->window_s);
			cb_transition(b, svc, CB_OPEN, why, now, tr, transitioned);
		}
		else if (s->consecutive > 0 && b->consecutive_failures >= s->consecutive)
		{
			char		why[160];

			snprintf(why, sizeof(why), "%d calls failed in a row", b->consecutive_failures);
			cb_transition(b, svc, CB_OPEN, why, now, tr, transitioned);
		}
	}
	LWLockRelease(saas_worker_lock());
}

/*
 * cb_throttled: the service answered 429. The probe slot it used (if any)
 * is given back, and no call goes to the service until Retry-After has
 * passed: throttling is neither health nor failure.
 */
void
cb_throttled(int svc, int64 until)
{
	SaasBreaker *b = &saas_worker_shared->breakers[svc];

	LWLockAcquire(saas_worker_lock(), LW_EXCLUSIVE);
	if (b->state == CB_HALF_OPEN && b->probes_in_flight > 0)
		b->probes_in_flight--;
	if (until > b->throttled_until)
		b->throttled_until = until;
	LWLockRelease(saas_worker_lock());
}

/*
 * cb_release: a call that was let through never reached the service (its
 * request could not be made). It says nothing about the service; the probe
 * slot it may hold goes back, so a half-open breaker still gets its probes.
 */
void
cb_release(int svc)
{
	SaasBreaker *b = &saas_worker_shared->breakers[svc];

	LWLockAcquire(saas_worker_lock(), LW_EXCLUSIVE);
	if (b->state == CB_HALF_OPEN && b->probes_in_flight > 0)
		b->probes_in_flight--;
	LWLockRelease(saas_worker_lock());
}

/*
 * cb_record_call: what one call tells its service's breaker. A service
 * failure counts against it; an answer, even one refusing the request
 * (3xx, 4xx), shows the service working and counts as a success unless it
 * took longer than the slow-call threshold; a 429
 * pauses the service until Retry-After and counts as neither; a request
 * that was never made (WK_UNSENDABLE, WK_LOCAL_ERROR) counts as nothing.
 */
void
cb_record_call(const CbSettings *s, const WkCall *c, int64 now, CbTransition *tr,
			   bool *transitioned)
{
	char		err[300];

	*transitioned = false;
	wm_record_call(c);
	switch (c->outcome)
	{
		case WK_OK:
		case WK_REFUSED:
			if (s->slow_call_ms > 0 && c->latency_ms > s->slow_call_ms)
			{
				snprintf(err, sizeof(err), "slow call: %d ms (breaker_slow_call_ms %d)",
						 c->latency_ms, s->slow_call_ms);
				cb_record(c->svc, s, false, c->latency_ms, err, now, tr, transitioned);
			}
			else
				cb_record(c->svc, s, true, c->latency_ms, NULL, now, tr, transitioned);
			break;
		case WK_SERVICE_FAILED:
			if (c->status != 0)
				snprintf(err, sizeof(err), "HTTP %ld: %.200s", c->status, c->resp ? c->resp : "");
			else
				snprintf(err, sizeof(err), "%s", c->error[0] ? c->error : "no answer");
			cb_record(c->svc, s, false, c->latency_ms, err, now, tr, transitioned);
			break;
		case WK_THROTTLED:
			cb_throttled(c->svc, now + (int64) Max(c->retry_after_s, 1) * USECS_PER_SEC);
			break;
		case WK_UNSENDABLE:
		case WK_LOCAL_ERROR:
			cb_release(c->svc);
			break;
	}
}

/*
 * cb_unused: probe slots granted by cb_acquire that found nothing to call
 * go back, so the next round can still probe.
 */
void
cb_unused(int svc, int n)
{
	SaasBreaker *b = &saas_worker_shared->breakers[svc];

	if (n <= 0)
		return;
	LWLockAcquire(saas_worker_lock(), LW_EXCLUSIVE);
	if (b->state == CB_HALF_OPEN)
		b->probes_in_flight = Max(0, b->probes_in_flight - n);
	LWLockRelease(saas_worker_lock());
}

/* cb_state: a breaker's state now (shared lock). */
int
cb_state(int svc)
{
	int			st;

	LWLockAcquire(saas_worker_lock(), LW_SHARED);
	st = saas_worker_shared->breakers[svc].state;
	LWLockRelease(saas_worker_lock());
	return st;
}

/*
 * cb_settings_read: a breaker's settings from a row of SPI_tuptable whose
 * columns first .. first + CB_SETTINGS_NCOLUMNS - 1 are CB_SETTINGS_COLUMNS
 * (the jobs' and the sync's reads of saas.integrations). The columns are
 * NOT NULL in the table.
 */
void
cb_settings_read(HeapTuple t, TupleDesc d, int first, CbSettings *s)
{
	bool		isnull;

	s->failure_rate = DatumGetFloat8(SPI_getbinval(t, d, first, &isnull));
	s->min_volume = DatumGetInt32(SPI_getbinval(t, d, first + 1, &isnull));
	s->window_s = DatumGetInt32(SPI_getbinval(t, d, first + 2, &isnull));
	s->reset_s = DatumGetInt32(SPI_getbinval(t, d, first + 3, &isnull));
	s->probes = DatumGetInt32(SPI_getbinval(t, d, first + 4, &isnull));
	s->consecutive = DatumGetInt32(SPI_getbinval(t, d, first + 5, &isnull));
	s->slow_call_ms = DatumGetInt32(SPI_getbinval(t, d, first + 6, &isnull));
}
