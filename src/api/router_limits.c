/*-------------------------------------------------------------------------
 *
 * router_limits.c
 *	  The router's rate limits: a request counted against scope:key with
 *	  the limits of the organization's tier, answered with RateLimit-*
 *	  headers, or 429 with Retry-After when over.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "pg_saas.h"
#include "common/common.h"
#include "ratelimit/ratelimit.h"
#include "api/router.h"

/* limit_headers: the RateLimit-* headers of a count, appended to the answer's. */
static void
limit_headers(SaasResponse *r, const SaasRateResult *rr)
{
	saas_response_header(r, "RateLimit-Limit", psprintf("%d", rr->limit));
	saas_response_header(r, "RateLimit-Remaining", psprintf("%d", rr->remaining));
	saas_response_header(r, "RateLimit-Reset", psprintf("%d", rr->reset_s));
	if (!rr->allowed)
		saas_response_header(r, "Retry-After", psprintf("%d", Max(rr->retry_after_s, 1)));
}

/*
 * router_limit: count the request against scope:key; adds the RateLimit-*
 * headers, and refuses with 429 and Retry-After when over the limit.
 */
void
router_limit(SaasResponse *r, const char *scope, const char *key, const char *tier)
{
	int			per_minute,
				burst;
	SaasRateResult rr;

	saas_rate_limits_for(tier, scope, &per_minute, &burst);
	if (!saas_rate_check(scope, key, per_minute, burst, &rr))
		return;					/* not preloaded: no shared limiter */
	r->rate_counted = true;
	resetStringInfo(&r->headers);
	limit_headers(r, &rr);
	if (!rr.allowed)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_RATE_LIMITED),
				 errmsg("rate limit exceeded; retry after %d s", Max(rr.retry_after_s, 1))));
}

/*
 * router_limit_refused: an answer refused before its route counted a budget
 * (401 of a bearer route or a webhook's signature, 413, 415, 405, 400 or
 * 404 before the route's limit; not a 5xx, the server's) counts against the client address's sign-in
 * budget, auth_ip, shared with /auth/login: guessing tokens or signatures,
 * or flooding with bodies too large, is throttled like guessing passwords.
 * The answer keeps its status and headers and gains the RateLimit-* ones;
 * once over, it becomes 429 with Retry-After. Called after the request's
 * subtransaction is gone, in a subtransaction of its own. /healthz is not a
 * limited route; SQL callers without x-client-addr have no address budget.
 */
/* The address's count, for router_limit_refused through saas_subxact_run. */
typedef struct AddrCount
{
	const char *addr;
	SaasRateResult rr;
	bool		counted;
} AddrCount;

static void
count_addr(void *arg)
{
	AddrCount  *c = arg;
	int			per_minute,
				burst;

	saas_rate_limits_for(NULL, "auth_ip", &per_minute, &burst);
	c->counted = saas_rate_check("auth_ip", c->addr, per_minute, burst, &c->rr);
}

void
router_limit_refused(SaasRequest *req, SaasResponse *r)
{
	AddrCount	c = {0};
	ErrorData  *edata;

	if (r->rate_counted || r->status < 400 || r->status >= 500)
		return;					/* counted, not refused, or the server's failure */
	if (req->nsegs == 1 && strcmp(req->segs[0], "healthz") == 0)
		return;
	c.addr = req_header(req, "x-client-addr");
	if (c.addr == NULL || c.addr[0] == '\0')
		return;

	edata = saas_subxact_run(count_addr, &c, true);
	if (edata != NULL)
	{
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED && QueryCancelPending)
			ReThrowError(edata);
		saas_http_error_response(r, edata, req->request_id);
		FreeErrorData(edata);
		return;
	}
	if (!c.counted)
		return;					/* not preloaded: no shared limiter */
	r->rate_counted = true;
	limit_headers(r, &c.rr);
	if (!c.rr.allowed)
		saas_http_simple_error(r, 429,
							   psprintf("rate limit exceeded; retry after %d s", Max(c.rr.retry_after_s, 1)),
							   NULL, req->request_id);
}

/* Organization tiers, cached briefly per backend: one lookup per org per 30 s. */
#define TIER_CACHE 64
static struct
{
	pg_uuid_t	org;
	TimestampTz fetched;
	char		tier[16];
}			tier_cache[TIER_CACHE];

static SaasPlan plan_tier = {
	"SELECT subscription_tier FROM saas.organizations WHERE id = $1",
	1, {UUIDOID}
};

/*
 * router_org_tier: the subscription tier of an organization, for its rate
 * limits; cached per backend for 30 s in a small direct-mapped table, so a
 * burst of requests does not read the organization each time.
 */
const char *
router_org_tier(const pg_uuid_t *org)
{
	int			slot = org->data[15] % TIER_CACHE;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Datum		val;

	if (memcmp(&tier_cache[slot].org, org, sizeof(pg_uuid_t)) == 0 &&
		now - tier_cache[slot].fetched < 30 * USECS_PER_SEC)
		return tier_cache[slot].tier;
	val = UUIDPGetDatum(org);
	saas_spi_connect();
	strlcpy(tier_cache[slot].tier, "free", sizeof(tier_cache[slot].tier));
	if (saas_exec(&plan_tier, &val, NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		char	   *t = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (t)
			strlcpy(tier_cache[slot].tier, t, sizeof(tier_cache[slot].tier));
	}
	SPI_finish();
	tier_cache[slot].org = *org;
	tier_cache[slot].fetched = now;
	return tier_cache[slot].tier;
}
