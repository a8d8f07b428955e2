/*-------------------------------------------------------------------------
 *
 * fuzz_webhook_sig.c
 *	  libFuzzer target: the Standard Webhooks signature check
 *	  (src/ingest/webhook_sig.c).
 *
 * The input is split at newlines into webhook-id, webhook-timestamp,
 * webhook-signature and the body.  The check must return or raise
 * ERRCODE_SAAS_UNAUTHORIZED, nothing else.  With an odd first byte, a v1
 * entry computed here with OpenSSL over id.timestamp.body is added to the
 * list: then a sane id and a timestamp within the tolerance must pass.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pg_saas.h"
#include "pg_stub.h"
#include "ingest/ingest.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW 1700000000

/* the secret of the reference user-service: whsec_ + base64("user_webhook_secret_123") */
static const char fuzz_secret[] = "whsec_dXNlcl93ZWJob29rX3NlY3JldF8xMjM=";
static const char fuzz_key[] = "user_webhook_secret_123";

/* fuzz_field: the next newline-terminated field of [*p, end) */
static char *
fuzz_field(const char **p, const char *end)
{
	const char *nl = memchr(*p, '\n', end - *p);
	char	   *s = pnstrdup(*p, (nl ? nl : end) - *p);

	*p = nl ? nl + 1 : end;
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *) data + 1;
	const char *end = (const char *) data + size;
	char	   *id,
			   *ts,
			   *sigs;
	const char *body;
	bool		add_valid,
				ok;
	sigjmp_buf	jump;

	if (size < 1)
		return 0;
	add_valid = data[0] % 2 == 1;
	id = fuzz_field(&p, end);
	ts = fuzz_field(&p, end);
	sigs = fuzz_field(&p, end);
	body = p;
	if (add_valid)
	{
		unsigned char mac[EVP_MAX_MD_SIZE];
		unsigned int maclen;
		unsigned char b64[4 * EVP_MAX_MD_SIZE];
		StringInfoData signed_text,
					list;

		initStringInfo(&signed_text);
		appendStringInfo(&signed_text, "%s.%s.", id, ts);
		appendBinaryStringInfo(&signed_text, body, end - body);
		HMAC(EVP_sha256(), fuzz_key, sizeof(fuzz_key) - 1, (unsigned char *) signed_text.data,
			 signed_text.len, mac, &maclen);
		EVP_EncodeBlock(b64, mac, (int) maclen);
		initStringInfo(&list);
		appendStringInfo(&list, "%s v1,%s", sigs, (char *) b64);
		sigs = list.data;
	}
	pg_fuzz_jump = &jump;
	if (sigsetjmp(jump, 0) == 0)
	{
		saas_webhook_verify(fuzz_secret, id, ts, sigs, body, (int) (end - body), FUZZ_NOW);
		ok = true;
	}
	else
	{
		ok = false;
		if (pg_fuzz_errcode != ERRCODE_SAAS_UNAUTHORIZED)
			abort();			/* an error other than "unauthorized" */
	}
	pg_fuzz_jump = NULL;
	if (add_valid && !ok)
	{
		char	   *tsend;
		long long	t = strtoll(ts, &tsend, 10);

		/* a sane delivery with our valid signature must pass */
		if (id[0] != '\0' && strlen(id) <= 256 && ts[0] != '\0' && *tsend == '\0' &&
			t >= FUZZ_NOW - SAAS_WEBHOOK_TOLERANCE_S && t <= FUZZ_NOW + SAAS_WEBHOOK_TOLERANCE_S &&
			strchr(ts, ' ') == NULL && ts[0] != '+' && ts[0] != ' ')
			abort();
	}
	pg_fuzz_reset();
	return 0;
}
