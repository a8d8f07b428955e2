/*-------------------------------------------------------------------------
 *
 * citus_env.h
 *	  What pg_saas does differently where Citus is loaded (docs/scale-out.md).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_CITUS_ENV_H
#define SAAS_CITUS_ENV_H

extern bool saas_citus_loaded(void);
extern void saas_citus_propagate(const char *name);
extern void saas_citus_nested_reads(void);

#endif
