/*-------------------------------------------------------------------------
 *
 * util.c
 *	  Small primitives used across the extension: constant-time comparison
 *	  and strong random bytes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "pg_saas.h"

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
