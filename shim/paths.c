/*-------------------------------------------------------------------------
 *
 * paths.c
 *	  Where the relay finds the files it serves when no flag names them
 *	  (the OpenAPI document, the pages): in the source tree next to itself
 *	  first (the binary is shim/saas-http, so <rel> from the binary's
 *	  folder's parent), then where an install puts them (SAAS_HTTP_DOCDIR,
 *	  set by shim/shim.mk).
 *
 *-------------------------------------------------------------------------
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "paths.h"

#ifndef SAAS_HTTP_DOCDIR
#define SAAS_HTTP_DOCDIR "/usr/share/doc/pg_saas"
#endif

/*
 * saas_path_default
 *		rel ("docs/openapi.json", "web") in the source tree when it exists
 *		there (a folder when want_dir), else under the install folder
 *		(malloc'd). The install path is returned even when it does not
 *		exist, so that an error message names a sensible place.
 */
char *
saas_path_default(const char *rel, bool want_dir)
{
	char		exe[PATH_MAX];
	char		path[PATH_MAX + 256];
	ssize_t		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	struct stat st;
	const char *base = strrchr(rel, '/');

	if (n > 0)
	{
		char	   *slash;
		int			up;

		exe[n] = '\0';
		/* strip the file name, then its folder: .../shim/saas-http -> ... */
		for (up = 0; up < 2; up++)
		{
			slash = strrchr(exe, '/');
			if (slash == NULL)
				break;
			*slash = '\0';
		}
		if (up == 2)
		{
			snprintf(path, sizeof(path), "%s/%s", exe, rel);
			if (stat(path, &st) == 0 && (!want_dir || S_ISDIR(st.st_mode)))
				return strdup(path);
		}
	}
	/* installed flat: the last part of rel only */
	snprintf(path, sizeof(path), "%s/%s", SAAS_HTTP_DOCDIR, base ? base + 1 : rel);
	return strdup(path);
}
