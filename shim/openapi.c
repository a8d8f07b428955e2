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
#include "paths.h"

/* A document larger than this is not an API description. */
#define OPENAPI_MAX_BYTES (8 * 1024 * 1024)

/*
 * saas_openapi_default_path
 *		The document's path when --openapi is not given (malloc'd), see
 *		paths.c.
 */
char *
saas_openapi_default_path(void)
{
	return saas_path_default("docs/openapi.json", false);
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
