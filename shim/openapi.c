/*-------------------------------------------------------------------------
 *
 * openapi.c
 *	  Finding and loading the OpenAPI document served at /openapi.json.
 *
 * The document is docs/openapi.json in the source tree.  Without
 * --openapi, the relay looks for it next to itself first (the binary is
 * shim/saas-http, so ../docs/openapi.json from the binary's folder), then
 * where an install puts it (SAAS_HTTP_DOCDIR, set by shim/shim.mk).  It is
 * read once at startup: the document changes with a release, not while the
 * relay runs.
 *
 *-------------------------------------------------------------------------
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "openapi.h"

#ifndef SAAS_HTTP_DOCDIR
#define SAAS_HTTP_DOCDIR "/usr/share/doc/pg_saas"
#endif

/* A document larger than this is not an API description. */
#define OPENAPI_MAX_BYTES (8 * 1024 * 1024)

/*
 * saas_openapi_default_path
 *		The document's path when --openapi is not given (malloc'd).  Returns
 *		the install path when the source-tree one does not exist, so that an
 *		error message names a sensible place.
 */
char *
saas_openapi_default_path(void)
{
	char		exe[PATH_MAX];
	char		path[PATH_MAX + 64];
	ssize_t		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	struct stat st;

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
			snprintf(path, sizeof(path), "%s/docs/openapi.json", exe);
			if (stat(path, &st) == 0)
				return strdup(path);
		}
	}
	return strdup(SAAS_HTTP_DOCDIR "/openapi.json");
}

/*
 * saas_openapi_load
 *		Read the whole file into a malloc'd buffer.  False when it cannot be
 *		read or is implausibly large.
 */
bool
saas_openapi_load(const char *path, char **data, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf = NULL;
	long		size;

	*data = NULL;
	*len = 0;
	if (f == NULL)
		return false;
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
		size > OPENAPI_MAX_BYTES || fseek(f, 0, SEEK_SET) != 0 ||
		(buf = malloc((size_t) size + 1)) == NULL ||
		fread(buf, 1, (size_t) size, f) != (size_t) size)
	{
		free(buf);
		fclose(f);
		return false;
	}
	fclose(f);
	buf[size] = '\0';
	*data = buf;
	*len = (size_t) size;
	return true;
}
