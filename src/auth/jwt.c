/*-------------------------------------------------------------------------
 *
 * jwt.c
 *	  JSON Web Tokens: strict parsing, signing, verification, and the
 *	  pgjwt-style SQL helpers saas.jwt_sign and saas.jwt_verify. pg_saas
 *	  issues and accepts HS256 only (the algorithm is pinned per key); the
 *	  helpers also take HS384 and HS512, as pgjwt does.
 *
 * Strict means: base64url without padding and with zero trailing bits, JSON
 * that is valid UTF-8 with no duplicate top-level keys, a header that names
 * only alg/typ/kid, and a signature of exactly 32 bytes compared in constant
 * time. The algorithm is pinned by the caller (the key), never taken from
 * the token: "none" and every other algorithm fail. Strict is never stricter
 * than the RFCs: what they allow and common libraries emit (typ "jwt" in
 * any case, a non-integer NumericDate) passes.
 *
 * Unlike pgjwt, verification reads the clock and so is STABLE, not IMMUTABLE.
 *
 * The parsing (header, split, signature check) is in jwt_parse.c, strict
 * JSON in common/json_strict.c and base64url in common/base64url.c, apart so
 * that they can be fuzzed without a backend (fuzz/); this file signs and
 * holds the SQL functions.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/hmac.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"

PG_FUNCTION_INFO_V1(saas_jwt_sign);
PG_FUNCTION_INFO_V1(saas_jwt_verify);

/* saas_jwt_error_message: the reason shown to whoever presented the token. */
const char *
saas_jwt_error_message(SaasJwtStatus st)
{
	switch (st)
	{
		case SAAS_JWT_OK:
			return "valid";
		case SAAS_JWT_MALFORMED:
			return "token is malformed";
		case SAAS_JWT_BAD_HEADER:
			return "token header is invalid";
		case SAAS_JWT_ALG_MISMATCH:
			return "token algorithm does not match the key's algorithm";
		case SAAS_JWT_UNKNOWN_KEY:
			return "token signing key is unknown or retired";
		case SAAS_JWT_BAD_SIGNATURE:
			return "token signature is invalid";
		case SAAS_JWT_EXPIRED:
			return "token has expired";
		case SAAS_JWT_NOT_YET_VALID:
			return "token is not valid yet";
		case SAAS_JWT_BAD_CLAIMS:
			return "token claims are invalid";
		case SAAS_JWT_WRONG_ISSUER:
			return "token issuer is not accepted";
		case SAAS_JWT_WRONG_AUDIENCE:
			return "token audience is not accepted";
	}
	return "token is invalid";
}

/*
 * saas_jwt_encode_alg: header (alg, typ, and kid when given) . payload .
 * signature, for an HMAC algorithm of saas_jwt_hs_len. claims_json must be
 * a JSON object.
 */
char *
saas_jwt_encode_alg(const char *kid, const char *alg, const char *claims_json, int claims_len,
					const unsigned char *secret, int secret_len)
{
	StringInfoData out;
	StringInfoData hdr;
	unsigned char mac[SAAS_JWT_SIG_MAX];
	int			maclen = saas_jwt_hs_len(alg);
	pg_hmac_ctx *ctx;

	if (maclen == 0)
		elog(ERROR, "unsupported JWT algorithm \"%s\"", alg);
	initStringInfo(&hdr);
	if (kid && kid[0])
		appendStringInfo(&hdr, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg, kid);
	else
		appendStringInfo(&hdr, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);

	initStringInfo(&out);
	saas_b64url_encode((unsigned char *) hdr.data, hdr.len, &out);
	appendStringInfoChar(&out, '.');
	saas_b64url_encode((const unsigned char *) claims_json, claims_len, &out);
	ctx = pg_hmac_create(maclen == 32 ? PG_SHA256 : maclen == 48 ? PG_SHA384 : PG_SHA512);
	if (ctx == NULL ||
		pg_hmac_init(ctx, secret, secret_len) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) out.data, out.len) < 0 ||
		pg_hmac_final(ctx, mac, maclen) < 0)
	{
		pg_hmac_free(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute the HMAC of a token")));
	}
	pg_hmac_free(ctx);
	appendStringInfoChar(&out, '.');
	saas_b64url_encode(mac, maclen, &out);
	return out.data;
}

/* saas_jwt_encode: an HS256 token, the only kind pg_saas issues. */
char *
saas_jwt_encode(const char *kid, const char *claims_json, int claims_len,
				const unsigned char *secret, int secret_len)
{
	return saas_jwt_encode_alg(kid, "HS256", claims_json, claims_len, secret, secret_len);
}

/*
 * jwt_alg_arg: the helpers' algorithm argument: HS256, HS384 or HS512
 * (as pgjwt); anything else, "none" included, is refused.
 */
static const char *
jwt_alg_arg(text *alg)
{
	char	   *a = text_to_cstring(alg);

	if (saas_jwt_hs_len(a) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unsupported JWT algorithm \"%s\"", a),
				 errhint("The supported algorithms are HS256, HS384 and HS512.")));
	return a;
}

/* jwt_secret_arg: a bytea or text secret (the text overload is cast to bytea). */
static void
jwt_secret_arg(bytea *secret, const unsigned char **key, int *keylen)
{
	*key = (const unsigned char *) VARDATA_ANY(secret);
	*keylen = VARSIZE_ANY_EXHDR(secret);
	if (*keylen == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("JWT secret must not be empty")));
}

/*
 * SQL: saas.jwt_sign(claims jsonb, secret bytea, alg text DEFAULT 'HS256')
 * RETURNS text. The claims are signed as given (no kid in the header) with
 * HS256, HS384 or HS512.
 */
Datum
saas_jwt_sign(PG_FUNCTION_ARGS)
{
	Jsonb	   *claims = PG_GETARG_JSONB_P(0);
	bytea	   *secret = PG_GETARG_BYTEA_PP(1);
	const unsigned char *key;
	int			keylen;
	char	   *json;
	const char *alg;

	alg = jwt_alg_arg(PG_GETARG_TEXT_PP(2));
	jwt_secret_arg(secret, &key, &keylen);
	if (!JB_ROOT_IS_OBJECT(claims))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("JWT claims must be a JSON object")));
	json = JsonbToCString(NULL, &claims->root, VARSIZE(claims));
	PG_RETURN_TEXT_P(cstring_to_text(saas_jwt_encode_alg(NULL, alg, json, strlen(json),
														 key, keylen)));
}

/*
 * SQL: saas.jwt_verify(token text, secret bytea, alg text DEFAULT 'HS256')
 * RETURNS jsonb. The claims, or an error that says why the token failed;
 * the token's alg must be the one asked for.
 */
Datum
saas_jwt_verify(PG_FUNCTION_ARGS)
{
	char	   *token = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bytea	   *secret = PG_GETARG_BYTEA_PP(1);
	const unsigned char *key;
	int			keylen;
	SaasJwtParts parts;
	SaasJwtStatus st;
	Jsonb	   *claims = NULL;
	int64		now;
	const char *alg = jwt_alg_arg(PG_GETARG_TEXT_PP(2));

	jwt_secret_arg(secret, &key, &keylen);

	st = saas_jwt_split(token, &parts);
	if (st == SAAS_JWT_OK)
		st = saas_jwt_check_sig_alg(&parts, alg, key, keylen);
	if (st == SAAS_JWT_OK && !saas_json_valid_strict(parts.payload_json, parts.payload_len, true))
		st = SAAS_JWT_MALFORMED;
	if (st == SAAS_JWT_OK)
	{
		claims = saas_jsonb_from_text(parts.payload_json, parts.payload_len);
		now = (int64) (timestamptz_to_time_t(GetCurrentTransactionStartTimestamp()));
		st = saas_jwt_check_times(claims, now, saas_jwt_leeway_s, false);
	}
	if (st != SAAS_JWT_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_UNAUTHORIZED),
				 errmsg("invalid token: %s", saas_jwt_error_message(st))));
	PG_RETURN_JSONB_P(claims);
}
