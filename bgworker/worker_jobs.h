/*-------------------------------------------------------------------------
 *
 * worker_jobs.h
 *	  The worker's units of work: applying events, claiming jobs and
 *	  starting their calls (worker_jobs.c), recording each call as it
 *	  completes (job_record.c), the pull sync (sync.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_WORKER_JOBS_H
#define SAAS_WORKER_JOBS_H

#include "datatype/timestamp.h"
#include "utils/uuid.h"

#include "common/common.h"
#include "breaker.h"
#include "http_client.h"
#include "worker_api.h"

/* Settings of one service, as read by the last claim step. */
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
	int			retry_window_s;
	CbSettings	cb;
	bool		enabled;
	bool		present;
} WkService;

/*
 * A call in flight: a claimed job's call, or the health call of a half-open
 * breaker with nothing to probe with. It lives in its own memory context
 * from its start until its outcome is recorded, across rounds.
 */
typedef struct WkInflight
{
	WkCall		call;			/* first: the HTTP layer hands back &call */
	MemoryContext cxt;
	bool		health;			/* no job behind it */
	pg_uuid_t	org_id;
	pg_uuid_t	id;
	int			attempt;
	int			max_attempts;
	TimestampTz created_at;
	char	   *on_success;
} WkInflight;

extern WkService wk_services[SAAS_NSERVICES];
extern int64 wk_incarnation;
extern int	wk_slot;

/* worker_main.c */
extern bool wk_extension_ready(void);
extern bool wk_xact_begin(const char *activity);
extern void wk_xact_commit(void);

/* worker_jobs.c */
extern int	wk_apply_events(int batch);
extern void wk_recover_leases(bool take_over);
extern int	wk_claim_and_start(long *wait_ms);
extern void wk_set_in_sync(bool on);
extern void wk_note_transition(const CbTransition *tr);
extern Datum wk_uuid(const pg_uuid_t *u);

/* worker_walk.c: the fair walk where Citus is loaded. */
extern int	wk_walk_citus(Datum service, const pg_uuid_t *cursor, int limit, Datum *orgs,
						  bool *end);

/* job_record.c */
extern int	wk_record_collect(void);
extern int	wk_record_write(void);
extern void wk_record_not_ready(void);
extern int	wk_record_finished(void);
extern void wk_finish_inflight(WkInflight *f);

/* sync.c */
extern int	wk_sync_round(void);

#endif
