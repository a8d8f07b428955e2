/*-------------------------------------------------------------------------
 *
 * pg_stub.h
 *	  What the fuzz targets of the extension's parsers use of pg_stub.c.
 *
 * PG_FUZZ_TRY(ok) runs the statement that follows with ereport(ERROR)
 * caught: ok is true when it returned, false when it raised (the SQLSTATE
 * is then in pg_fuzz_errcode).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_STUB_H
#define PG_STUB_H

#include <setjmp.h>

extern sigjmp_buf *pg_fuzz_jump;
extern int	pg_fuzz_errcode;
extern void pg_fuzz_reset(void);

#endif							/* PG_STUB_H */
