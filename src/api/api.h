/*-------------------------------------------------------------------------
 *
 * api.h
 *	  The interface of src/api: the HTTP router inside the extension
 *	  (saas.http, http_router.c), its error mapping (http_errors.c), request
 *	  validation (validate.c, params.c) and the API's operations (*_ops.c,
 *	  sql_api.c). The webhook operation lives in src/ingest.
 *
 * Each operation is callable from the HTTP router and from a plain SQL
 * function; each writes its JSON answer into "out" and raises errors with
 * the SQLSTATEs of pg_saas.h (http_errors.c maps them).
 *
 * Operations run as the caller, so row-level security applies; they also
 * filter by the context's org_id explicitly (defence in depth, and correct
 * for superuser callers, whom RLS does not restrict).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_API_H
#define SAAS_API_H

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/elog.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"
#include "ingest/ingest.h"

/* http_router.c, http_errors.c */
/* What the router answers: status, extra headers (JSON members), body. */
typedef struct SaasResponse
{
	int			status;
	StringInfoData headers;		/* "Name":"value" pairs, comma-separated */
	StringInfoData body;
	bool		has_body;
	bool		rate_counted;	/* a budget was counted (router_limit) */
} SaasResponse;

extern void saas_response_header(SaasResponse *r, const char *name, const char *value);
extern int	saas_http_status_for_error(ErrorData *edata);
extern void saas_http_error_response(SaasResponse *r, ErrorData *edata,
									 const char *request_id);
extern void saas_http_simple_error(SaasResponse *r, int status, const char *message,
								   const char *details_json, const char *request_id);

/* ops: the operations */
/* Query parameters of list operations (?limit&cursor&...), decoded. */
#define SAAS_MAX_PARAMS 16
typedef struct SaasParams
{
	int			n;
	char	   *keys[SAAS_MAX_PARAMS];
	char	   *values[SAAS_MAX_PARAMS];
} SaasParams;

extern const char *saas_param(const SaasParams *p, const char *key);
extern void saas_params_from_jsonb(Jsonb *jb, SaasParams *p);
extern void saas_params_check(const SaasParams *p, const char *const *allowed);
extern int	saas_param_limit(const SaasParams *p);

/*
 * sql_api.c: what every SQL API wrapper does (the wrappers of a feature live
 * beside its operations). SAAS_SQL_OP(call) is a wrapper's body: pin the
 * environment, run the operation (which writes its JSON into out), return
 * it as jsonb; an error unwinds the pinned settings with the
 * (sub)transaction.
 */
extern Datum saas_sql_result(StringInfo out);
extern Jsonb *saas_sql_arg_jsonb(FunctionCallInfo fcinfo, int n);
extern pg_uuid_t *saas_sql_arg_id(FunctionCallInfo fcinfo, int n);
#define SAAS_SQL_OP(call) \
	do { \
		StringInfoData out; \
		int			nest; \
		initStringInfo(&out); \
		nest = saas_env_push(); \
		call; \
		saas_env_pop(nest); \
		PG_RETURN_DATUM(saas_sql_result(&out)); \
	} while (0)

/* auth_ops.c */
extern void saas_op_register(Jsonb *body, StringInfo out);
extern void saas_op_login(Jsonb *body, StringInfo out);
extern void saas_audit_user_event(const pg_uuid_t *org_id, const pg_uuid_t *user_id,
								  const char *action);
extern void saas_op_logout(void);
extern void saas_op_logout_all(void);
extern void auth_token_json(StringInfo out, const pg_uuid_t *user_id, const pg_uuid_t *org_id,
							const char *role, int64 gen);

/* onetime_token.c: single-use tokens of invitations and password resets */
#define SAAS_OTT_SECRET_LEN 32
#define SAAS_OTT_HASH_LEN 32
typedef struct SaasOtt
{
	pg_uuid_t	org_id;
	pg_uuid_t	id;
	unsigned char hash[SAAS_OTT_HASH_LEN];	/* SHA-256 of the presented secret */
} SaasOtt;

extern char *saas_ott_make(const char *prefix, const pg_uuid_t *org_id, const pg_uuid_t *id,
						   unsigned char *hash);
extern bool saas_ott_parse(const char *prefix, const char *token, SaasOtt *t);
extern bool saas_ott_matches(const SaasOtt *t, Datum stored);
extern Datum saas_ott_hash_datum(const unsigned char *hash);
extern void saas_ott_send(const pg_uuid_t *org_id, const char *kind, const char *recipient,
						  const char *template_name, const char *subject, const char *text,
						  const char *key);
extern void saas_ott_drop_message(const pg_uuid_t *org_id, const char *key);
extern void saas_ott_refuse(const char *what) pg_attribute_noreturn();
extern HeapTuple saas_ott_claim(SaasPlan *plan, const SaasOtt *t, const char *what);

/* invitation_ops.c */
extern void saas_op_create_invitation(Jsonb *body, StringInfo out);
extern void saas_op_list_invitations(const SaasParams *p, StringInfo out);
extern void saas_op_revoke_invitation(const pg_uuid_t *id);
extern void saas_op_accept_invitation(Jsonb *body, StringInfo out);

/* password_reset_ops.c */
extern void saas_op_request_password_reset(Jsonb *body, StringInfo out);
extern void saas_op_confirm_password_reset(Jsonb *body);

/* session_ops.c: refresh tokens, GET /auth/me */
extern void saas_refresh_token_json(StringInfo out, const pg_uuid_t *user_id,
									const pg_uuid_t *org_id, int64 gen, const char *access_token);
extern bool saas_op_refresh(Jsonb *body, StringInfo out);
extern void saas_refresh_end_sessions(const pg_uuid_t *org_id, const pg_uuid_t *user_id,
									  const char *jti);
extern const char *saas_refresh_reuse_message(void);
extern void saas_op_me(StringInfo out);
extern void saas_login_answer(const pg_uuid_t *org_id, const pg_uuid_t *user_id,
							  const char *role, int64 gen, StringInfo out);

/* org_ops.c; the int64 results are the row version (the ETag) */
extern void saas_op_list_orgs(const SaasParams *p, StringInfo out);
extern void saas_op_create_org(Jsonb *body, StringInfo out);
extern int64 saas_op_get_org(const pg_uuid_t *id, StringInfo out);
extern int64 saas_op_update_org(const pg_uuid_t *id, Jsonb *body, int64 if_version, StringInfo out);
extern void saas_op_delete_org(const pg_uuid_t *id);
extern char *saas_slug_from_name(const char *name);
extern bool saas_slug_reserved(const char *slug);

/* user_ops.c */
extern void saas_op_list_users(const SaasParams *p, StringInfo out);
extern int64 saas_op_create_user(Jsonb *body, StringInfo out);
extern int64 saas_op_get_user(const pg_uuid_t *id, StringInfo out);
extern int64 saas_op_update_user(const pg_uuid_t *id, Jsonb *body, int64 if_version, StringInfo out);
extern void saas_op_delete_user(const pg_uuid_t *id);
extern void saas_user_dir_set(const pg_uuid_t *org_id, const pg_uuid_t *user_id,
							  const char *email, Jsonb *ext);
extern void saas_op_delete_if_match(const char *entity, void (*del) (const pg_uuid_t *id),
									const pg_uuid_t *id, int64 if_version);
extern void saas_user_set_password(const pg_uuid_t *org_id, const pg_uuid_t *user_id,
								   const char *password, const char *email);

/* audit_ops.c */
extern void saas_op_list_audit_logs(const SaasParams *p, StringInfo out);

/* dashboard_ops.c (routes_dashboard.c): what the admin dashboard reads */
extern void saas_op_integration_calls(const SaasParams *p, StringInfo out);
extern void saas_op_list_webhook_events(const SaasParams *p, StringInfo out);
extern void saas_op_audit_verify(const SaasParams *p, StringInfo out);


/* integration_ops.c */
extern void saas_op_integration_status(StringInfo out);
extern void saas_op_list_jobs(const SaasParams *p, StringInfo out);
extern void saas_op_retry_job(const pg_uuid_t *id, StringInfo out);
extern void saas_op_retry_jobs(Jsonb *body, StringInfo out);

/* health */
extern void saas_op_health(StringInfo out, int *status);

/* api_key_ops.c: API keys (routes_api_keys.c; SQL functions there too) */
extern void saas_api_key_route_create(Jsonb *body, StringInfo out);
extern void saas_api_key_route_list(const SaasParams *p, StringInfo out);
extern void saas_api_key_route_get(const pg_uuid_t *id, StringInfo out);
extern void saas_api_key_route_revoke(const pg_uuid_t *id);

/* ops_common.c: helpers shared by the operation files. */
#define USER_COLUMNS \
	"id, org_id, email, first_name, last_name, role, status, external_user_ids, " \
	"created_at, updated_at, last_login, version"
#define ORG_COLUMNS \
	"id, name, slug, subscription_tier, employee_limit, features_enabled, external_ids, " \
	"status, created_at, updated_at, version"

extern int64 saas_row_json(StringInfo out, int rowno);
extern void saas_page_json(StringInfo out, int limit, const char *sort_col);
extern void saas_require_role(const SaasContext *ctx, const char *const *roles,
							  const char *what);
extern void saas_require_role_scoped(const SaasContext *ctx, const char *const *roles,
									 const char *what);
extern void saas_not_found(const char *entity);
extern Datum saas_uuid_datum(const pg_uuid_t *u);
extern Datum saas_text_datum_or_null(const char *s, char *nullflag);
extern char *saas_header_get(Jsonb *headers, const char *name);

/* validate.c: request body validation with field-level errors. */
typedef enum SaasFieldKind
{
	SF_STRING,					/* min..max characters */
	SF_EMAIL,
	SF_SLUG,
	SF_PASSWORD,				/* policy checked by the operation */
	SF_INT,						/* min..max */
	SF_ENUM,					/* one of choices */
	SF_STRING_ARRAY,			/* up to max strings of 1..64 chars */
	SF_STRING_MAP,				/* object of up to max string values */
	SF_OBJECT					/* nested object, validated by the operation */
} SaasFieldKind;

typedef struct SaasField
{
	const char *name;
	SaasFieldKind kind;
	bool		required;
	int			min;
	int			max;
	const char *const *choices;
} SaasField;

/* Accumulated field errors, raised together as one 400. */
typedef struct SaasErrors
{
	StringInfoData json;		/* [{"field":..,"message":..},...] */
	int			n;
} SaasErrors;

extern void saas_errors_init(SaasErrors *e);
extern void saas_errors_add(SaasErrors *e, const char *field, const char *message);
extern void saas_errors_raise(SaasErrors *e);
extern void saas_raise_field_error(const char *field, const char *message);

extern Jsonb *saas_require_object(Jsonb *body);
extern void saas_validate(Jsonb *obj, const SaasField *fields, const char *prefix,
						  SaasErrors *e);

extern char *saas_get_str(Jsonb *obj, const char *key);
extern bool saas_get_int(Jsonb *obj, const char *key, int32 *out);
extern Jsonb *saas_get_jsonb(Jsonb *obj, const char *key);
extern bool saas_has(Jsonb *obj, const char *key);

extern const char *const saas_roles_assignable[];
extern const char *const saas_user_statuses[];
extern const char *const saas_tiers[];
extern const char *const saas_org_statuses[];

/* sso_ops.c, sso_flow.c: single sign-on (OpenID Connect) */
extern void saas_op_get_sso_connection(StringInfo out);
extern void saas_op_put_sso_connection(Jsonb *body, StringInfo out, bool *created);
extern void saas_op_delete_sso_connection(void);
extern bool saas_sso_password_login_allowed(const pg_uuid_t *org_id);
extern void saas_raise_sso_only(void) pg_attribute_noreturn();
/* The cookie that binds an SSO sign-in to the browser that started it. */
#define SAAS_SSO_COOKIE "__Host-saas_sso"
extern void saas_op_sso_start(const char *slug, const char *login_hint, StringInfo out,
							  char **location, char **binding);
extern void saas_op_sso_callback(const SaasParams *p, const char *binding, StringInfo out);

#endif							/* SAAS_API_H */
