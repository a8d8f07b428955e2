/*-------------------------------------------------------------------------
 *
 * ops_common.c
 *	  Helpers shared by the operations: rows and pages as JSON, role checks,
 *	  and the answers that must not leak (404 for what is not visible).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "common/common.h"
#include "auth/auth.h"
#include "api/api.h"

/*
 * saas_row_json: row rowno of SPI_tuptable as a JSON object; returns its
 * "version" column (the ETag), or 0 when there is none.
 */
int64
saas_row_json(StringInfo out, int rowno)
{
	HeapTuple	tup = SPI_tuptable->vals[rowno];
	TupleDesc	desc = SPI_tuptable->tupdesc;
	int			vcol = SPI_fnumber(desc, "version");
	bool		isnull;
	Datum		d;

	saas_json_row(out, tup, desc);
	if (vcol <= 0)
		return 0;
	d = SPI_getbinval(tup, desc, vcol, &isnull);
	return isnull ? 0 : DatumGetInt64(d);
}

/*
 * saas_page_json: {"data":[...],"next_cursor":...} from SPI_tuptable, which
 * holds up to limit+1 rows: the extra row only says there is a next page.
 * The cursor encodes sort_col of the last row returned.
 */
void
saas_page_json(StringInfo out, int limit, const char *sort_col)
{
	uint64		n = SPI_processed;
	bool		more = n > (uint64) limit;

	if (more)
		n = limit;
	appendStringInfoString(out, "{\"data\":[");
	if (n > 0)
		saas_json_rows(out, SPI_tuptable->vals, (int) n, SPI_tuptable->tupdesc, true);
	appendStringInfoString(out, "],\"next_cursor\":");
	if (more && n > 0)
	{
		char	   *last = SPI_getvalue(SPI_tuptable->vals[n - 1], SPI_tuptable->tupdesc,
										SPI_fnumber(SPI_tuptable->tupdesc, sort_col));

		saas_json_string(out, saas_cursor_encode(last));
	}
	else
		appendStringInfoString(out, "null");
	appendStringInfoChar(out, '}');
}

/*
 * saas_require_role: 403 unless the context's role is one of roles, and 403
 * for an API key: a key acts as an admin only where an operation has checked
 * its scopes (saas_require_role_scoped), so that an operation written without
 * keys in mind refuses them on every path, SQL included.
 */
void
saas_require_role(const SaasContext *ctx, const char *const *roles, const char *what)
{
	if (ctx->api_key)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_FORBIDDEN),
				 errmsg("an API key cannot %s", what)));
	saas_require_role_scoped(ctx, roles, what);
}

/*
 * saas_require_role_scoped: 403 unless the context's role is one of roles;
 * API keys pass on their role. Only for operations that checked the key's
 * scopes first (saas_context_require_scope).
 */
void
saas_require_role_scoped(const SaasContext *ctx, const char *const *roles, const char *what)
{
	int			i;

	for (i = 0; roles[i]; i++)
		if (strcmp(ctx->role, roles[i]) == 0)
			return;
	ereport(ERROR,
			(errcode(ERRCODE_SAAS_FORBIDDEN),
			 errmsg("role \"%s\" may not %s", ctx->role, what)));
}

/* saas_not_found: 404; the same answer whether the row is absent or another tenant's. */
void
saas_not_found(const char *entity)
{
	ereport(ERROR,
			(errcode(ERRCODE_SAAS_NOT_FOUND),
			 errmsg("%s not found", entity)));
}

/*
 * saas_uuid_datum: a uuid as a Datum of its own palloc'd copy (SPI arguments).
 */
Datum
saas_uuid_datum(const pg_uuid_t *u)
{
	pg_uuid_t  *c = palloc(sizeof(pg_uuid_t));

	*c = *u;
	return UUIDPGetDatum(c);
}

/* saas_text_datum_or_null: a text Datum, setting *nullflag to 'n' for NULL. */
Datum
saas_text_datum_or_null(const char *s, char *nullflag)
{
	if (s == NULL)
	{
		*nullflag = 'n';
		return (Datum) 0;
	}
	*nullflag = ' ';
	return CStringGetTextDatum(s);
}
