/*-------------------------------------------------------------------------
 *
 * webhook_sign.c
 *	  Standard Webhooks v1 signatures for saas-sim's deliveries.
 *
 * A secret is "whsec_" followed by base64 of the key bytes.  The signature
 * header value is "v1,<base64 of HMAC-SHA256(key, id.timestamp.body)>".
 *
 *-------------------------------------------------------------------------
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define WHSEC_PREFIX "whsec_"

/*
 * sim_secret_decode
 *		The HMAC key of a "whsec_..." secret: the base64-decoded part after
 *		the prefix.  False when the prefix is missing or the rest is not
 *		base64 (we refuse rather than sign with a key nobody expects).
 */
bool
sim_secret_decode(const char *whsec, unsigned char **key, size_t *keylen)
{
	size_t		plen = strlen(WHSEC_PREFIX);

	if (whsec == NULL || strncmp(whsec, WHSEC_PREFIX, plen) != 0)
		return false;
	*key = sim_base64_decode(whsec + plen, keylen);
	if (*key == NULL || *keylen == 0)
	{
		free(*key);
		*key = NULL;
		return false;
	}
	return true;
}

/* sim_secret_default: "whsec_" + base64(secret_key), as the extension seeds it */
char *
sim_secret_default(const char *secret_key)
{
	char	   *b64 = sim_base64_encode((const unsigned char *) secret_key, strlen(secret_key));
	SimBuf		b;

	sbuf_init(&b);
	sbuf_printf(&b, "%s%s", WHSEC_PREFIX, b64);
	free(b64);
	return sbuf_steal(&b);
}

/*
 * sim_sign
 *		Write "v1,<base64 signature>" of one message into out.  The signed
 *		content is the id, the timestamp and the raw body joined by dots;
 *		the body is hashed as bytes, never re-serialized.
 */
void
sim_sign(const unsigned char *key, size_t keylen, const char *msg_id,
		 long timestamp, const char *body, size_t body_len,
		 char *out, size_t outlen)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	SimBuf		content;
	char	   *b64;

	sbuf_init(&content);
	sbuf_printf(&content, "%s.%ld.", msg_id, timestamp);
	sbuf_append(&content, body, body_len);
	HMAC(EVP_sha256(), key, (int) keylen, (const unsigned char *) content.data,
		 content.len, mac, &maclen);
	sbuf_free(&content);

	b64 = sim_base64_encode(mac, maclen);
	snprintf(out, outlen, "v1,%s", b64);
	free(b64);
}
