/*-------------------------------------------------------------------------
 *
 * webhook_sig.h
 *	  The Standard Webhooks signature check of incoming deliveries.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_WEBHOOK_SIG_H
#define SAAS_WEBHOOK_SIG_H

/* how far webhook-timestamp may be from now, either way (seconds) */
#define SAAS_WEBHOOK_TOLERANCE_S	300

extern void saas_webhook_verify(const char *secret, const char *id, const char *ts,
								const char *sigs, const char *body, int body_len, int64 now);

#endif							/* SAAS_WEBHOOK_SIG_H */
