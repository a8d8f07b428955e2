/*-------------------------------------------------------------------------
 *
 * fuzz_jwt.c
 *	  libFuzzer target: the JWT parser (src/auth/jwt_parse.c): split, header and
 *	  payload decoding, strict JSON, and the HS256 signature check.
 *
 * Even first bytes: the rest is a token as a client presents it; whatever
 * it is, splitting and checking must answer with a status, never crash or
 * raise.  Odd first bytes: the rest is a claims text; when it is a strict
 * JSON object that starts with '{' (as jsonb's output, which is what
 * saas_jwt_encode signs, always does: the parser refuses a payload with
 * leading whitespace), a token signed over it must split and verify with
 * the key and fail with any other key.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"
#include "pg_stub.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char fuzz_key[] = "fuzzing key of thirty-two bytes!";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sigjmp_buf	jump;
	char	   *text;
	SaasJwtParts parts;
	SaasJwtStatus st;

	if (size < 1 || size > SAAS_JWT_MAX_LEN + 16)
		return 0;
	text = pnstrdup((const char *) data + 1, size - 1);
	pg_fuzz_jump = &jump;
	if (sigsetjmp(jump, 0) != 0)
		abort();				/* the parser raised instead of answering */
	if (data[0] % 2 == 0)
	{
		st = saas_jwt_split(text, &parts);
		if (st == SAAS_JWT_OK)
		{
			(void) saas_jwt_check_sig(&parts, fuzz_key, sizeof(fuzz_key) - 1);
			(void) saas_json_valid_strict(parts.payload_json, parts.payload_len, true);
		}
	}
	else if (text[0] == '{' && saas_json_valid_strict(text, strlen(text), true))
	{
		static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}";
		StringInfoData tok;
		unsigned char mac[SAAS_JWT_SIG_LEN];

		initStringInfo(&tok);
		saas_b64url_encode((const unsigned char *) header, sizeof(header) - 1, &tok);
		appendStringInfoChar(&tok, '.');
		saas_b64url_encode((const unsigned char *) text, strlen(text), &tok);
		saas_hmac_sha256(fuzz_key, sizeof(fuzz_key) - 1, tok.data, tok.len, mac);
		appendStringInfoChar(&tok, '.');
		saas_b64url_encode(mac, SAAS_JWT_SIG_LEN, &tok);
		if (tok.len <= SAAS_JWT_MAX_LEN)
		{
			st = saas_jwt_split(tok.data, &parts);
			if (st != SAAS_JWT_OK ||
				saas_jwt_check_sig(&parts, fuzz_key, sizeof(fuzz_key) - 1) != SAAS_JWT_OK ||
				saas_jwt_check_sig(&parts, (const unsigned char *) "other", 5) != SAAS_JWT_BAD_SIGNATURE ||
				parts.payload_len != (int) strlen(text) || strcmp(parts.kid, "k1") != 0)
				abort();		/* a token we signed does not verify */
		}
	}
	pg_fuzz_jump = NULL;
	pg_fuzz_reset();
	return 0;
}
