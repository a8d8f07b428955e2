/*-------------------------------------------------------------------------
 *
 * sql_invitations.c
 *	  Invitations and password reset as plain SQL functions
 *	  (saas.create_invitation, saas.accept_invitation, ...), the same code as
 *	  the routes of routes_invitations.c, under the same pinned settings.
 *	  Errors are raised (SQLSTATE class SA), as in sql_api.c.
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

PG_FUNCTION_INFO_V1(saas_sql_create_invitation);
PG_FUNCTION_INFO_V1(saas_sql_list_invitations);
PG_FUNCTION_INFO_V1(saas_sql_revoke_invitation);
PG_FUNCTION_INFO_V1(saas_sql_accept_invitation);
PG_FUNCTION_INFO_V1(saas_sql_request_password_reset);
PG_FUNCTION_INFO_V1(saas_sql_confirm_password_reset);

/* sqli_body: a body argument, which must be given. */
static Jsonb *
sqli_body(FunctionCallInfo fcinfo)
{
	Jsonb	   *b = saas_sql_arg_jsonb(fcinfo, 0);

	if (b == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_VALIDATION),
				 errmsg("body must not be null")));
	return b;
}

/* SQL: saas.create_invitation(body jsonb) RETURNS jsonb */
Datum
saas_sql_create_invitation(PG_FUNCTION_ARGS)
{
	SAAS_SQL_OP(saas_op_create_invitation(sqli_body(fcinfo), &out));
}

/* SQL: saas.list_invitations(params jsonb DEFAULT '{}') RETURNS jsonb */
Datum
saas_sql_list_invitations(PG_FUNCTION_ARGS)
{
	SaasParams	p;

	saas_params_from_jsonb(saas_sql_arg_jsonb(fcinfo, 0), &p);
	SAAS_SQL_OP(saas_op_list_invitations(&p, &out));
}

/* SQL: saas.revoke_invitation(id uuid) RETURNS void */
Datum
saas_sql_revoke_invitation(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *id = saas_sql_arg_id(fcinfo, 0);
	int			nest = saas_env_push();

	saas_op_revoke_invitation(id);
	saas_env_pop(nest);
	PG_RETURN_VOID();
}

/* SQL: saas.accept_invitation(body jsonb) RETURNS jsonb */
Datum
saas_sql_accept_invitation(PG_FUNCTION_ARGS)
{
	SAAS_SQL_OP(saas_op_accept_invitation(sqli_body(fcinfo), &out));
}

/* SQL: saas.request_password_reset(body jsonb) RETURNS jsonb */
Datum
saas_sql_request_password_reset(PG_FUNCTION_ARGS)
{
	SAAS_SQL_OP(saas_op_request_password_reset(sqli_body(fcinfo), &out));
}

/* SQL: saas.confirm_password_reset(body jsonb) RETURNS void */
Datum
saas_sql_confirm_password_reset(PG_FUNCTION_ARGS)
{
	int			nest = saas_env_push();

	saas_op_confirm_password_reset(sqli_body(fcinfo));
	saas_env_pop(nest);
	PG_RETURN_VOID();
}
