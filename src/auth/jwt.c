/*-------------------------------------------------------------------------
 *
 * jwt.c
 *	  HS256 JSON Web Tokens: strict parsing, signing, verification, and the
 *	  pgjwt-style SQL helpers saas.jwt_sign and saas.jwt_verify.
 *
 * Strict means: base64url without padding and with zero trailing bits, JSON
 * that is valid UTF-8 with no duplicate top-level keys, a header that names
 * only alg/typ/kid, and a signature of exactly 32 bytes compared in constant
 * time. The algorithm is pinned by the caller (the key), never taken from
 * the token: "none" and everything but HS256 fail. Strict is never stricter
 * than the RFCs: what they allow and common libraries emit (typ "jwt" in
 * any case, a non-integer NumericDate) passes.
 *
 * Unlike pgjwt, verification reads the clock and so is STABLE, not IMMUTABLE.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/jsonapi.h"
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
 * Header parsing in one pass of the JSON parser: only "alg", "typ" and
 * "kid" may appear, once each, as strings; anything else is a bad header.
 */
typedef struct JwtHeaderState
{
	int			depth;
	const char *field;			/* current top-level field, or NULL */
	bool		bad;
	bool		seen_alg,
				seen_typ,
				seen_kid;
	SaasJwtParts *parts;
	char		typ[16];
} JwtHeaderState;

static void
jh_object_start(void *state)
{
	JwtHeaderState *s = state;

	if (++s->depth > 1)
		s->bad = true;
}

static void
jh_object_end(void *state)
{
	((JwtHeaderState *) state)->depth--;
}

static void
jh_array_start(void *state)
{
	((JwtHeaderState *) state)->bad = true;
}

/* jh_field: a header key; only alg, typ and kid, each once. */
static void
jh_field(void *state, char *fname, bool isnull)
{
	JwtHeaderState *s = state;
	bool	   *seen = NULL;

	if (s->depth != 1)
		return;
	if (strcmp(fname, "alg") == 0)
		seen = &s->seen_alg;
	else if (strcmp(fname, "typ") == 0)
		seen = &s->seen_typ;
	else if (strcmp(fname, "kid") == 0)
		seen = &s->seen_kid;
	if (seen == NULL || *seen)
		s->bad = true;			/* unknown or repeated field */
	else
		*seen = true;
	s->field = fname;
}

/* jh_scalar: a header value: a non-empty string that fits its field. */
static void
jh_scalar(void *state, char *token, JsonTokenType tokentype)
{
	JwtHeaderState *s = state;
	char	   *dst;
	size_t		dstlen;

	if (s->depth != 1 || s->field == NULL)
	{
		s->bad = true;			/* a scalar document */
		return;
	}
	if (tokentype != JSON_TOKEN_STRING || token[0] == '\0')
	{
		s->bad = true;
		return;
	}
	if (strcmp(s->field, "alg") == 0)
		dst = s->parts->alg, dstlen = sizeof(s->parts->alg);
	else if (strcmp(s->field, "kid") == 0)
		dst = s->parts->kid, dstlen = sizeof(s->parts->kid);
	else
		dst = s->typ, dstlen = sizeof(s->typ);
	if (strlen(token) >= dstlen)
		s->bad = true;
	else
		strlcpy(dst, token, dstlen);
}

/*
 * jwt_typ_ok: typ names the media type application/jwt. RFC 7515 section
 * 4.1.9: media types compare case-insensitively ("JWT", "jwt", "Jwt"), and
 * a value without '/' stands for "application/" + value, so the full name
 * is the same type. ASCII case folding only: no locale decides.
 */
static bool
jwt_typ_ok(const char *typ)
{
	return pg_strcasecmp(typ, "JWT") == 0 || pg_strcasecmp(typ, "application/jwt") == 0;
}

/* jwt_parse_header: fill parts->alg/kid from the decoded header. */
static bool
jwt_parse_header(const char *json, int len, SaasJwtParts *parts)
{
	JsonLexContext *lex;
	JsonSemAction sem = {0};
	JwtHeaderState st = {0};

	if (len == 0 || json[0] != '{' || !pg_verifymbstr(json, len, true))
		return false;
	st.parts = parts;
	sem.semstate = &st;
	sem.object_start = jh_object_start;
	sem.object_end = jh_object_end;
	sem.array_start = jh_array_start;
	sem.object_field_start = jh_field;
	sem.scalar = jh_scalar;
	lex = makeJsonLexContextCstringLen((char *) json, len, GetDatabaseEncoding(), true);
	if (pg_parse_json(lex, &sem) != JSON_SUCCESS || st.bad || !st.seen_alg)
		return false;
	if (st.seen_typ && !jwt_typ_ok(st.typ))
		return false;
	return true;
}

/*
 * saas_jwt_split: split a compact JWS into its parts, decoding and checking
 * the header and payload. The signature is not checked here.
 */
SaasJwtStatus
saas_jwt_split(const char *token, SaasJwtParts *parts)
{
	const char *dot1,
			   *dot2;
	int			len;
	StringInfoData hdr,
				pay,
				sig;

	memset(parts, 0, sizeof(*parts));
	if (token == NULL)
		return SAAS_JWT_MALFORMED;
	len = strlen(token);
	if (len == 0 || len > SAAS_JWT_MAX_LEN)
		return SAAS_JWT_MALFORMED;
	dot1 = strchr(token, '.');
	if (dot1 == NULL)
		return SAAS_JWT_MALFORMED;
	dot2 = strchr(dot1 + 1, '.');
	if (dot2 == NULL || strchr(dot2 + 1, '.') != NULL)
		return SAAS_JWT_MALFORMED;

	initStringInfo(&hdr);
	initStringInfo(&pay);
	initStringInfo(&sig);
	if (dot1 == token || dot2 == dot1 + 1 ||
		!saas_b64url_decode(token, dot1 - token, &hdr) ||
		!saas_b64url_decode(dot1 + 1, dot2 - dot1 - 1, &pay) ||
		!saas_b64url_decode(dot2 + 1, strlen(dot2 + 1), &sig))
		return SAAS_JWT_MALFORMED;

	/* Header: an object with alg, optional typ (JWT), optional kid, nothing else. */
	if (!jwt_parse_header(hdr.data, hdr.len, parts))
		return SAAS_JWT_BAD_HEADER;

	if (pay.len == 0 || pay.data[0] != '{')
		return SAAS_JWT_MALFORMED;
	if (sig.len != SAAS_JWT_SIG_LEN)
	{
		/* alg "none" has an empty signature: report it as an algorithm problem */
		return strcmp(parts->alg, "HS256") != 0 ? SAAS_JWT_ALG_MISMATCH : SAAS_JWT_BAD_SIGNATURE;
	}

	parts->signing_input = token;
	parts->signing_input_len = dot2 - token;
	parts->payload_json = pay.data;
	parts->payload_len = pay.len;
	memcpy(parts->sig, sig.data, SAAS_JWT_SIG_LEN);
	return SAAS_JWT_OK;
}

/*
 * saas_jwt_check_sig: the token's alg must be HS256 (the only algorithm a
 * key can have) and its signature must match, compared in constant time.
 */
SaasJwtStatus
saas_jwt_check_sig(const SaasJwtParts *parts, const unsigned char *secret,
				   int secret_len)
{
	unsigned char mac[SAAS_JWT_SIG_LEN];

	if (strcmp(parts->alg, "HS256") != 0)
		return SAAS_JWT_ALG_MISMATCH;
	saas_hmac_sha256(secret, secret_len, parts->signing_input,
					parts->signing_input_len, mac);
	if (!saas_timingsafe_eq(mac, parts->sig, SAAS_JWT_SIG_LEN))
		return SAAS_JWT_BAD_SIGNATURE;
	return SAAS_JWT_OK;
}

/*
 * saas_jwt_encode: header (with kid when given) . payload . signature.
 * claims_json must be a JSON object.
 */
char *
saas_jwt_encode(const char *kid, const char *claims_json, int claims_len,
				const unsigned char *secret, int secret_len)
{
	StringInfoData out;
	StringInfoData hdr;
	unsigned char mac[SAAS_JWT_SIG_LEN];

	initStringInfo(&hdr);
	if (kid && kid[0])
		appendStringInfo(&hdr, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
	else
		appendStringInfoString(&hdr, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}");

	initStringInfo(&out);
	saas_b64url_encode((unsigned char *) hdr.data, hdr.len, &out);
	appendStringInfoChar(&out, '.');
	saas_b64url_encode((const unsigned char *) claims_json, claims_len, &out);
	saas_hmac_sha256(secret, secret_len, out.data, out.len, mac);
	appendStringInfoChar(&out, '.');
	saas_b64url_encode(mac, SAAS_JWT_SIG_LEN, &out);
	return out.data;
}

/* jwt_check_alg_arg: the helpers support HS256 only; say so clearly. */
static void
jwt_check_alg_arg(text *alg)
{
	char	   *a = text_to_cstring(alg);

	if (strcmp(a, "HS256") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unsupported JWT algorithm \"%s\"", a),
				 errhint("Only HS256 is supported.")));
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
 * RETURNS text. The claims are signed as given (no kid in the header).
 */
Datum
saas_jwt_sign(PG_FUNCTION_ARGS)
{
	Jsonb	   *claims = PG_GETARG_JSONB_P(0);
	bytea	   *secret = PG_GETARG_BYTEA_PP(1);
	const unsigned char *key;
	int			keylen;
	char	   *json;

	jwt_check_alg_arg(PG_GETARG_TEXT_PP(2));
	jwt_secret_arg(secret, &key, &keylen);
	if (!JB_ROOT_IS_OBJECT(claims))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("JWT claims must be a JSON object")));
	json = JsonbToCString(NULL, &claims->root, VARSIZE(claims));
	PG_RETURN_TEXT_P(cstring_to_text(saas_jwt_encode(NULL, json, strlen(json),
													 key, keylen)));
}

/*
 * SQL: saas.jwt_verify(token text, secret bytea, alg text DEFAULT 'HS256')
 * RETURNS jsonb. The claims, or an error that says why the token failed.
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

	jwt_check_alg_arg(PG_GETARG_TEXT_PP(2));
	jwt_secret_arg(secret, &key, &keylen);

	st = saas_jwt_split(token, &parts);
	if (st == SAAS_JWT_OK)
		st = saas_jwt_check_sig(&parts, key, keylen);
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
