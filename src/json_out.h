/*-------------------------------------------------------------------------
 *
 * json_out.h
 *	  Writing JSON answers straight from SPI tuples into a StringInfo.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_JSON_OUT_H
#define SAAS_JSON_OUT_H

#include "access/htup.h"
#include "access/tupdesc.h"
#include "lib/stringinfo.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

extern void saas_json_key(StringInfo out, bool *first, const char *key);
extern void saas_json_string(StringInfo out, const char *s);
extern void saas_json_uuid(StringInfo out, const pg_uuid_t *u);
extern void saas_json_timestamptz(StringInfo out, TimestampTz ts);

/*
 * saas_json_column: append column attno of tup as a JSON value, by its type
 * (text, uuid, int, bool, timestamptz, jsonb, text[]); NULL becomes null.
 */
extern void saas_json_column(StringInfo out, HeapTuple tup, TupleDesc desc, int attno);

/* saas_json_row: {"name":value,...} of every column, names as in desc. */
extern void saas_json_row(StringInfo out, HeapTuple tup, TupleDesc desc);
extern void saas_json_rows(StringInfo out, HeapTuple *tups, int n, TupleDesc desc, bool as_list);
extern void saas_json_datum(StringInfo out, Datum d, bool isnull, Oid typ);

/* Cursor tokens for pagination: opaque base64url of the last key. */
extern char *saas_cursor_encode(const char *key);
extern char *saas_cursor_decode(const char *cursor);	/* NULL if invalid */

#endif
