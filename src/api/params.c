/*-------------------------------------------------------------------------
 *
 * params.c
 *	  Query parameters of list operations: lookup, the allowed set, limits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "pg_saas.h"
#include "api/api.h"

#define LIMIT_DEFAULT 50
#define LIMIT_MAX 200

/* saas_param: the value of a query parameter, or NULL when absent. */
const char *
saas_param(const SaasParams *p, const char *key)
{
	int			i;

	for (i = 0; p && i < p->n; i++)
		if (strcmp(p->keys[i], key) == 0)
			return p->values[i];
	return NULL;
}

/*
 * saas_params_from_jsonb: SQL callers pass {"limit":10,"status":"active"};
 * scalars become their text, so both entry points validate the same way.
 */
void
saas_params_from_jsonb(Jsonb *jb, SaasParams *p)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken r;
	char	   *key = NULL;

	p->n = 0;
	if (jb == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_VALIDATION),
				 errmsg("parameters must be a JSON object")));
	it = JsonbIteratorInit(&jb->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (r == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (r == WJB_VALUE)
		{
			char	   *val;

			if (p->n >= SAAS_MAX_PARAMS)
				saas_raise_field_error("params", "too many parameters");
			if (v.type == jbvString)
				val = pnstrdup(v.val.string.val, v.val.string.len);
			else if (v.type == jbvNumeric)
				val = DatumGetCString(DirectFunctionCall1(numeric_out,
														  NumericGetDatum(v.val.numeric)));
			else if (v.type == jbvBool)
				val = pstrdup(v.val.boolean ? "true" : "false");
			else if (v.type == jbvNull)
				continue;
			else
			{
				saas_raise_field_error(key, "must be a string or a number");
				val = NULL;		/* keep compiler quiet */
			}
			p->keys[p->n] = key;
			p->values[p->n] = val;
			p->n++;
		}
	}
}

/* saas_params_check: every parameter must be one of allowed (400 otherwise). */
void
saas_params_check(const SaasParams *p, const char *const *allowed)
{
	SaasErrors	e;
	int			i,
				j;

	saas_errors_init(&e);
	for (i = 0; p && i < p->n; i++)
	{
		bool		ok = false;

		for (j = 0; allowed[j]; j++)
			if (strcmp(p->keys[i], allowed[j]) == 0)
				ok = true;
		for (j = 0; j < i; j++)
			if (strcmp(p->keys[i], p->keys[j]) == 0)
			{
				saas_errors_add(&e, p->keys[i], "is given more than once");
				ok = true;
			}
		if (!ok)
			saas_errors_add(&e, p->keys[i], "is not a known parameter");
	}
	saas_errors_raise(&e);
}

/* saas_param_limit: ?limit, 1..200, default 50. */
int
saas_param_limit(const SaasParams *p)
{
	const char *s = saas_param(p, "limit");
	long		n;
	char	   *end;

	if (s == NULL)
		return LIMIT_DEFAULT;
	errno = 0;
	n = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || n < 1 || n > LIMIT_MAX)
		saas_raise_field_error("limit", "must be an integer from 1 to 200");
	return (int) n;
}
