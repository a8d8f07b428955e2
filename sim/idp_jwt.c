/*-------------------------------------------------------------------------
 *
 * idp_jwt.c
 *	  The identity-provider's id_tokens: base64url, RS256 signing, PKCE S256,
 *	  random codes and tokens, and the faults that spoil id_tokens.
 *
 * A healthy id_token is a JWS compact serialization with the header
 * {"alg":"RS256","kid":<current kid>,"typ":"JWT"} and the claims iss, sub,
 * aud, exp, iat, auth_time, nonce (when the authorize request had one),
 * email, email_verified, name, given_name, family_name.
 *
 *-------------------------------------------------------------------------
 */
#include "idp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

static const char *const fault_names[IDP_NFAULTS] = {
	"none", "wrong_aud", "wrong_iss", "expired", "future_iat", "bad_signature",
	"unknown_kid", "alg_none", "alg_hs256", "no_nonce", "wrong_nonce"
};

/* idp_fault_name: the control API's name of a fault */
const char *
idp_fault_name(IdpTokenFault f)
{
	return (f >= 0 && f < IDP_NFAULTS) ? fault_names[f] : "none";
}

/* idp_fault_parse: a fault by name; false if unknown */
bool
idp_fault_parse(const char *name, IdpTokenFault *f)
{
	for (int i = 0; i < IDP_NFAULTS; i++)
		if (strcmp(name, fault_names[i]) == 0)
		{
			*f = (IdpTokenFault) i;
			return true;
		}
	return false;
}

/* idp_b64url: unpadded base64url (RFC 4648 §5) of data, malloc'd */
char *
idp_b64url(const unsigned char *data, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char	   *out = sim_malloc(len / 3 * 4 + 5);
	size_t		o = 0;
	size_t		i = 0;

	for (; i + 2 < len; i += 3)
	{
		uint32_t	v = ((uint32_t) data[i] << 16) | ((uint32_t) data[i + 1] << 8) | data[i + 2];

		out[o++] = alphabet[(v >> 18) & 63];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = alphabet[(v >> 6) & 63];
		out[o++] = alphabet[v & 63];
	}
	if (len - i == 1)
	{
		uint32_t	v = (uint32_t) data[i] << 16;

		out[o++] = alphabet[(v >> 18) & 63];
		out[o++] = alphabet[(v >> 12) & 63];
	}
	else if (len - i == 2)
	{
		uint32_t	v = ((uint32_t) data[i] << 16) | ((uint32_t) data[i + 1] << 8);

		out[o++] = alphabet[(v >> 18) & 63];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = alphabet[(v >> 6) & 63];
	}
	out[o] = '\0';
	return out;
}

/* idp_random_token: base64url of nbytes (at most 64) from the CSPRNG into out */
void
idp_random_token(char *out, size_t nbytes)
{
	unsigned char raw[64];
	char	   *b;

	if (nbytes > sizeof(raw))
		nbytes = sizeof(raw);
	if (RAND_bytes(raw, (int) nbytes) != 1)
		abort();				/* no randomness: nothing safe to hand out */
	b = idp_b64url(raw, nbytes);
	strcpy(out, b);
	free(b);
}

/*
 * idp_s256_matches: BASE64URL(SHA256(ASCII(verifier))) == challenge
 * (RFC 7636 §4.6), compared in constant time.
 */
bool
idp_s256_matches(const char *verifier, const char *challenge)
{
	unsigned char digest[SHA256_DIGEST_LENGTH];
	char	   *mine;
	bool		ok;

	SHA256((const unsigned char *) verifier, strlen(verifier), digest);
	mine = idp_b64url(digest, sizeof(digest));
	ok = strlen(mine) == strlen(challenge) &&
		CRYPTO_memcmp(mine, challenge, strlen(mine)) == 0;
	free(mine);
	return ok;
}

/* jwt_rs256: the RS256 signature of input with key, base64url; NULL on failure */
static char *
jwt_rs256(EVP_PKEY *key, const char *input, size_t len)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char sig[1024];
	size_t		siglen = sizeof(sig);
	char	   *out = NULL;

	if (md == NULL)
		return NULL;
	/* RSA keys sign with PKCS #1 v1.5 padding by default: RS256 (RFC 7518 §3.3) */
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
		EVP_DigestSign(md, sig, &siglen, (const unsigned char *) input, len) == 1)
		out = idp_b64url(sig, siglen);
	EVP_MD_CTX_free(md);
	return out;
}

/* jwt_hs256: HMAC-SHA256 of input with secret, base64url */
static char *
jwt_hs256(const char *secret, const char *input, size_t len)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	if (HMAC(EVP_sha256(), secret, (int) strlen(secret), (const unsigned char *) input, len,
			 mac, &maclen) == NULL)
		return NULL;
	return idp_b64url(mac, maclen);
}

/* jwt_flip: spoil a base64url signature (its first byte changed), keeping it well formed */
static void
jwt_flip(char *sig)
{
	if (sig[0] != '\0')
		sig[0] = sig[0] == 'A' ? 'B' : 'A';
}

/* jwt_part: base64url of a JSON text */
static char *
jwt_part(const SimBuf *json)
{
	return idp_b64url((const unsigned char *) json->data, json->len);
}

/*
 * idp_make_id_token
 *		The id_token for user, redeemed from code, spoiled as st->fault says.
 *		NULL if the provider cannot sign (no key, an OpenSSL failure).
 */
char *
idp_make_id_token(IdpState *st, const IdpCode *code, const IdpUser *user, const char *issuer)
{
	IdpTokenFault fault = st->fault;
	IdpKey	   *key = fault == IDP_FAULT_UNKNOWN_KID ? st->stray : idp_current_key(st);
	int64_t		now = sim_now_ms() / 1000;
	int64_t		iat = now;
	int64_t		exp;
	const char *alg = "RS256";
	SimBuf		header,
				claims,
				token,
				name;
	SimJw		jw;
	char	   *h64,
			   *c64,
			   *sig = NULL;

	if (key == NULL)
		return NULL;
	if (fault == IDP_FAULT_EXPIRED)
		iat = now - st->id_token_ttl_s - 600;	/* expired ten minutes ago */
	else if (fault == IDP_FAULT_FUTURE_IAT)
		iat = now + 600;
	exp = iat + st->id_token_ttl_s;
	if (fault == IDP_FAULT_ALG_NONE)
		alg = "none";
	else if (fault == IDP_FAULT_ALG_HS256)
		alg = "HS256";

	sbuf_init(&header);
	jw_init(&jw, &header);
	jw_obj_begin(&jw);
	jw_kstr(&jw, "alg", alg);
	if (fault != IDP_FAULT_ALG_NONE)
		jw_kstr(&jw, "kid", key->kid);
	jw_kstr(&jw, "typ", "JWT");
	jw_obj_end(&jw);

	sbuf_init(&name);
	sbuf_printf(&name, "%s %s", user->given_name, user->family_name);
	sbuf_init(&claims);
	jw_init(&jw, &claims);
	jw_obj_begin(&jw);
	jw_kstr(&jw, "iss", fault == IDP_FAULT_WRONG_ISS ? "http://wrong-issuer.invalid" : issuer);
	jw_kstr(&jw, "sub", user->sub);
	jw_kstr(&jw, "aud", fault == IDP_FAULT_WRONG_AUD ? "saas-sim-some-other-client" : code->client_id);
	jw_kint(&jw, "exp", exp);
	jw_kint(&jw, "iat", iat);
	jw_kint(&jw, "auth_time", code->issued_s);
	if (fault == IDP_FAULT_WRONG_NONCE)
	{
		SimBuf		wrong;

		sbuf_init(&wrong);
		sbuf_printf(&wrong, "wrong-%s", code->nonce ? code->nonce : "nonce");
		jw_kstr(&jw, "nonce", wrong.data);
		sbuf_free(&wrong);
	}
	else if (code->nonce && fault != IDP_FAULT_NO_NONCE)
		jw_kstr(&jw, "nonce", code->nonce);
	jw_kstr(&jw, "email", user->email);
	jw_kbool(&jw, "email_verified", user->email_verified);
	jw_kstr(&jw, "name", name.data);
	jw_kstr(&jw, "given_name", user->given_name);
	jw_kstr(&jw, "family_name", user->family_name);
	jw_obj_end(&jw);
	sbuf_free(&name);

	h64 = jwt_part(&header);
	c64 = jwt_part(&claims);
	sbuf_free(&header);
	sbuf_free(&claims);
	sbuf_init(&token);
	sbuf_printf(&token, "%s.%s", h64, c64);
	free(h64);
	free(c64);

	if (fault == IDP_FAULT_ALG_NONE)
		sig = sim_strdup("");
	else if (fault == IDP_FAULT_ALG_HS256)
		sig = jwt_hs256(key->pub_pem, token.data, token.len);
	else
	{
		sig = jwt_rs256(key->pkey, token.data, token.len);
		if (sig && fault == IDP_FAULT_BAD_SIGNATURE)
			jwt_flip(sig);
	}
	if (sig == NULL)
	{
		sbuf_free(&token);
		return NULL;
	}
	sbuf_printf(&token, ".%s", sig);
	free(sig);
	return sbuf_steal(&token);
}
