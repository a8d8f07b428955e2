/*-------------------------------------------------------------------------
 *
 * oidc_jwt.c
 *	  Verifying an OpenID Connect id_token: RS256 only, with the provider's
 *	  key named by kid in its JWKS; iss, aud (azp), exp, iat and nonce.
 *
 * The algorithm is pinned: the header must say RS256, whatever the key
 * says, so "none" and HS256 keyed with the public key (algorithm
 * confusion) are refused before any key is looked at. A JWK is used only
 * when it is an RSA key of at least 2048 bits whose "use" (when given) is
 * "sig" and whose "alg" (when given) is RS256. The signature is checked by
 * OpenSSL (EVP_DigestVerify, PKCS #1 v1.5 with SHA-256) on a key built from
 * n and e (EVP_PKEY_fromdata). Nothing here throws for hostile input: every
 * refusal is a status.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "common/common.h"
#include "auth/auth.h"
#include "auth/oidc.h"

#define OIDC_MAX_TOKEN		16384
#define OIDC_MIN_RSA_BITS	2048
#define OIDC_MAX_RSA_BYTES	1024	/* 8192-bit keys */

/* saas_oidc_message: the refusal in words (for the API's 401 answer). */
const char *
saas_oidc_message(SaasOidcStatus st)
{
	switch (st)
	{
		case SAAS_OIDC_OK:
			return "ok";
		case SAAS_OIDC_MALFORMED:
			return "the id_token is malformed";
		case SAAS_OIDC_BAD_ALG:
			return "the id_token is not signed with RS256";
		case SAAS_OIDC_UNKNOWN_KID:
			return "the id_token is signed with a key the provider does not publish";
		case SAAS_OIDC_BAD_KEY:
			return "the provider's key is not a usable RSA signing key";
		case SAAS_OIDC_BAD_SIGNATURE:
			return "the id_token's signature does not verify";
		case SAAS_OIDC_WRONG_ISSUER:
			return "the id_token is from another issuer";
		case SAAS_OIDC_WRONG_AUDIENCE:
			return "the id_token is for another client";
		case SAAS_OIDC_EXPIRED:
			return "the id_token has expired";
		case SAAS_OIDC_BAD_IAT:
			return "the id_token's issue time is not acceptable";
		case SAAS_OIDC_BAD_NONCE:
			return "the id_token's nonce does not match the sign-in";
		case SAAS_OIDC_BAD_CLAIMS:
			return "the id_token lacks required claims";
	}
	return "the id_token is not acceptable";
}

/*
 * saas_oidc_rs256_verify: whether sig is a valid RS256 signature of data by
 * the RSA public key (n, e), big-endian bytes. OpenSSL's objects are freed
 * on every path; nothing in between can throw.
 */
bool
saas_oidc_rs256_verify(const unsigned char *n, int nlen, const unsigned char *e, int elen,
					   const unsigned char *data, size_t datalen,
					   const unsigned char *sig, int siglen)
{
	BIGNUM	   *bn_n = NULL,
			   *bn_e = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_PKEY   *pkey = NULL;
	EVP_MD_CTX *md = NULL;
	bool		ok = false;

	bn_n = BN_bin2bn(n, nlen, NULL);
	bn_e = BN_bin2bn(e, elen, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (bn_n == NULL || bn_e == NULL || bld == NULL ||
		!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
		!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))
		goto done;
	params = OSSL_PARAM_BLD_to_param(bld);
	pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (params == NULL || pctx == NULL ||
		EVP_PKEY_fromdata_init(pctx) <= 0 ||
		EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0 ||
		pkey == NULL)
		goto done;
	if (EVP_PKEY_get_bits(pkey) < OIDC_MIN_RSA_BITS || siglen != EVP_PKEY_get_size(pkey))
		goto done;
	md = EVP_MD_CTX_new();
	if (md == NULL ||
		EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) != 1)
		goto done;
	ok = (EVP_DigestVerify(md, sig, siglen, data, datalen) == 1);
done:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(pctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn_n);
	BN_free(bn_e);
	return ok;
}

/* oidc_str: a string member of an object container as a C string, or NULL. */
static char *
oidc_str(JsonbContainer *c, const char *key)
{
	JsonbValue *v = saas_jsonb_container_get(c, key);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* oidc_json_part: a base64url segment decoded into a jsonb object, or NULL. */
static Jsonb *
oidc_json_part(const char *seg, int len)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (len <= 0 || !saas_b64url_decode(seg, len, &buf))
		return NULL;
	if (!saas_json_valid_strict(buf.data, buf.len, true))
		return NULL;
	return saas_jsonb_from_text(buf.data, buf.len);
}

/* oidc_b64_member: a base64url string member decoded, false if absent or bad. */
static bool
oidc_b64_member(JsonbContainer *c, const char *key, StringInfo out, int maxlen)
{
	JsonbValue *v = saas_jsonb_container_get(c, key);

	if (v == NULL || v->type != jbvString || v->val.string.len == 0 ||
		v->val.string.len > maxlen * 4 / 3 + 4)
		return false;
	return saas_b64url_decode(v->val.string.val, v->val.string.len, out);
}

/*
 * oidc_find_key: the JWK of jwks ({"keys":[...]}) with this kid, or NULL.
 * Keys with another kid, or no kid, are never tried.
 */
static JsonbContainer *
oidc_find_key(Jsonb *jwks, const char *kid)
{
	JsonbValue *keys = jwks ? saas_jsonb_get(jwks, "keys") : NULL;
	JsonbContainer *arr;
	int			n,
				i;

	if (keys == NULL || keys->type != jbvBinary || !JsonContainerIsArray(keys->val.binary.data))
		return NULL;
	arr = keys->val.binary.data;
	n = JsonContainerSize(arr);
	for (i = 0; i < n; i++)
	{
		JsonbValue *k = getIthJsonbValueFromContainer(arr, i);
		char	   *kkid;

		if (k == NULL || k->type != jbvBinary || !JsonContainerIsObject(k->val.binary.data))
			continue;
		kkid = oidc_str(k->val.binary.data, "kid");
		if (kkid && strcmp(kkid, kid) == 0)
			return k->val.binary.data;
	}
	return NULL;
}

/* oidc_numeric_date: a NumericDate claim as whole seconds; false if absent or bad. */
static bool
oidc_numeric_date(Jsonb *claims, const char *key, bool round_up, int64 *out)
{
	JsonbValue *v = saas_jsonb_get(claims, key);

	if (v == NULL || v->type != jbvNumeric)
		return false;
	return saas_jwt_numeric_date(DatumGetCString(DirectFunctionCall1(numeric_out,
																	 NumericGetDatum(v->val.numeric))),
								 round_up, out);
}

/* oidc_audience_ok: aud is the client id, or a list holding it with azp the client id. */
static bool
oidc_audience_ok(Jsonb *claims, const char *client_id)
{
	JsonbValue *aud = saas_jsonb_get(claims, "aud");
	int			cl = (int) strlen(client_id);

	if (aud == NULL)
		return false;
	if (aud->type == jbvString)
		return aud->val.string.len == cl && memcmp(aud->val.string.val, client_id, cl) == 0;
	if (aud->type == jbvBinary && JsonContainerIsArray(aud->val.binary.data))
	{
		JsonbContainer *arr = aud->val.binary.data;
		int			n = JsonContainerSize(arr);
		bool		found = false;

		for (int i = 0; i < n; i++)
		{
			JsonbValue *a = getIthJsonbValueFromContainer(arr, i);

			if (a && a->type == jbvString && a->val.string.len == cl &&
				memcmp(a->val.string.val, client_id, cl) == 0)
				found = true;
		}
		if (!found)
			return false;
		if (n > 1)
		{
			char	   *azp = oidc_str(&claims->root, "azp");

			return azp != NULL && strcmp(azp, client_id) == 0;
		}
		return true;
	}
	return false;
}

/* saas_oidc_token_kid: the kid a token's header names (up to 256 chars), or NULL. */
char *
saas_oidc_token_kid(const char *token)
{
	const char *dot = token ? strchr(token, '.') : NULL;
	Jsonb	   *header;
	char	   *kid;

	if (dot == NULL || dot - token > OIDC_MAX_TOKEN)
		return NULL;
	header = oidc_json_part(token, dot - token);
	kid = header ? oidc_str(&header->root, "kid") : NULL;
	return (kid && kid[0] && strlen(kid) <= 256) ? kid : NULL;
}

/*
 * saas_oidc_verify: check token against the JWKS and what x expects; on
 * SAAS_OIDC_OK *claims is the payload. SAAS_OIDC_UNKNOWN_KID tells the
 * caller to refresh the JWKS once and try again.
 */
SaasOidcStatus
saas_oidc_verify(const char *token, Jsonb *jwks, const SaasOidcExpect *x, Jsonb **claims)
{
	const char *dot1,
			   *dot2;
	size_t		len;
	Jsonb	   *header,
			   *payload;
	char	   *alg,
			   *kid,
			   *s;
	JsonbContainer *jwk;
	StringInfoData n,
				e,
				sig;
	int64		exp,
				iat;

	*claims = NULL;
	if (token == NULL || (len = strlen(token)) == 0 || len > OIDC_MAX_TOKEN)
		return SAAS_OIDC_MALFORMED;
	dot1 = strchr(token, '.');
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') != NULL)
		return SAAS_OIDC_MALFORMED;

	/* The header first: the algorithm is pinned before any key is chosen. */
	header = oidc_json_part(token, dot1 - token);
	if (header == NULL)
		return SAAS_OIDC_MALFORMED;
	alg = oidc_str(&header->root, "alg");
	if (alg == NULL || strcmp(alg, "RS256") != 0)
		return SAAS_OIDC_BAD_ALG;
	if (saas_jsonb_get(header, "crit") != NULL)
		return SAAS_OIDC_MALFORMED;
	kid = oidc_str(&header->root, "kid");
	if (kid == NULL || kid[0] == '\0' || strlen(kid) > 256)
		return SAAS_OIDC_UNKNOWN_KID;
	jwk = oidc_find_key(jwks, kid);
	if (jwk == NULL)
		return SAAS_OIDC_UNKNOWN_KID;
	s = oidc_str(jwk, "kty");
	if (s == NULL || strcmp(s, "RSA") != 0)
		return SAAS_OIDC_BAD_KEY;
	if ((s = oidc_str(jwk, "use")) != NULL && strcmp(s, "sig") != 0)
		return SAAS_OIDC_BAD_KEY;
	if ((s = oidc_str(jwk, "alg")) != NULL && strcmp(s, "RS256") != 0)
		return SAAS_OIDC_BAD_KEY;
	initStringInfo(&n);
	initStringInfo(&e);
	initStringInfo(&sig);
	if (!oidc_b64_member(jwk, "n", &n, OIDC_MAX_RSA_BYTES) ||
		!oidc_b64_member(jwk, "e", &e, 8))
		return SAAS_OIDC_BAD_KEY;
	if (strlen(dot2 + 1) > OIDC_MAX_RSA_BYTES * 4 / 3 + 4 ||
		!saas_b64url_decode(dot2 + 1, strlen(dot2 + 1), &sig) || sig.len == 0)
		return SAAS_OIDC_MALFORMED;
	if (!saas_oidc_rs256_verify((unsigned char *) n.data, n.len, (unsigned char *) e.data, e.len,
								(const unsigned char *) token, dot2 - token,
								(unsigned char *) sig.data, sig.len))
		return SAAS_OIDC_BAD_SIGNATURE;

	/* Signed by the provider: now what it says. */
	payload = oidc_json_part(dot1 + 1, dot2 - dot1 - 1);
	if (payload == NULL)
		return SAAS_OIDC_MALFORMED;
	s = oidc_str(&payload->root, "iss");
	if (s == NULL || strcmp(s, x->issuer) != 0)
		return SAAS_OIDC_WRONG_ISSUER;
	if (!oidc_audience_ok(payload, x->client_id))
		return SAAS_OIDC_WRONG_AUDIENCE;
	if (!oidc_numeric_date(payload, "exp", false, &exp) ||
		!oidc_numeric_date(payload, "iat", true, &iat))
		return SAAS_OIDC_BAD_CLAIMS;
	if (x->now > exp + x->leeway_s)
		return SAAS_OIDC_EXPIRED;
	if (iat > x->now + x->leeway_s || iat < x->now - x->max_age_s)
		return SAAS_OIDC_BAD_IAT;
	s = oidc_str(&payload->root, "nonce");
	if (s == NULL || strlen(s) != strlen(x->nonce) ||
		!saas_timingsafe_eq(s, x->nonce, strlen(s)))
		return SAAS_OIDC_BAD_NONCE;
	s = oidc_str(&payload->root, "sub");
	if (s == NULL || s[0] == '\0' || strlen(s) > 255)
		return SAAS_OIDC_BAD_CLAIMS;
	*claims = payload;
	return SAAS_OIDC_OK;
}
