/*-------------------------------------------------------------------------
 *
 * auth.h
 *	  The interface of src/auth: who is asking. The tenant context of a
 *	  transaction (context.c), the facts behind a token (session.c), compact
 *	  JWS HS256 tokens (jwt.c, jwt_time.c), the signing keys (keys.c),
 *	  argon2id passwords (password.c) and acting as the extension's owner
 *	  (identity.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_AUTH_H
#define SAAS_AUTH_H

#include "lib/stringinfo.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/uuid.h"

#include "pg_saas.h"

/*
 * The tenant context: who is acting, for which organization. "trusted" marks
 * a context that C code of this extension set for its own work (registration,
 * the worker), as opposed to one verified from a token.
 */
typedef struct SaasContext
{
	bool		valid;
	bool		trusted;
	pg_uuid_t	org_id;
	pg_uuid_t	user_id;
	char		role[16];
	char		actor[40];		/* trusted only: e.g. "service:user-service" */
	bool		api_key;		/* an API key acts: user_id is the key's id */
	uint32		scopes;			/* API key only: SAAS_SCOPE_* bits, as stored now */
} SaasContext;

/* context.c */
extern const SaasContext *saas_context_get(void);
extern const SaasContext *saas_context_require(void);
extern int	saas_context_push_trusted(const pg_uuid_t *org_id,
									  const pg_uuid_t *user_id,
									  const char *role);
extern void saas_context_pop(int nestlevel);
extern void saas_context_init(void);
extern Jsonb *saas_context_adopt(const char *token, int action, bool want_claims);
extern void saas_context_clear(void);
extern int	saas_context_push_service(const pg_uuid_t *org_id, const char *service);
extern bool saas_context_token(char *jti, int64 *exp);
extern void saas_context_set_minted(const char *token, int action);
extern bool saas_context_token_subject(const char *token, pg_uuid_t *org_id, pg_uuid_t *user_id,
									   bool *api_key);


/* keys.c: signing keys cached per backend, invalidated when the table changes. */
typedef struct SaasKey
{
	char		kid[65];
	unsigned char secret[256];
	int			secret_len;
} SaasKey;
extern uint64 saas_keys_generation;
extern const SaasKey *saas_keys_find(const char *kid);
extern const SaasKey *saas_keys_signer(void);
extern void saas_keys_init(void);
typedef struct SaasTokenClaims
{
	const pg_uuid_t *user_id;
	const pg_uuid_t *org_id;
	const char *role;
	int			ttl_s;
	bool		trusted;		/* the extension's own short token */
	int64		gen;			/* the user's session generation */
	const char *actor;			/* trusted only: who acts, or NULL */
	bool		api_key;		/* a context minted for an API key (api_keys.c) */
} SaasTokenClaims;
extern char *saas_token_issue(const SaasTokenClaims *tc);

/* identity.c: act as the extension's owner for private tables. */
typedef struct SaasElevation
{
	Oid			save_userid;
	int			save_sec_context;
	int			guc_nest;		/* search_path pinned for the elevated step */
} SaasElevation;
extern Oid	saas_extension_owner(void);
extern void saas_elevate(SaasElevation *e);
extern void saas_unelevate(const SaasElevation *e);
extern bool saas_elevate_citus(SaasElevation *e);
struct SaasPlan;
extern bool saas_owner_row(struct SaasPlan *plan, Datum *args);
extern bool saas_caller_row(struct SaasPlan *plan, Datum *args, const char *nulls);
extern bool saas_invoker_privileged(void);

/* jwt.c, jwt_time.c */
#define SAAS_JWT_MAX_LEN		8192
#define SAAS_JWT_SIG_LEN		32	/* HMAC-SHA256: what pg_saas issues */
#define SAAS_JWT_SIG_MAX		64	/* HMAC-SHA512: the longest the helpers take */

/* Why a token was refused; saas_jwt_error_message turns it into words. */
typedef enum SaasJwtStatus
{
	SAAS_JWT_OK = 0,
	SAAS_JWT_MALFORMED,
	SAAS_JWT_BAD_HEADER,
	SAAS_JWT_ALG_MISMATCH,
	SAAS_JWT_UNKNOWN_KEY,
	SAAS_JWT_BAD_SIGNATURE,
	SAAS_JWT_EXPIRED,
	SAAS_JWT_NOT_YET_VALID,
	SAAS_JWT_BAD_CLAIMS,
	SAAS_JWT_WRONG_ISSUER,
	SAAS_JWT_WRONG_AUDIENCE
} SaasJwtStatus;

/* A token split into its parts; pointers into the token or palloc'd. */
typedef struct SaasJwtParts
{
	const char *signing_input;	/* header.payload */
	int			signing_input_len;
	char		alg[16];
	char		kid[65];		/* empty when absent */
	char	   *payload_json;	/* decoded, validated JSON text */
	int			payload_len;
	unsigned char sig[SAAS_JWT_SIG_MAX];
	int			sig_len;
} SaasJwtParts;

extern const char *saas_jwt_error_message(SaasJwtStatus st);
extern SaasJwtStatus saas_jwt_split(const char *token, SaasJwtParts *parts);
extern SaasJwtStatus saas_jwt_check_sig(const SaasJwtParts *parts,
										const unsigned char *secret, int secret_len);
extern int	saas_jwt_hs_len(const char *alg);
extern SaasJwtStatus saas_jwt_check_sig_alg(const SaasJwtParts *parts, const char *alg,
											const unsigned char *secret, int secret_len);
/* The time claims of a token, as read. */
typedef struct SaasJwtTimes
{
	bool		has_exp,
				has_nbf,
				has_iat;
	int64		exp,
				nbf,
				iat;
} SaasJwtTimes;

extern SaasJwtStatus saas_jwt_check_time_values(const SaasJwtTimes *t, int64 now, int leeway,
												bool require_exp);
extern SaasJwtStatus saas_jwt_check_times(Jsonb *claims, int64 now, int leeway,
										  bool require_exp);
extern char *saas_jwt_encode(const char *kid, const char *claims_json, int claims_len,
							 const unsigned char *secret, int secret_len);
extern char *saas_jwt_encode_alg(const char *kid, const char *alg, const char *claims_json,
								 int claims_len, const unsigned char *secret, int secret_len);

/*
 * A NumericDate (JSON number text, may be non-integer or use an exponent)
 * as whole seconds: round_up false for exp, true for nbf and iat; then the
 * whole-second checks of saas_jwt_check_time_values answer as they would
 * for the exact value. False when not a JSON number or beyond +/- 2^53 s.
 */
extern bool saas_jwt_numeric_date(const char *num, bool round_up, int64 *out);

/* session.c */
/*
 * How long a backend trusts what it read about a user. The documented bound
 * is 5 seconds; a second of it is left for the request in flight.
 */
#define SAAS_SESSION_TTL_S 4
/* Revoked tokens kept per user before logout ends all sessions instead. */
#define SAAS_SESSION_MAX_REVOKED 32

typedef enum SaasSessionStatus
{
	SAAS_SESSION_OK,
	SAAS_SESSION_GONE,
	SAAS_SESSION_INACTIVE,
	SAAS_SESSION_ORG_SUSPENDED,
	SAAS_SESSION_ENDED,
	SAAS_SESSION_KEY_INVALID	/* API key revoked, expired, unknown or its creator without rights */
} SaasSessionStatus;

extern uint64 saas_jti_hash(const char *jti, size_t len);
extern SaasSessionStatus saas_session_check(const pg_uuid_t *org_id, const pg_uuid_t *user_id,
											int64 gen, uint64 jti, char *role,
											const char *token);
extern const char *saas_session_message(SaasSessionStatus st);
extern void saas_session_forget(void);
extern bool saas_facts_routed(void);
extern void saas_session_init(void);

/* refresh_token.c: the refresh token's text form and stored hash. */
#define SAAS_REFRESH_SECRET_LEN 32
typedef struct SaasRefreshToken
{
	pg_uuid_t	org_id;
	pg_uuid_t	id;
	unsigned char secret[SAAS_REFRESH_SECRET_LEN];
} SaasRefreshToken;
extern char *saas_refresh_encode(const SaasRefreshToken *t);
extern bool saas_refresh_decode(const char *s, SaasRefreshToken *t);
extern void saas_refresh_new(const pg_uuid_t *org_id, SaasRefreshToken *t);
extern void saas_refresh_hash(const SaasRefreshToken *t, unsigned char *out);

/* password.c: argon2id password hashing and the password policy. */
extern const char *saas_password_policy_error(const char *password, const char *email);
extern char *saas_password_hash(const char *password);
extern bool saas_password_verify(const char *password, const char *phc);
extern void saas_password_burn(const char *password);

/*
 * api_keys.c: API keys for machine clients. A key is
 * "sk_" <org id, 32 hex> "_" <key id, 32 hex> "_" <secret, 43 base64url>;
 * only the SHA-256 of the secret is stored. Scopes are bits.
 */
#define SAAS_SCOPE_USERS_READ			0x01
#define SAAS_SCOPE_USERS_WRITE			0x02
#define SAAS_SCOPE_AUDIT_READ			0x04
#define SAAS_SCOPE_INTEGRATIONS_READ	0x08
#define SAAS_API_KEY_PREFIX				"sk_"
#define SAAS_API_KEY_SECRET_BYTES		32
#define SAAS_API_KEY_LEN				(3 + 32 + 1 + 32 + 1 + 43)
/* last_used_at is written at most once per this many seconds per key. */
#define SAAS_API_KEY_TOUCH_S			60

extern uint32 saas_scope_bit(const char *name);
extern const char *saas_scope_name(uint32 bit);
extern bool saas_api_key_looks(const char *s);
extern char *saas_api_key_format(const pg_uuid_t *org_id, const pg_uuid_t *key_id,
								 const unsigned char *secret);
extern void saas_api_key_hash(const unsigned char *secret, unsigned char *out);
extern void saas_api_key_adopt(const char *key, int action);
extern SaasSessionStatus saas_api_key_check(const pg_uuid_t *org_id, const pg_uuid_t *key_id,
											uint32 *scopes, const char *token);
extern void saas_api_key_forget(void);
extern void saas_api_keys_init(void);
extern const SaasContext *saas_context_require_scope(uint32 mask, const char *what);
extern const SaasContext *saas_context_refuse_api_key(const char *what);

#endif							/* SAAS_AUTH_H */
