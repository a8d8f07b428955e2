/*-------------------------------------------------------------------------
 *
 * jwt_parse.c
 *	  The parsing half of jwt.c: the JWS header, splitting a compact token
 *	  into its parts, and the HMAC signature check (HS256 for the tokens
 *	  pg_saas issues; HS384 and HS512 too for the saas.jwt_* helpers).
 *
 * What a client sends as a token meets this code first (with the strict
 * JSON check, common/json_strict.c, and base64url, common/base64url.c).
 * It needs only PostgreSQL's JSON lexer (common/jsonapi), HMAC (through
 * common/util.c), StringInfo and palloc, never a backend service, so
 * fuzz/fuzz_jwt.c builds it on its own with fuzz/pg_stub.c. The rules of
 * strictness are in jwt.c's header.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hmac.h"
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"

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
	if (sig.len == 0 || sig.len > SAAS_JWT_SIG_MAX)
	{
		/* alg "none" has an empty signature: report it as an algorithm problem */
		return saas_jwt_hs_len(parts->alg) == 0 ? SAAS_JWT_ALG_MISMATCH : SAAS_JWT_BAD_SIGNATURE;
	}

	parts->signing_input = token;
	parts->signing_input_len = dot2 - token;
	parts->payload_json = pay.data;
	parts->payload_len = pay.len;
	memcpy(parts->sig, sig.data, sig.len);
	parts->sig_len = sig.len;
	return SAAS_JWT_OK;
}

/*
 * saas_jwt_hs_len: the signature length of an HMAC algorithm (HS256, HS384,
 * HS512), 0 for any other name.
 */
int
saas_jwt_hs_len(const char *alg)
{
	if (strcmp(alg, "HS256") == 0)
		return 32;
	if (strcmp(alg, "HS384") == 0)
		return 48;
	if (strcmp(alg, "HS512") == 0)
		return 64;
	return 0;
}

/*
 * saas_jwt_check_sig_alg: the token's alg must be the one the caller pins
 * (an HMAC algorithm of saas_jwt_hs_len) and its signature must match,
 * compared in constant time over the whole expected length.
 */
SaasJwtStatus
saas_jwt_check_sig_alg(const SaasJwtParts *parts, const char *alg,
					   const unsigned char *secret, int secret_len)
{
	unsigned char mac[SAAS_JWT_SIG_MAX];
	int			len = saas_jwt_hs_len(alg);
	pg_hmac_ctx *ctx;

	if (len == 0 || strcmp(parts->alg, alg) != 0)
		return SAAS_JWT_ALG_MISMATCH;
	if (parts->sig_len != len)
		return SAAS_JWT_BAD_SIGNATURE;
	ctx = pg_hmac_create(len == 32 ? PG_SHA256 : len == 48 ? PG_SHA384 : PG_SHA512);
	if (ctx == NULL ||
		pg_hmac_init(ctx, secret, secret_len) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) parts->signing_input, parts->signing_input_len) < 0 ||
		pg_hmac_final(ctx, mac, len) < 0)
	{
		pg_hmac_free(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute the HMAC of a token")));
	}
	pg_hmac_free(ctx);
	if (!saas_timingsafe_eq(mac, parts->sig, len))
		return SAAS_JWT_BAD_SIGNATURE;
	return SAAS_JWT_OK;
}

/*
 * saas_jwt_check_sig: the check of the tokens pg_saas issues: HS256, the
 * only algorithm a signing key has (a token saying HS384 or HS512 fails).
 */
SaasJwtStatus
saas_jwt_check_sig(const SaasJwtParts *parts, const unsigned char *secret,
				   int secret_len)
{
	return saas_jwt_check_sig_alg(parts, "HS256", secret, secret_len);
}
