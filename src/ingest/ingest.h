/*-------------------------------------------------------------------------
 *
 * ingest.h
 *	  The interface of src/ingest: inbound webhooks of the external services
 *	  (webhook_ingest.c: idempotent storage; webhook_sig.c: Standard
 *	  Webhooks signatures) and what the data of each event type must hold
 *	  (event_schema.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_INGEST_H
#define SAAS_INGEST_H

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

extern const char *saas_event_data_error(const char *event_type, JsonbContainer *data);

/* webhook_sig.c: the Standard Webhooks signature check of a delivery. */
/* how far webhook-timestamp may be from now, either way (seconds) */
#define SAAS_WEBHOOK_TOLERANCE_S	300

extern void saas_webhook_verify(const char *secret, const char *id, const char *ts,
								const char *sigs, const char *body, int body_len, int64 now);

/*
 * saas_op_ingest_webhook: POST /webhooks/{service}; on_verified, if set, is
 * called once the signature has been verified.
 */
extern void saas_op_ingest_webhook(const char *service, Jsonb *headers, const char *body,
								   int body_len, StringInfo out,
								   void (*on_verified) (void *arg), void *arg);

#endif							/* SAAS_INGEST_H */
