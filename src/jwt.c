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
#include "common/hmac.h"
#include "common/jsonapi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "pg_saas.h"
#include "jwt.h"

PG_FUNCTION_INFO_V1(saas_jwt_sign);
PG_FUNCTION_INFO_V1(saas_jwt_verify);

static const char b64url_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

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

/* saas_b64url_encode: unpadded base64url, appended to out. */
void
saas_b64url_encode(const unsigned char *in, int len, StringInfo out)
{
	int			i;

	for (i = 0; i + 2 < len; i += 3)
	{
		uint32		v = (in[i] << 16) | (in[i + 1] << 8) | in[i + 2];

		appendStringInfoChar(out, b64url_alphabet[(v >> 18) & 63]);
		appendStringInfoChar(out, b64url_alphabet[(v >> 12) & 63]);
		appendStringInfoChar(out, b64url_alphabet[(v >> 6) & 63]);
		appendStringInfoChar(out, b64url_alphabet[v & 63]);
	}
	if (len - i == 1)
	{
		uint32		v = in[i] << 16;

		appendStringInfoChar(out, b64url_alphabet[(v >> 18) & 63]);
		appendStringInfoChar(out, b64url_alphabet[(v >> 12) & 63]);
	}
	else if (len - i == 2)
	{
		uint32		v = (in[i] << 16) | (in[i + 1] << 8);

		appendStringInfoChar(out, b64url_alphabet[(v >> 18) & 63]);
		appendStringInfoChar(out, b64url_alphabet[(v >> 12) & 63]);
		appendStringInfoChar(out, b64url_alphabet[(v >> 6) & 63]);
	}
}

/* base64url digit values; -1 for every byte outside the alphabet */
static int8 b64url_table[256];
static bool b64url_table_ready = false;

static void
b64url_init_table(void)
{
	int			i;

	memset(b64url_table, -1, sizeof(b64url_table));
	for (i = 0; i < 64; i++)
		b64url_table[(unsigned char) b64url_alphabet[i]] = (int8) i;
	b64url_table_ready = true;
}

static inline int
b64url_value(unsigned char c)
{
	return b64url_table[c];
}

/*
 * saas_b64url_decode: strict unpadded base64url. Rejects padding, other
 * alphabets, impossible lengths and non-zero trailing bits, so that every
 * token has exactly one encoding.
 */
bool
saas_b64url_decode(const char *in, int len, StringInfo out)
{
	uint32		acc = 0;
	int			bits = 0;
	int			i;
	char	   *dst;

	if (len % 4 == 1)
		return false;
	if (!b64url_table_ready)
		b64url_init_table();
	enlargeStringInfo(out, len * 3 / 4 + 1);
	dst = out->data + out->len;
	for (i = 0; i < len; i++)
	{
		int			v = b64url_value((unsigned char) in[i]);

		if (v < 0)
			return false;
		acc = (acc << 6) | v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			*dst++ = (char) ((acc >> bits) & 0xFF);
		}
	}
	out->len = dst - out->data;
	out->data[out->len] = '\0';
	/* leftover bits must be zero */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return false;
	return true;
}

/* State for the strict JSON check: depth and the top-level keys seen. */
typedef struct JsonStrictState
{
	int			depth;
	bool		top_is_object;
	bool		first;
	int			nkeys;
	char	   *keys[64];
	bool		dup;
} JsonStrictState;

static void
jstrict_object_start(void *state)
{
	JsonStrictState *s = state;

	if (s->first)
		s->top_is_object = true;
	s->first = false;
	s->depth++;
}

static void
jstrict_object_end(void *state)
{
	((JsonStrictState *) state)->depth--;
}

static void
jstrict_array_start(void *state)
{
	JsonStrictState *s = state;

	s->first = false;
	s->depth++;
}

static void
jstrict_array_end(void *state)
{
	((JsonStrictState *) state)->depth--;
}

static void
jstrict_scalar(void *state, char *token, JsonTokenType tokentype)
{
	((JsonStrictState *) state)->first = false;
}

static void
jstrict_field(void *state, char *fname, bool isnull)
{
	JsonStrictState *s = state;
	int			i;

	if (s->depth != 1)
		return;
	for (i = 0; i < s->nkeys; i++)
		if (strcmp(s->keys[i], fname) == 0)
			s->dup = true;
	if (s->nkeys < (int) lengthof(s->keys))
		s->keys[s->nkeys++] = fname;
	else
		s->dup = true;			/* more fields than any claim set needs */
}

/*
 * saas_json_valid_strict: true when json is valid UTF-8 JSON, at most 64
 * levels deep, without duplicate top-level keys (and an object when asked).
 * Never throws for bad input.
 */
bool
saas_json_valid_strict(const char *json, int len, bool top_object)
{
	JsonLexContext *lex;
	JsonSemAction sem = {0};
	JsonStrictState st = {0};
	JsonParseErrorType err;
	int			depth = 0,
				maxdepth = 0,
				i;
	bool		instr = false;

	if (!pg_verifymbstr(json, len, true))
		return false;
	/* Bound nesting before the recursive parser sees it. */
	for (i = 0; i < len; i++)
	{
		char		c = json[i];

		if (instr)
		{
			if (c == '\\')
				i++;
			else if (c == '"')
				instr = false;
		}
		else if (c == '"')
			instr = true;
		else if (c == '{' || c == '[')
		{
			if (++depth > maxdepth)
				maxdepth = depth;
		}
		else if (c == '}' || c == ']')
			depth--;
	}
	if (maxdepth > 64)
		return false;

	st.first = true;
	sem.semstate = &st;
	sem.object_start = jstrict_object_start;
	sem.object_end = jstrict_object_end;
	sem.array_start = jstrict_array_start;
	sem.array_end = jstrict_array_end;
	sem.object_field_start = jstrict_field;
	sem.scalar = jstrict_scalar;
	lex = makeJsonLexContextCstringLen(pnstrdup(json, len), len,
									   GetDatabaseEncoding(), true);
	err = pg_parse_json(lex, &sem);
	if (err != JSON_SUCCESS || st.dup)
		return false;
	if (top_object && !st.top_is_object)
		return false;
	return true;
}

/* saas_jsonb_from_text: jsonb of text already checked by saas_json_valid_strict. */
Jsonb *
saas_jsonb_from_text(const char *json, int len)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
											  CStringGetDatum(pnstrdup(json, len))));
}

/* saas_jsonb_get: the value of a top-level key, or NULL. */
JsonbValue *
saas_jsonb_get(Jsonb *jb, const char *key)
{
	return saas_jsonb_container_get(&jb->root, key);
}

/* saas_jsonb_container_get: the value of a key of an object container, or NULL. */
JsonbValue *
saas_jsonb_container_get(JsonbContainer *c, const char *key)
{
	JsonbValue	k;

	if (!JsonContainerIsObject(c))
		return NULL;
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(c, JB_FOBJECT, &k);
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

/* jwt_hmac_sha256: HMAC-SHA256 of data into out[32]. */
static void
jwt_hmac_sha256(const unsigned char *key, int keylen,
				const char *data, int len, unsigned char *out)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);

	if (ctx == NULL ||
		pg_hmac_init(ctx, key, keylen) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_hmac_final(ctx, out, SAAS_JWT_SIG_LEN) < 0)
	{
		pg_hmac_free(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute HMAC-SHA256")));
	}
	pg_hmac_free(ctx);
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
	jwt_hmac_sha256(secret, secret_len, parts->signing_input,
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
	jwt_hmac_sha256(secret, secret_len, out.data, out.len, mac);
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
