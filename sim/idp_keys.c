/*-------------------------------------------------------------------------
 *
 * idp_keys.c
 *	  The identity-provider's RSA keys: generation (RSA 2048, fresh at every
 *	  start: they are not derived from --seed), the JWKS, rotation.
 *
 * The key id is the key's RFC 7638 JWK thumbprint (base64url of SHA-256 of
 * {"e":...,"kty":"RSA","n":...}), so a kid names exactly one key.
 *
 *-------------------------------------------------------------------------
 */
#include "idp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

/* keys_bn_b64url: an RSA parameter of pkey as unpadded base64url of its big-endian bytes */
static char *
keys_bn_b64url(EVP_PKEY *pkey, const char *param)
{
	BIGNUM	   *bn = NULL;
	unsigned char *bytes;
	int			len;
	char	   *out;

	if (!EVP_PKEY_get_bn_param(pkey, param, &bn))
		return NULL;
	len = BN_num_bytes(bn);
	bytes = sim_malloc((size_t) len + 1);
	BN_bn2bin(bn, bytes);
	out = idp_b64url(bytes, (size_t) len);
	free(bytes);
	BN_free(bn);
	return out;
}

/* keys_pub_pem: the public key as a SubjectPublicKeyInfo PEM */
static char *
keys_pub_pem(EVP_PKEY *pkey)
{
	BIO		   *bio = BIO_new(BIO_s_mem());
	char	   *data;
	long		len;
	char	   *out = NULL;

	if (bio == NULL)
		return NULL;
	if (PEM_write_bio_PUBKEY(bio, pkey) == 1)
	{
		len = BIO_get_mem_data(bio, &data);
		if (len > 0)
			out = sim_strndup(data, (size_t) len);
	}
	BIO_free(bio);
	return out;
}

/* idp_key_generate: a new RSA 2048 key with its JWK parts; NULL on failure */
IdpKey *
idp_key_generate(void)
{
	IdpKey	   *k;
	SimBuf		thumb;
	unsigned char digest[SHA256_DIGEST_LENGTH];
	char	   *kid;

	k = sim_malloc(sizeof(IdpKey));
	memset(k, 0, sizeof(IdpKey));
	k->pkey = EVP_RSA_gen(2048);
	if (k->pkey == NULL)
	{
		free(k);
		return NULL;
	}
	k->n = keys_bn_b64url(k->pkey, OSSL_PKEY_PARAM_RSA_N);
	k->e = keys_bn_b64url(k->pkey, OSSL_PKEY_PARAM_RSA_E);
	k->pub_pem = keys_pub_pem(k->pkey);
	if (k->n == NULL || k->e == NULL || k->pub_pem == NULL)
	{
		idp_key_free(k);
		return NULL;
	}
	/* RFC 7638: the required members in lexicographic order, no whitespace */
	sbuf_init(&thumb);
	sbuf_printf(&thumb, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", k->e, k->n);
	SHA256((const unsigned char *) thumb.data, thumb.len, digest);
	sbuf_free(&thumb);
	kid = idp_b64url(digest, sizeof(digest));
	snprintf(k->kid, sizeof(k->kid), "%s", kid);
	free(kid);
	return k;
}

/* idp_key_free: a key and its parts */
void
idp_key_free(IdpKey *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k->n);
	free(k->e);
	free(k->pub_pem);
	free(k);
}

/* idp_current_key: the key new id_tokens are signed with; NULL if there is none */
IdpKey *
idp_current_key(IdpState *st)
{
	return st->nkeys > 0 ? st->keys[st->nkeys - 1] : NULL;
}

/* idp_keys_add: k becomes current; past IDP_MAX_KEYS the oldest is dropped */
void
idp_keys_add(IdpState *st, IdpKey *k)
{
	if (st->nkeys == IDP_MAX_KEYS)
	{
		idp_key_free(st->keys[0]);
		memmove(&st->keys[0], &st->keys[1], sizeof(IdpKey *) * (IDP_MAX_KEYS - 1));
		st->nkeys--;
	}
	st->keys[st->nkeys++] = k;
}

/* idp_keys_drop_old: only the current key stays */
void
idp_keys_drop_old(IdpState *st)
{
	if (st->nkeys <= 1)
		return;
	for (int i = 0; i < st->nkeys - 1; i++)
		idp_key_free(st->keys[i]);
	st->keys[0] = st->keys[st->nkeys - 1];
	st->nkeys = 1;
}

/* idp_keys_write_jwks: {"keys":[...]}, current key first */
void
idp_keys_write_jwks(SimJw *jw, IdpState *st)
{
	jw_obj_begin(jw);
	jw_key(jw, "keys");
	jw_arr_begin(jw);
	for (int i = st->nkeys - 1; i >= 0; i--)
	{
		IdpKey	   *k = st->keys[i];

		jw_obj_begin(jw);
		jw_kstr(jw, "kty", "RSA");
		jw_kstr(jw, "use", "sig");
		jw_kstr(jw, "alg", "RS256");
		jw_kstr(jw, "kid", k->kid);
		jw_kstr(jw, "n", k->n);
		jw_kstr(jw, "e", k->e);
		jw_obj_end(jw);
	}
	jw_arr_end(jw);
	jw_obj_end(jw);
}
