/*-------------------------------------------------------------------------
 *
 * pg_saas.h
 *	  What every part of pg_saas shares: the settings (saas.* GUCs, defined
 *	  in the module entry ../pg_saas.c), the SQLSTATEs that carry HTTP
 *	  meaning, the application roles, and which symbols the library exports.
 *
 *	  Each subsystem has one header that is its interface, included as
 *	  "folder/folder.h": common/common.h, auth/auth.h, audit/audit.h,
 *	  ratelimit/ratelimit.h, ingest/ingest.h, api/api.h. The background
 *	  worker (bgworker/) uses them; nothing in src/ includes bgworker/.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAAS_H
#define PG_SAAS_H

#include "postgres.h"
#include "fmgr.h"

/*
 * Symbols: the library is built with -fvisibility=hidden, because PostgreSQL
 * loads it with RTLD_GLOBAL and every global symbol would otherwise join the
 * server's namespace. Exported are only what the server looks up with
 * dlsym: Pg_magic_func, _PG_init, the V1 functions and their pg_finfo_
 * records, and the worker's entry point. The Makefile defines PGDLLEXPORT
 * (empty in PostgreSQL 15 on Linux) as default visibility, which covers
 * Pg_magic_func and pg_finfo_*; PG_FUNCTION_INFO_V1 is redefined below as
 * PostgreSQL 16 defines it, so that the function itself is exported too
 * (every file with V1 functions includes this header, through its folder's
 * header); _PG_init and saas_worker_main are declared PGDLLEXPORT where they
 * are defined. test/suites/05_symbols.sh checks the result with nm.
 */
#undef PG_FUNCTION_INFO_V1
#define PG_FUNCTION_INFO_V1(funcname) \
extern PGDLLEXPORT Datum funcname(PG_FUNCTION_ARGS); \
extern PGDLLEXPORT const Pg_finfo_record * CppConcat(pg_finfo_,funcname)(void); \
const Pg_finfo_record * \
CppConcat(pg_finfo_,funcname) (void) \
{ \
	static const Pg_finfo_record my_finfo = { 1 }; \
	return &my_finfo; \
} \
extern int no_such_variable

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

/* Settings (the module entry, ../pg_saas.c). */
extern char *saas_jwt_issuer;
extern char *saas_jwt_audience;
extern int	saas_jwt_leeway_s;
extern int	saas_jwt_ttl_s;
extern int	saas_refresh_ttl_s;
extern int	saas_max_body_bytes;
extern char *saas_database;
extern int	saas_argon2_memory_kib;
extern int	saas_argon2_iterations;

#endif							/* PG_SAAS_H */
