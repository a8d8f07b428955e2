/*-------------------------------------------------------------------------
 *
 * oidc.h
 *	  OpenID Connect, the relying party's half: verifying an identity
 *	  provider's id_token (RS256 only, keys from its JWKS; oidc_jwt.c) and
 *	  the provider's documents fetched over the network with tight timeouts
 *	  and cached per backend (oidc_http.c). Used by the SSO operations
 *	  (src/api/sso_ops.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_OIDC_H
#define SAAS_OIDC_H

#include "utils/guc.h"
#include "utils/jsonb.h"

/* What an id_token must say (oidc_jwt.c). */
typedef struct SaasOidcExpect
{
	const char *issuer;			/* iss, exactly */
	const char *client_id;		/* aud (and azp when aud has several) */
	const char *nonce;			/* nonce, exactly (compared in constant time) */
	int64		now;			/* Unix seconds */
	int			leeway_s;		/* for exp and iat */
	int			max_age_s;		/* iat no older than this */
} SaasOidcExpect;

/* Why an id_token was refused. */
typedef enum SaasOidcStatus
{
	SAAS_OIDC_OK = 0,
	SAAS_OIDC_MALFORMED,
	SAAS_OIDC_BAD_ALG,			/* anything but RS256: none, HS256, ... */
	SAAS_OIDC_UNKNOWN_KID,		/* no such key in the JWKS (refresh, then refuse) */
	SAAS_OIDC_BAD_KEY,			/* the JWK is not a usable RSA key */
	SAAS_OIDC_BAD_SIGNATURE,
	SAAS_OIDC_WRONG_ISSUER,
	SAAS_OIDC_WRONG_AUDIENCE,
	SAAS_OIDC_EXPIRED,
	SAAS_OIDC_BAD_IAT,			/* in the future or too old */
	SAAS_OIDC_BAD_NONCE,
	SAAS_OIDC_BAD_CLAIMS
} SaasOidcStatus;

extern SaasOidcStatus saas_oidc_verify(const char *token, Jsonb *jwks,
									   const SaasOidcExpect *x, Jsonb **claims);
extern const char *saas_oidc_message(SaasOidcStatus st);
extern char *saas_oidc_token_kid(const char *token);
extern bool saas_oidc_rs256_verify(const unsigned char *n, int nlen,
								   const unsigned char *e, int elen,
								   const unsigned char *data, size_t datalen,
								   const unsigned char *sig, int siglen);

/* oidc_http.c: the provider's documents; failures raise SA503 */
typedef struct SaasOidcProvider
{
	char	   *issuer;
	char	   *authorization_endpoint;
	char	   *token_endpoint;
	char	   *jwks_uri;
} SaasOidcProvider;

/* An answer of the provider: status and body (NUL-terminated). */
typedef struct SaasOidcAnswer
{
	long		status;
	char	   *body;
	int			len;
} SaasOidcAnswer;

#define SAAS_OIDC_CONNECT_TIMEOUT_MS	2000
#define SAAS_OIDC_TOTAL_TIMEOUT_MS		5000
#define SAAS_OIDC_MAX_ANSWER			(256 * 1024)

extern void saas_oidc_fetch(const char *url, const char *form, SaasOidcAnswer *a);
extern void saas_oidc_discover(const char *issuer, SaasOidcProvider *p);
extern Jsonb *saas_oidc_jwks(const char *jwks_uri, const char *unknown_kid);
extern void saas_oidc_forget(void);

/* oidc_allow.c: the origins the server may call (saas.sso_allowed_origins) */
extern char *saas_sso_allowed_origins;
extern bool saas_oidc_origins_check_hook(char **newval, void **extra, GucSource source);
extern bool saas_oidc_url_allowed(const char *url);

#endif							/* SAAS_OIDC_H */
