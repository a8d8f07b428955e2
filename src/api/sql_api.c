/*-------------------------------------------------------------------------
 *
 * sql_api.c
 *	  The API's operations as plain SQL functions (saas.register,
 *	  saas.create_user, ...). They run the same code as saas.http, under the
 *	  same pinned search_path, and return the same JSON as jsonb.
 *
 * Unlike saas.http, errors are raised, not answered: SQL callers get the
 * SQLSTATE (class SA carries the HTTP status) and the field details in the
 * DETAIL of validation errors.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "pg_saas.h"
#include "common/common.h"
#include "api/api.h"

PG_FUNCTION_INFO_V1(saas_sql_register);
PG_FUNCTION_INFO_V1(saas_sql_login);
PG_FUNCTION_INFO_V1(saas_sql_list_organizations);
PG_FUNCTION_INFO_V1(saas_sql_create_organization);
PG_FUNCTION_INFO_V1(saas_sql_get_organization);
PG_FUNCTION_INFO_V1(saas_sql_update_organization);
PG_FUNCTION_INFO_V1(saas_sql_delete_organization);
PG_FUNCTION_INFO_V1(saas_sql_list_users);
PG_FUNCTION_INFO_V1(saas_sql_create_user);
PG_FUNCTION_INFO_V1(saas_sql_get_user);
PG_FUNCTION_INFO_V1(saas_sql_update_user);
PG_FUNCTION_INFO_V1(saas_sql_delete_user);
PG_FUNCTION_INFO_V1(saas_sql_logout);
PG_FUNCTION_INFO_V1(saas_sql_logout_all);

/* saas_sql_result: an operation's JSON text as the jsonb a SQL wrapper returns. */
Datum
saas_sql_result(StringInfo out)
{
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(out->data));
}

/* saas_sql_arg_jsonb: argument n of a SQL wrapper, or NULL for SQL NULL. */
Jsonb *
saas_sql_arg_jsonb(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : PG_GETARG_JSONB_P(n);
}

/* sql_params: query parameters given to a SQL wrapper as a jsonb object. */
static void
sql_params(FunctionCallInfo fcinfo, int n, SaasParams *p)
{
	saas_params_from_jsonb(saas_sql_arg_jsonb(fcinfo, n), p);
}

/* saas_sql_arg_id: argument n of a SQL wrapper, an id that must be given (400 for NULL). */
pg_uuid_t *
saas_sql_arg_id(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_VALIDATION),
				 errmsg("id must not be null")));
	return PG_GETARG_UUID_P(n);
}

/* sql_arg_version: the optional expected version (If-Match); -1 when absent. */
static int64
sql_arg_version(FunctionCallInfo fcinfo, int n)
{
	return (PG_NARGS() > n && !PG_ARGISNULL(n)) ? PG_GETARG_INT64(n) : -1;
}

/* SQL: saas.register(body jsonb) RETURNS jsonb */
Datum
saas_sql_register(PG_FUNCTION_ARGS)
{
	SAAS_SQL_OP(saas_op_register(saas_sql_arg_jsonb(fcinfo, 0), &out));
}

/* SQL: saas.login(body jsonb) RETURNS jsonb */
Datum
saas_sql_login(PG_FUNCTION_ARGS)
{
	SAAS_SQL_OP(saas_op_login(saas_sql_arg_jsonb(fcinfo, 0), &out));
}

/* SQL: saas.list_organizations(params jsonb DEFAULT '{}') RETURNS jsonb */
Datum
saas_sql_list_organizations(PG_FUNCTION_ARGS)
{
	SaasParams	p;

	sql_params(fcinfo, 0, &p);
	SAAS_SQL_OP(saas_op_list_orgs(&p, &out));
}

/* SQL: saas.create_organization(body jsonb) RETURNS jsonb */
Datum
saas_sql_create_organization(PG_FUNCTION_ARGS)
{
	SAAS_SQL_OP(saas_op_create_org(saas_sql_arg_jsonb(fcinfo, 0), &out));
}

/* SQL: saas.get_organization(id uuid) RETURNS jsonb */
Datum
saas_sql_get_organization(PG_FUNCTION_ARGS)
{
	SAAS_SQL_OP((void) saas_op_get_org(saas_sql_arg_id(fcinfo, 0), &out));
}

/*
 * SQL: saas.update_organization(id, changes, if_version DEFAULT NULL)
 * RETURNS jsonb
 */
Datum
saas_sql_update_organization(PG_FUNCTION_ARGS)
{
	SAAS_SQL_OP((void) saas_op_update_org(saas_sql_arg_id(fcinfo, 0), saas_sql_arg_jsonb(fcinfo, 1),
									 sql_arg_version(fcinfo, 2), &out));
}

/* SQL: saas.delete_organization(id uuid) RETURNS void */
Datum
saas_sql_delete_organization(PG_FUNCTION_ARGS)
{
	int			nest = saas_env_push();

	saas_op_delete_org(saas_sql_arg_id(fcinfo, 0));
	saas_env_pop(nest);
	PG_RETURN_VOID();
}

/* SQL: saas.list_users(params jsonb DEFAULT '{}') RETURNS jsonb */
Datum
saas_sql_list_users(PG_FUNCTION_ARGS)
{
	SaasParams	p;

	sql_params(fcinfo, 0, &p);
	SAAS_SQL_OP(saas_op_list_users(&p, &out));
}

/* SQL: saas.create_user(body jsonb) RETURNS jsonb */
Datum
saas_sql_create_user(PG_FUNCTION_ARGS)
{
	SAAS_SQL_OP((void) saas_op_create_user(saas_sql_arg_jsonb(fcinfo, 0), &out));
}

/* SQL: saas.get_user(id uuid) RETURNS jsonb */
Datum
saas_sql_get_user(PG_FUNCTION_ARGS)
{
	SAAS_SQL_OP((void) saas_op_get_user(saas_sql_arg_id(fcinfo, 0), &out));
}

/* SQL: saas.update_user(id, changes, if_version DEFAULT NULL) RETURNS jsonb */
Datum
saas_sql_update_user(PG_FUNCTION_ARGS)
{
	SAAS_SQL_OP((void) saas_op_update_user(saas_sql_arg_id(fcinfo, 0), saas_sql_arg_jsonb(fcinfo, 1),
									  sql_arg_version(fcinfo, 2), &out));
}

/* SQL: saas.delete_user(id uuid) RETURNS void */
Datum
saas_sql_delete_user(PG_FUNCTION_ARGS)
{
	int			nest = saas_env_push();

	saas_op_delete_user(saas_sql_arg_id(fcinfo, 0));
	saas_env_pop(nest);
	PG_RETURN_VOID();
}

/* SQL: saas.logout() RETURNS void, ends the current token's session. */
Datum
saas_sql_logout(PG_FUNCTION_ARGS)
{
	int			nest = saas_env_push();

	saas_op_logout();
	saas_env_pop(nest);
	PG_RETURN_VOID();
}

/* SQL: saas.logout_all() RETURNS void, ends every session of the user. */
Datum
saas_sql_logout_all(PG_FUNCTION_ARGS)
{
	int			nest = saas_env_push();

	saas_op_logout_all();
	saas_env_pop(nest);
	PG_RETURN_VOID();
}
