/*-------------------------------------------------------------------------
 *
 * webhook_sig.c
 *	  The Standard Webhooks signature of an incoming delivery.
 *
 * The headers webhook-id, webhook-timestamp and webhook-signature (a space-
 * separated list of "v1,<base64 HMAC-SHA256>") come from whoever calls
 * POST /webhooks/{service}; this is the code that reads them first.  It
 * needs only PostgreSQL's base64 and HMAC (through saas_hmac_sha256 in
 * common/util.c) besides ereport, so fuzz/fuzz_webhook_sig.c builds it on
 * its own with fuzz/pg_stub.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include "common/base64.h"

#include "pg_saas.h"
#include "common/common.h"
#include "ingest/ingest.h"

/* wh_unauthorized: every signature problem answers the same way. */
static void
wh_unauthorized(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_SAAS_UNAUTHORIZED),
			 errmsg("invalid webhook signature: %s", why)));
}

/*
 * saas_webhook_verify
 *		Standard Webhooks v1 against the service's whsec_ secret, at time now
 *		(Unix seconds): returns when one v1 entry of sigs signs
 *		id.ts.body, else raises ERRCODE_SAAS_UNAUTHORIZED.
 */
void
saas_webhook_verify(const char *secret, const char *id, const char *ts, const char *sigs,
					const char *body, int body_len, int64 now)
{
	char		key[256];
	int			keylen;
	const char *b64 = secret + 6;	/* after "whsec_" */
	int64		t;
	char	   *end;
	StringInfoData signed_content;
	unsigned char mac[SAAS_HMAC_SHA256_LEN];
	char	   *list,
			   *tok,
			   *save;
	bool		ok = false;

	if (id == NULL || ts == NULL || sigs == NULL)
		wh_unauthorized("webhook-id, webhook-timestamp and webhook-signature headers are required");
	if (strlen(id) == 0 || strlen(id) > 256)
		wh_unauthorized("webhook-id is not valid");
	errno = 0;
	t = strtoll(ts, &end, 10);
	if (*ts == '\0' || *end != '\0' || errno != 0)
		wh_unauthorized("webhook-timestamp must be Unix seconds");
	if (t < now - SAAS_WEBHOOK_TOLERANCE_S || t > now + SAAS_WEBHOOK_TOLERANCE_S)
		wh_unauthorized("webhook-timestamp is outside the five-minute tolerance");
	if (pg_b64_dec_len(strlen(b64)) > (int) sizeof(key))
		elog(ERROR, "webhook secret is too long");
	keylen = pg_b64_decode(b64, strlen(b64), key, sizeof(key));
	if (keylen <= 0)
		elog(ERROR, "webhook secret of the service is not valid base64");

	initStringInfo(&signed_content);
	appendStringInfo(&signed_content, "%s.%s.", id, ts);
	appendBinaryStringInfo(&signed_content, body, body_len);
	saas_hmac_sha256(key, keylen, signed_content.data, signed_content.len, mac);

	list = pstrdup(sigs);
	for (tok = strtok_r(list, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
	{
		char		dec[64];
		int			n;

		if (strncmp(tok, "v1,", 3) != 0 || strlen(tok + 3) > 88)
			continue;
		n = pg_b64_decode(tok + 3, strlen(tok + 3), dec, sizeof(dec));
		if (n == (int) sizeof(mac) && saas_timingsafe_eq(dec, mac, sizeof(mac)))
			ok = true;			/* keep going: time does not depend on which entry */
	}
	if (!ok)
		wh_unauthorized("no v1 signature matches");
}
