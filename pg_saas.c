/*-------------------------------------------------------------------------
 *
 * pg_saas.c
 *	  Module entry point: settings (saas.* GUCs) and the hooks that other
 *	  parts of the extension need at load time.
 *
 * The one file that knows both layers: the extension (src/, each subsystem
 * behind its header) and the background worker (bgworker/, which uses the
 * extension's interfaces). Each part with shared memory registers it with
 * the registry (src/common/shmem.c) from here.
 *
 * Every setting has a safe default; the extension works with none set.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "src/pg_saas.h"
#include "src/auth/auth.h"
#include "src/auth/oidc.h"
#include "src/common/common.h"
#include "src/ratelimit/ratelimit.h"
#include "bgworker/retention.h"
#include "bgworker/worker_api.h"

PG_MODULE_MAGIC;

char	   *saas_jwt_issuer = NULL;
char	   *saas_jwt_audience = NULL;
int			saas_jwt_leeway_s = 30;
int			saas_jwt_ttl_s = 3600;
int			saas_refresh_ttl_s = 14 * 24 * 3600;
int			saas_max_body_bytes = 1024 * 1024;
char	   *saas_database = NULL;
int			saas_argon2_memory_kib = 19456;
int			saas_argon2_iterations = 2;

/* Holders for GUCs whose value is read through GetConfigOption. */
static char *saas_context_guc = NULL;
static char *saas_trusted_guc = NULL;
static char *saas_request_id_guc = NULL;
static char *saas_client_addr_guc = NULL;

PGDLLEXPORT void _PG_init(void);

/*
 * check_token_string: a transaction's context token may only hold the
 * characters of a compact JWT, so a setting can never smuggle anything else.
 */
static bool
check_token_string(char **newval, void **extra, GucSource source)
{
	const char *p;

	if (*newval == NULL)
		return true;
	for (p = *newval; *p; p++)
	{
		unsigned char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '-' || c == '_' || c == '.'))
		{
			GUC_check_errdetail("The value must be a compact JWT.");
			return false;
		}
	}
	return true;
}

void
_PG_init(void)
{
	DefineCustomStringVariable("saas.jwt_issuer",
							   "Issuer (iss) that tokens are signed with and must carry.",
							   NULL, &saas_jwt_issuer, "pg_saas",
							   PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("saas.jwt_audience",
							   "Audience (aud) that tokens are signed for and must carry.",
							   NULL, &saas_jwt_audience, "pg_saas_api",
							   PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("saas.jwt_leeway",
							"Clock leeway allowed when checking exp and nbf.",
							NULL, &saas_jwt_leeway_s, 30, 0, 300,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("saas.jwt_ttl",
							"Lifetime of the tokens that login and register issue.",
							NULL, &saas_jwt_ttl_s, 3600, 60, 7 * 24 * 3600,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("saas.refresh_ttl",
							"Lifetime of a refresh token (each rotation issues a new one).",
							NULL, &saas_refresh_ttl_s, 14 * 24 * 3600, 60, 365 * 24 * 3600,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("saas.max_body_bytes",
							"Largest request body saas.http accepts (413 above).",
							NULL, &saas_max_body_bytes, 1024 * 1024, 1024, 64 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("saas.argon2_memory_kib",
							"argon2id memory cost for new password hashes (OWASP minimum 19456).",
							NULL, &saas_argon2_memory_kib, 19456, 19456, 1024 * 1024,
							PGC_SUSET, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("saas.argon2_iterations",
							"argon2id time cost for new password hashes (OWASP minimum 2).",
							NULL, &saas_argon2_iterations, 2, 2, 64,
							PGC_SUSET, 0, NULL, NULL, NULL);
	/*
	 * The worker's database is fixed at server start. Loaded later (no
	 * shared_preload_libraries: no worker), a postmaster-level setting
	 * cannot be created any more, so it is then merely informational.
	 */
	DefineCustomStringVariable("saas.sso_allowed_origins",
							   "Origins (scheme://host[:port|:*], comma-separated) of the identity providers the server may call for SSO; empty: none.",
							   NULL, &saas_sso_allowed_origins, "",
							   PGC_SUSET, GUC_LIST_INPUT, saas_oidc_origins_check_hook, NULL, NULL);
	DefineCustomStringVariable("saas.database",
							   "Database the background worker serves.",
							   NULL, &saas_database, "postgres",
							   process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SIGHUP,
							   0, NULL, NULL, NULL);

	/*
	 * Per-transaction values. Anyone may set them, so nothing trusts them:
	 * saas.context is verified where it is read, the others are only recorded.
	 */
	DefineCustomStringVariable("saas.context",
							   "Signed tenant context of the current transaction (set by saas.authenticate).",
							   NULL, &saas_context_guc, "",
							   PGC_USERSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   check_token_string, NULL, NULL);
	/*
	 * The trusted token of the extension's push in force in this backend
	 * (context.c): only C code and superusers set it, so a trusted token
	 * read elsewhere and put in saas.context by an application role is not
	 * honoured. Parallel workers get it with the leader's other settings.
	 */
	DefineCustomStringVariable("saas._trusted",
							   "Trusted context token minted by this backend (internal).",
							   NULL, &saas_trusted_guc, "",
							   PGC_SUSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE |
							   GUC_SUPERUSER_ONLY | GUC_NO_RESET_ALL,
							   check_token_string, NULL, NULL);
	DefineCustomStringVariable("saas.request_id",
							   "Request id recorded in the audit log.",
							   NULL, &saas_request_id_guc, "",
							   PGC_USERSET, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	DefineCustomStringVariable("saas.client_addr",
							   "Client address of the current HTTP request (set by saas.http).",
							   NULL, &saas_client_addr_guc, "",
							   PGC_USERSET, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);

	saas_retention_define_gucs();
	saas_worker_define_gucs();

	MarkGUCPrefixReserved("saas");

	saas_context_init();
	saas_session_init();
	saas_log_redact_init();
	saas_citus_guard_gucs(false);	/* when Citus was loaded first */
	saas_citus_init();			/* the context forwarded to the Citus nodes */
	saas_ratelimit_init();		/* registers its shared memory */
	if (process_shared_preload_libraries_in_progress)
	{
		saas_worker_shmem_register();
		saas_worker_register();
	}
	saas_shmem_install_hooks();
}
