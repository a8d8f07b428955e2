/*-------------------------------------------------------------------------
 *
 * ops.h
 *	  The API's operations. Each is callable from the HTTP router and from a
 *	  plain SQL function; each writes its JSON answer into "out" and raises
 *	  errors with the SQLSTATEs of pg_saas.h (http_errors.c maps them).
 *
 * Operations run as the caller, so row-level security applies; they also
 * filter by the context's org_id explicitly (defence in depth, and correct
 * for superuser callers, whom RLS does not restrict).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_OPS_H
#define SAAS_OPS_H

#include "lib/stringinfo.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

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

/* auth_ops.c */
extern void saas_op_register(Jsonb *body, StringInfo out);
extern void saas_op_login(Jsonb *body, StringInfo out);
extern void saas_op_logout(void);
extern void saas_op_logout_all(void);

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
extern void saas_user_set_password(const pg_uuid_t *org_id, const pg_uuid_t *user_id,
								   const char *password, const char *email);

/* audit_ops.c */
extern void saas_op_list_audit_logs(const SaasParams *p, StringInfo out);

/* webhook_ingest.c */
extern void saas_op_ingest_webhook(const char *service, Jsonb *headers, const char *body,
								   int body_len, StringInfo out,
								   void (*on_verified) (void *arg), void *arg);

/* integration_ops.c */
extern void saas_op_integration_status(StringInfo out);
extern void saas_op_list_jobs(const SaasParams *p, StringInfo out);
extern void saas_op_retry_job(const pg_uuid_t *id, StringInfo out);
extern void saas_op_retry_jobs(Jsonb *body, StringInfo out);

/* health */
extern void saas_op_health(StringInfo out, int *status);

#endif
