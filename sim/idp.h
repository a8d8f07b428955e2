/*-------------------------------------------------------------------------
 *
 * idp.h
 *	  The identity-provider of saas-sim: a small OpenID Connect provider
 *	  (authorization code flow with PKCE S256, RS256 id_tokens, JWKS with
 *	  rotation) with fault modes that spoil the id_tokens it issues.
 *
 *	  idp_keys.c		RSA keys, the JWKS, rotation
 *	  idp_jwt.c		base64url, id_tokens and their faults
 *	  idp_http.c		OAuth errors, forms, query parameters, Basic credentials
 *	  services_idp.c	the provider's endpoints and state
 *	  idp_control.c	/_sim/oidc on the control port, and the flags
 *
 * Locking: the provider's state (IdpState, svc->state of SIM_IDP) is guarded
 * by the service's lock like every service's; a request handler runs with it
 * held (server.c), control calls take it.  A new RSA key is generated
 * without the lock and then swapped in under it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SIM_IDP_H
#define SIM_IDP_H

#include "sim.h"

#include <openssl/evp.h>

#define IDP_MAX_KEYS 16			/* rotations beyond this drop the oldest key */
#define IDP_MAX_CLIENTS 256
#define IDP_MAX_USERS 1024
#define IDP_MAX_REDIRECTS 16
#define IDP_MAX_CODES 20000		/* live codes; beyond, expired ones are swept */
#define IDP_MAX_TOKENS 20000

/* an RSA signing key and what the JWKS and the faults need of it */
typedef struct IdpKey
{
	EVP_PKEY   *pkey;
	char		kid[48];		/* RFC 7638 thumbprint, base64url */
	char	   *n;				/* base64url, no padding */
	char	   *e;
	char	   *pub_pem;		/* SubjectPublicKeyInfo PEM, ends with a newline */
} IdpKey;

typedef struct IdpClient
{
	char	   *client_id;
	char	   *client_secret;
	char	   *redirect_uris[IDP_MAX_REDIRECTS];
	int			nredirects;
} IdpClient;

typedef struct IdpUser
{
	char	   *sub;
	char	   *email;
	char	   *given_name;
	char	   *family_name;
	bool		email_verified;
} IdpUser;

/* what an authorization code stands for until it is redeemed or expires */
typedef struct IdpCode
{
	char	   *client_id;
	char	   *redirect_uri;
	char	   *challenge;		/* S256 code_challenge */
	char	   *nonce;			/* NULL when the request had none */
	char	   *scope;
	char	   *sub;
	int64_t		issued_s;		/* auth_time */
	int64_t		expires_ms;		/* wall clock */
	bool		used;
} IdpCode;

typedef struct IdpToken
{
	char	   *sub;
	char	   *scope;
	char	   *client_id;
	int64_t		expires_ms;
} IdpToken;

/* how every id_token issued while it is set is spoiled */
typedef enum IdpTokenFault
{
	IDP_FAULT_NONE,
	IDP_FAULT_WRONG_AUD,
	IDP_FAULT_WRONG_ISS,
	IDP_FAULT_EXPIRED,
	IDP_FAULT_FUTURE_IAT,
	IDP_FAULT_BAD_SIGNATURE,
	IDP_FAULT_UNKNOWN_KID,
	IDP_FAULT_ALG_NONE,
	IDP_FAULT_ALG_HS256,
	IDP_FAULT_NO_NONCE,
	IDP_FAULT_WRONG_NONCE,
	IDP_NFAULTS
} IdpTokenFault;

typedef struct IdpState
{
	IdpKey	   *keys[IDP_MAX_KEYS]; /* oldest first; the last is current */
	int			nkeys;
	IdpKey	   *stray;			/* signs unknown_kid tokens; never published */
	IdpClient  *clients[IDP_MAX_CLIENTS];
	int			nclients;
	IdpUser    *users[IDP_MAX_USERS];
	int			nusers;
	int			default_user;	/* index into users */
	SimMap		codes;			/* code -> IdpCode */
	SimMap		tokens;			/* access token -> IdpToken */
	uint64_t	codes_issued;
	uint64_t	tokens_issued;
	IdpTokenFault fault;
	int			code_ttl_s;
	int			id_token_ttl_s;
	int			access_token_ttl_s;
} IdpState;

/* start-up configuration from the command line (main.c), restored by reset */
typedef struct IdpConfig
{
	char	   *issuer;			/* NULL: http://127.0.0.1:<port> */
	IdpClient  *clients[IDP_MAX_CLIENTS];
	int			nclients;
	int			code_ttl_s;
	int			id_token_ttl_s;
} IdpConfig;

extern IdpConfig sim_idp_config;

/* idp_http.c */
#define IDP_FORM_MAX 32

typedef struct IdpForm
{
	char	   *keys[IDP_FORM_MAX];
	char	   *values[IDP_FORM_MAX];
	int			n;
} IdpForm;

extern void idp_error(SimResponse *resp, int status, const char *error,
					  const char *fmt,...) __attribute__((format(printf, 4, 5)));
extern char *idp_form_decode(const char *s, size_t len);
extern bool idp_form_parse(const char *body, size_t len, IdpForm *f, char *err, size_t errlen);
extern const char *idp_form_get(const IdpForm *f, const char *name);
extern void idp_form_free(IdpForm *f);
extern const char *idp_query_duplicate(const SimRequest *req);
extern const char *idp_header(const SimRequest *req, const char *name);
extern void idp_url_encode(SimBuf *b, const char *s);
extern int	idp_basic_credentials(const char *header, char **id, char **secret);

/* idp_control.c */
extern bool sim_idp_set_issuer(const char *url, char *err, size_t errlen);
extern bool sim_idp_add_flag_client(const char *spec, char *err, size_t errlen);
extern void sim_idp_config_free(void);
extern bool idp_redirect_uri_valid(const char *uri);
extern IdpClient *idp_client_new(const char *id, const char *secret);
extern void idp_client_free(IdpClient *c);

/* services_idp.c */
extern void idp_issuer(char *out, size_t outlen);
extern IdpState *idp_state(void);
extern IdpClient *idp_find_client(IdpState *st, const char *client_id);
extern void idp_put_user(IdpState *st, IdpUser *u, bool make_default);
extern void idp_user_free(IdpUser *u);

/* idp_keys.c */
extern IdpKey *idp_key_generate(void);
extern void idp_key_free(IdpKey *k);
extern void idp_keys_write_jwks(SimJw *jw, IdpState *st);
extern IdpKey *idp_current_key(IdpState *st);
extern void idp_keys_add(IdpState *st, IdpKey *k);
extern void idp_keys_drop_old(IdpState *st);

/* idp_jwt.c */
extern char *idp_b64url(const unsigned char *data, size_t len);
extern void idp_random_token(char *out, size_t nbytes);
extern bool idp_s256_matches(const char *verifier, const char *challenge);
extern const char *idp_fault_name(IdpTokenFault f);
extern bool idp_fault_parse(const char *name, IdpTokenFault *f);
extern char *idp_make_id_token(IdpState *st, const IdpCode *code, const IdpUser *user,
							   const char *issuer);

#endif							/* SIM_IDP_H */
