/*-------------------------------------------------------------------------
 *
 * fuzz_base64url.c
 *	  libFuzzer target: strict base64url (src/common/base64url.c).
 *
 * Strictness means every byte string has one encoding, so the oracles
 * are: what decodes re-encodes to exactly the input, and what is encoded
 * decodes back to the bytes it came from.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "pg_saas.h"
#include "common/common.h"
#include "pg_stub.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	StringInfoData dec,
				enc,
				back;
	int			len = (int) Min(size, 65536);

	initStringInfo(&dec);
	initStringInfo(&enc);
	if (saas_b64url_decode((const char *) data, len, &dec))
	{
		saas_b64url_encode((const unsigned char *) dec.data, dec.len, &enc);
		if (enc.len != len || memcmp(enc.data, data, len) != 0)
			abort();			/* a second encoding of the same bytes */
	}
	resetStringInfo(&enc);
	initStringInfo(&back);
	saas_b64url_encode(data, len, &enc);
	if (!saas_b64url_decode(enc.data, enc.len, &back) ||
		back.len != len || memcmp(back.data, data, len) != 0)
		abort();				/* encoding lost or changed bytes */
	pg_fuzz_reset();
	return 0;
}
