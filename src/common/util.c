/*-------------------------------------------------------------------------
 *
 * util.c
 *	  Small primitives used across the extension: constant-time comparison,
 *	  strong random bytes and HMAC-SHA256.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"

#include "common/common.h"

/*
 * saas_timingsafe_eq: compare two equal-length buffers in time that does
 * not depend on where they differ (signatures, secrets).
 */
bool
saas_timingsafe_eq(const void *a, const void *b, size_t len)
{
	const volatile unsigned char *pa = a;
	const volatile unsigned char *pb = b;
	unsigned char diff = 0;
	size_t		i;

	for (i = 0; i < len; i++)
		diff |= pa[i] ^ pb[i];
	return diff == 0;
}

/* saas_random_bytes: cryptographically strong bytes, or an error. */
void
saas_random_bytes(void *buf, size_t len)
{
	if (!pg_strong_random(buf, len))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes")));
}

/*
 * saas_hmac_sha256: HMAC-SHA256 of data under key into out
 * (SAAS_HMAC_SHA256_LEN bytes), or an error. One place for the JWT
 * signatures and the Standard Webhooks signatures.
 */
void
saas_hmac_sha256(const void *key, int keylen, const void *data, size_t len,
				 unsigned char *out)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);

	if (ctx == NULL ||
		pg_hmac_init(ctx, (const uint8 *) key, keylen) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_hmac_final(ctx, out, SAAS_HMAC_SHA256_LEN) < 0)
	{
		pg_hmac_free(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute HMAC-SHA256")));
	}
	pg_hmac_free(ctx);
}

/*
 * saas_sha256: SHA-256 of data into out (SAAS_SHA256_LEN bytes), or an
 * error. What the stored hashes of random secrets are (refresh tokens, API
 * keys, one-time tokens, SSO states).
 */
void
saas_sha256(const void *data, size_t len, unsigned char *out)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (ctx == NULL ||
		pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_cryptohash_final(ctx, out, SAAS_SHA256_LEN) < 0)
	{
		pg_cryptohash_free(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute SHA-256")));
	}
	pg_cryptohash_free(ctx);
}

/* saas_hex_value: the value of one hexadecimal digit (either case), or -1. */
int
saas_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
