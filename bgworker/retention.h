/*-------------------------------------------------------------------------
 *
 * retention.h
 *	  How long finished work is kept, and the worker's pruning step.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_RETENTION_H
#define SAAS_RETENTION_H

extern void saas_retention_define_gucs(void);
extern void wk_retention_step(void);

#endif
