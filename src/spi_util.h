/*-------------------------------------------------------------------------
 *
 * spi_util.h
 *	  Saved SPI plans and the safe execution environment of operations.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_SPI_UTIL_H
#define SAAS_SPI_UTIL_H

#include "executor/spi.h"

/* A statement prepared once per backend and kept (SPI_keepplan). */
typedef struct SaasPlan
{
	const char *sql;
	int			nargs;
	Oid			types[12];
	SPIPlanPtr	plan;
	bool		custom_plan;	/* re-plan per use (data-dependent statements) */
} SaasPlan;

extern int	saas_exec(SaasPlan *p, Datum *values, const char *nulls,
					  bool read_only, long count);
extern int	saas_env_push(void);
extern void saas_env_pop(int nestlevel);
extern void saas_spi_connect(void);

#endif
