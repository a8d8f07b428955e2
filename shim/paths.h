/*-------------------------------------------------------------------------
 *
 * paths.h
 *	  Where the relay finds the files it serves (paths.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_HTTP_PATHS_H
#define SAAS_HTTP_PATHS_H

#include <stdbool.h>

extern char *saas_path_default(const char *rel, bool want_dir);

#endif							/* SAAS_HTTP_PATHS_H */
