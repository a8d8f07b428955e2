/*-------------------------------------------------------------------------
 *
 * ratelimit.h
 *	  GCRA rate limiting in shared memory, shared by every backend.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_RATELIMIT_H
#define SAAS_RATELIMIT_H

typedef struct SaasRateResult
{
	bool		allowed;
	int			limit;			/* burst capacity */
	int			remaining;
	int			reset_s;		/* until the bucket is full again */
	int			retry_after_s;	/* when refused */
} SaasRateResult;

extern bool saas_rate_check(const char *scope, const char *key, int per_minute,
							int burst, SaasRateResult *out);
extern void saas_rate_limits_for(const char *tier, const char *scope,
								 int *per_minute, int *burst);
extern void saas_ratelimit_init(void);

/*
 * The normal form of an email: what the login lookup and the per-email
 * limit both use (SQL lower() under the default collation). palloc'd.
 */
extern char *saas_email_normalize(const char *email);

#endif
