/*-------------------------------------------------------------------------
 *
 * json_in.c
 *	  Reading JSON: text already checked by saas_json_valid_strict
 *	  (json_strict.c) as jsonb, and key lookups in jsonb objects and in the
 *	  request headers object.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "common/common.h"

/* saas_jsonb_from_text: jsonb of text already checked by saas_json_valid_strict. */
Jsonb *
saas_jsonb_from_text(const char *json, int len)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
											  CStringGetDatum(pnstrdup(json, len))));
}

/* saas_jsonb_get: the value of a top-level key, or NULL. */
JsonbValue *
saas_jsonb_get(Jsonb *jb, const char *key)
{
	return saas_jsonb_container_get(&jb->root, key);
}

/* saas_jsonb_container_get: the value of a key of an object container, or NULL. */
JsonbValue *
saas_jsonb_container_get(JsonbContainer *c, const char *key)
{
	JsonbValue	k;

	if (!JsonContainerIsObject(c))
		return NULL;
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(c, JB_FOBJECT, &k);
}

/* saas_header_get: a header by case-insensitive name from a JSON object, or NULL. */
char *
saas_header_get(Jsonb *headers, const char *name)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken r;
	bool		match = false;
	int			nlen = strlen(name);

	if (headers == NULL || !JB_ROOT_IS_OBJECT(headers) || JB_ROOT_IS_SCALAR(headers))
		return NULL;
	it = JsonbIteratorInit(&headers->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (r == WJB_KEY)
			match = (v.val.string.len == nlen &&
					 pg_strncasecmp(v.val.string.val, name, nlen) == 0);
		else if (r == WJB_VALUE && match)
			return v.type == jbvString ? pnstrdup(v.val.string.val, v.val.string.len) : NULL;
	}
	return NULL;
}
