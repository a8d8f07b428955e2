/*-------------------------------------------------------------------------
 *
 * pg_saas.h
 *	  Declarations shared across the pg_saas extension: settings, the tenant
 *	  context, identity elevation, and the SQLSTATEs that carry HTTP meaning.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAAS_H
#define PG_SAAS_H

#include "postgres.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

/*
 * Custom SQLSTATE class "SA": the last three characters are the HTTP status
 * the router answers with, so an error raised anywhere maps without a table.
 */
#define ERRCODE_SAAS_UNAUTHORIZED		MAKE_SQLSTATE('S','A','4','0','1')
#define ERRCODE_SAAS_FORBIDDEN			MAKE_SQLSTATE('S','A','4','0','3')
#define ERRCODE_SAAS_NOT_FOUND			MAKE_SQLSTATE('S','A','4','0','4')
#define ERRCODE_SAAS_METHOD_NOT_ALLOWED	MAKE_SQLSTATE('S','A','4','0','5')
#define ERRCODE_SAAS_CONFLICT			MAKE_SQLSTATE('S','A','4','0','9')
#define ERRCODE_SAAS_PRECONDITION		MAKE_SQLSTATE('S','A','4','1','2')
#define ERRCODE_SAAS_TOO_LARGE			MAKE_SQLSTATE('S','A','4','1','3')
#define ERRCODE_SAAS_UNSUPPORTED_MEDIA	MAKE_SQLSTATE('S','A','4','1','5')
#define ERRCODE_SAAS_VALIDATION			MAKE_SQLSTATE('S','A','4','0','0')
#define ERRCODE_SAAS_RATE_LIMITED		MAKE_SQLSTATE('S','A','4','2','9')
#define ERRCODE_SAAS_UNAVAILABLE		MAKE_SQLSTATE('S','A','5','0','3')

/* Application roles carried in the context (the JWT "role" claim). */
#define SAAS_ROLE_SUPER_ADMIN	"super_admin"
#define SAAS_ROLE_ADMIN			"admin"
#define SAAS_ROLE_USER			"user"

/* Settings (pg_saas.c). */
extern char *saas_jwt_issuer;
extern char *saas_jwt_audience;
extern int	saas_jwt_leeway_s;
extern int	saas_jwt_ttl_s;
extern int	saas_max_body_bytes;
extern char *saas_database;
extern int	saas_argon2_memory_kib;
extern int	saas_argon2_iterations;

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
extern bool saas_invoker_privileged(void);

/* uuid.c */
extern void saas_uuid_v7(pg_uuid_t *out);
extern void saas_uuid_to_cstr(const pg_uuid_t *u, char *buf /* 37 bytes */ );
extern bool saas_uuid_from_cstr(const char *s, pg_uuid_t *out);

/* util.c */
extern bool saas_timingsafe_eq(const void *a, const void *b, size_t len);
extern void saas_random_bytes(void *buf, size_t len);

#endif							/* PG_SAAS_H */
