/*-------------------------------------------------------------------------
 *
 * json.c
 *	  Parsing JSON in saas-sim: jansson with the simulator's rules on top.
 *
 * jansson does the parsing (strict RFC 8259, valid UTF-8, no \u0000) and,
 * with JSON_REJECT_DUPLICATES, refuses duplicate keys.  Its own nesting
 * limit is a compile-time 2048 (JSON_PARSER_MAX_DEPTH in jansson_config.h);
 * the simulator keeps its documented bound of SIM_JSON_MAX_DEPTH by walking
 * the tree once after the parse, which the 2048 limit keeps cheap in stack.
 * The request body is capped before it gets here.  The writer and the
 * string buffer are in json_write.c.
 *
 *-------------------------------------------------------------------------
 */
#include "json.h"

#include <stdio.h>
#include <string.h>

/*
 * json_depth_ok
 *		v nests at most max levels, every value counting as one (v is level
 *		1, the elements of an array at level 1 are level 2, and so on).
 */
static bool
json_depth_ok(json_t *v, int max)
{
	if (max < 1)
		return false;
	if (json_is_array(v))
	{
		for (size_t i = 0; i < json_array_size(v); i++)
			if (!json_depth_ok(json_array_get(v, i), max - 1))
				return false;
	}
	else if (json_is_object(v))
	{
		const char *key;
		json_t	   *child;

		json_object_foreach(v, key, child)
		{
			if (!json_depth_ok(child, max - 1))
				return false;
		}
	}
	return true;
}

/*
 * sim_json_parse
 *		Parse len bytes of text; NULL with a message in err when it is not
 *		exactly one valid JSON value (surrounding whitespace allowed).
 *
 * An integer too large for int64 is not an error: as JSON allows, the
 * document is then read with every number as a double (jansson refuses such
 * integers otherwise), and the field checks judge the value.
 */
json_t *
sim_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	const size_t flags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY;
	json_error_t jerr;
	json_t	   *v;

	if (err && errlen)
		err[0] = '\0';
	if (text == NULL)
		text = "", len = 0;
	v = json_loadb(text, len, flags, &jerr);
	if (v == NULL && json_error_code(&jerr) == json_error_numeric_overflow &&
		strstr(jerr.text, "integer") != NULL)
		v = json_loadb(text, len, flags | JSON_DECODE_INT_AS_REAL, &jerr);
	if (v == NULL)
	{
		if (err && errlen)
			snprintf(err, errlen, "%s at byte %d", jerr.text, jerr.position);
		return NULL;
	}
	if (!json_depth_ok(v, SIM_JSON_MAX_DEPTH))
	{
		if (err && errlen)
			snprintf(err, errlen, "nesting deeper than %d levels", SIM_JSON_MAX_DEPTH);
		json_decref(v);
		return NULL;
	}
	return v;
}

/* sim_json_get_str: the string value of key, or NULL if absent or not a string */
const char *
sim_json_get_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* sim_json_type_name: for error messages */
const char *
sim_json_type_name(const json_t *v)
{
	switch (json_typeof(v))
	{
		case JSON_NULL:
			return "null";
		case JSON_TRUE:
		case JSON_FALSE:
			return "boolean";
		case JSON_INTEGER:
		case JSON_REAL:
			return "number";
		case JSON_STRING:
			return "string";
		case JSON_ARRAY:
			return "array";
		case JSON_OBJECT:
			return "object";
	}
	return "?";
}
