/*-------------------------------------------------------------------------
 *
 * call_history.h
 *	  The worker's calls per service and minute over the last hour, for the
 *	  dashboard's chart (saas._call_history()).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_CALL_HISTORY_H
#define SAAS_CALL_HISTORY_H

#include "postgres.h"

#include "http_client.h"

extern void saas_call_history_register(void);
extern void ch_record_call(const WkCall *c);

#endif							/* SAAS_CALL_HISTORY_H */
