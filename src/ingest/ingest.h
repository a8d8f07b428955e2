/*-------------------------------------------------------------------------
 *
 * ingest.h
 *	  The interface of src/ingest: inbound webhooks of the external services
 *	  (webhook_ingest.c: Standard Webhooks signatures, idempotent storage)
 *	  and what the data of each event type must hold (event_schema.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_INGEST_H
#define SAAS_INGEST_H

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

extern const char *saas_event_data_error(const char *event_type, JsonbContainer *data);

/*
 * saas_op_ingest_webhook: POST /webhooks/{service}; on_verified, if set, is
 * called once the signature has been verified.
 */
extern void saas_op_ingest_webhook(const char *service, Jsonb *headers, const char *body,
								   int body_len, StringInfo out,
								   void (*on_verified) (void *arg), void *arg);

#endif							/* SAAS_INGEST_H */
