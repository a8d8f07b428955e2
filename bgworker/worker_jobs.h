/*-------------------------------------------------------------------------
 *
 * worker_jobs.h
 *	  The worker's units of work: applying events, and rounds of jobs.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_WORKER_JOBS_H
#define SAAS_WORKER_JOBS_H

#include "breaker.h"

extern bool wk_extension_ready(void);
extern bool wk_xact_begin(const char *activity);
extern void wk_xact_commit(void);
extern int	wk_apply_events(int batch);
extern void wk_reclaim_expired_leases(void);
extern int	wk_run_jobs_round(long *sleep_ms);
extern int	wk_sync_round(void);
extern void wk_set_in_sync(bool on);
extern void wk_prune_finished_jobs(void);
extern void wk_note_transition(const CbTransition *tr);

#endif
