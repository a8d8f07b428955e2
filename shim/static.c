/*-------------------------------------------------------------------------
 *
 * static.c
 *	  The files of the admin dashboard (/admin/) and of the API's
 *	  documentation page (/docs), served from a folder of the project.
 *
 * The folder is web/ in the source tree.  Without --static-dir the relay
 * looks for it as it looks for the OpenAPI document (openapi.c): next to
 * itself first (../web from the binary's folder), then where an install
 * puts it (SAAS_HTTP_DOCDIR/web).
 *
 * Paths are taken as sent, never decoded: after /admin/ or /docs/ only
 * letters, digits, '.', '_', '-' and '/' are accepted, no segment may start
 * with a dot (no "..", no hidden files), no segment may be empty, and the
 * name must end in a known extension, which also gives the Content-Type.
 * Anything else is 404.  The file found must resolve (symbolic links
 * followed) to a regular file inside the folder, and is opened without
 * following a link in its last step: a link pointing out of the folder is
 * 404 too.
 *
 * Answers carry the security headers of a page (a strict
 * Content-Security-Policy among them), an ETag made of the file's size and
 * modification time, and "Cache-Control: no-cache": the names are not
 * fingerprinted, so the browser revalidates each time and gets a 304 while
 * the file is unchanged.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "negotiate.h"
#include "static.h"
#include "paths.h"


/* No file of the dashboard comes near this. */
#define STATIC_MAX_BYTES	(4 * 1024 * 1024)
#define STATIC_MAX_REL		200

/* The policy of every page: nothing but this origin, no inline script. */
#define STATIC_CSP \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; frame-ancestors 'none'; " \
	"base-uri 'none'; form-action 'self'"

typedef struct StaticType
{
	const char *ext;
	const char *type;
} StaticType;

static const StaticType static_types[] = {
	{".html", "text/html; charset=utf-8"},
	{".js", "text/javascript; charset=utf-8"},
	{".css", "text/css; charset=utf-8"},
	{".json", "application/json"},
	{".svg", "image/svg+xml"},
	{".png", "image/png"},
	{".ico", "image/x-icon"},
	{".txt", "text/plain; charset=utf-8"},
	{".woff2", "font/woff2"},
	{NULL, NULL}
};

/*
 * saas_static_default_dir
 *		The folder when --static-dir is not given (malloc'd): web/ of the
 *		source tree when it exists, else the installed copy (paths.c).
 */
char *
saas_static_default_dir(void)
{
	return saas_path_default("web", true);
}

/*
 * saas_static_resolve
 *		The folder's canonical path (malloc'd), or NULL when it is not a
 *		folder: the pages then answer 404.
 */
char *
saas_static_resolve(const char *dir)
{
	char	   *real = dir ? realpath(dir, NULL) : NULL;
	struct stat st;

	if (real != NULL && (stat(real, &st) != 0 || !S_ISDIR(st.st_mode)))
	{
		free(real);
		real = NULL;
	}
	return real;
}

/*
 * static_prefix
 *		The section a path belongs to: "admin" or "docs", with *rest pointing
 *		after the prefix; NULL when the path is not a page's.
 */
static const char *
static_prefix(const char *path, size_t len, const char **rest)
{
	if (len >= 6 && strncmp(path, "/admin", 6) == 0 && (len == 6 || path[6] == '/'))
	{
		*rest = path + 6;
		return "admin";
	}
	if (len >= 5 && strncmp(path, "/docs", 5) == 0 && (len == 5 || path[5] == '/'))
	{
		*rest = path + 5;
		return "docs";
	}
	return NULL;
}

/*
 * saas_static_claims
 *		Whether a request target is the pages' (/admin, /admin/..., /docs,
 *		/docs/...), whatever follows: the relay answers those itself.
 */
bool
saas_static_claims(const char *target)
{
	const char *rest;

	return static_prefix(target, strcspn(target, "?#"), &rest) != NULL;
}

/*
 * static_type
 *		The Content-Type of a file name by its extension; NULL when unknown.
 */
static const char *
static_type(const char *rel)
{
	const char *dot = strrchr(rel, '.');
	const char *slash = strrchr(rel, '/');

	if (dot == NULL || (slash != NULL && dot < slash))
		return NULL;
	for (const StaticType *t = static_types; t->ext != NULL; t++)
		if (strcmp(dot, t->ext) == 0)
			return t->type;
	return NULL;
}

/*
 * static_rel_ok
 *		The path after the prefix ("/app.js", "/img/logo.svg") is plain:
 *		segments of [A-Za-z0-9._-], none empty, none starting with a dot.
 */
static bool
static_rel_ok(const char *rest, size_t len)
{
	bool		seg_start = false;

	if (len == 0 || len > STATIC_MAX_REL || rest[0] != '/')
		return false;
	for (size_t i = 0; i < len; i++)
	{
		char		c = rest[i];

		if (c == '/')
		{
			if (seg_start)
				return false;	/* empty segment: "//" */
			seg_start = true;
			continue;
		}
		if (seg_start && c == '.')
			return false;
		seg_start = false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return !seg_start;			/* not ending in "/" */
}

/*
 * static_headers
 *		The headers of every page answer, errors and redirects included.
 */
static void
static_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Content-Security-Policy", STATIC_CSP);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
	MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
	MHD_add_response_header(resp, "Permissions-Policy",
							"camera=(), microphone=(), geolocation=(), payment=()");
}

/*
 * static_read
 *		Open root/rel if it is a regular file inside root, and read it
 *		(malloc'd).  False for anything else, which the caller answers 404.
 */
static bool
static_read(const char *root, const char *rel, char **data, size_t *len, struct stat *st)
{
	char		path[PATH_MAX];
	char	   *real;
	size_t		rootlen = strlen(root);
	int			fd;
	char	   *buf;
	size_t		got = 0;

	if ((size_t) snprintf(path, sizeof(path), "%s/%s", root, rel) >= sizeof(path))
		return false;
	real = realpath(path, NULL);
	if (real == NULL)
		return false;
	if (strncmp(real, root, rootlen) != 0 || real[rootlen] != '/')
	{
		free(real);
		return false;			/* a link that leads out of the folder */
	}
	fd = open(real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	free(real);
	if (fd < 0)
		return false;
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || st->st_size > STATIC_MAX_BYTES)
	{
		close(fd);
		return false;
	}
	buf = malloc((size_t) st->st_size + 1);
	if (buf == NULL)
	{
		close(fd);
		return false;
	}
	while (got < (size_t) st->st_size)
	{
		ssize_t		n = read(fd, buf + got, (size_t) st->st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t) n;
	}
	close(fd);
	if (got != (size_t) st->st_size)
	{
		free(buf);
		return false;
	}
	*data = buf;
	*len = got;
	return true;
}

/*
 * saas_static_answer
 *		The answer to a page request (target claimed by saas_static_claims):
 *		the file, a 304, or a redirect of /admin to /admin/.  NULL with *err
 *		set for the relay's own error answers (404, 405); NULL with *err
 *		SAAS_ERR_INTERNAL when out of memory.
 */
struct MHD_Response *
saas_static_answer(const char *root, struct MHD_Connection *conn, const char *target,
				   const char *method, int *status, size_t *sent, SaasRelayError *err)
{
	size_t		plen = strcspn(target, "?#");
	const char *rest;
	const char *section = static_prefix(target, plen, &rest);
	size_t		rlen;
	char		rel[STATIC_MAX_REL + 16];
	const char *type;
	char	   *data = NULL;
	size_t		len = 0;
	struct stat st;
	char		etag[64];
	const char *inm;
	struct MHD_Response *resp;

	*err = SAAS_ERR_INTERNAL;
	*sent = 0;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
	{
		*err = SAAS_ERR_METHOD;
		return NULL;
	}
	if (section == NULL)
	{
		*err = SAAS_ERR_NOT_FOUND;
		return NULL;
	}
	rlen = plen - (size_t) (rest - target);
	if (strcmp(section, "admin") == 0 && rlen == 0)
	{
		/* the dashboard's relative names need the slash */
		resp = MHD_create_response_from_buffer(0, (void *) "", MHD_RESPMEM_PERSISTENT);
		if (resp == NULL)
			return NULL;
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, "/admin/");
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
		static_headers(resp);
		*status = 308;
		return resp;
	}
	if (rlen == 0 || (rlen == 1 && rest[0] == '/'))
		snprintf(rel, sizeof(rel), "%s/index.html", section);
	else if (static_rel_ok(rest, rlen))
		snprintf(rel, sizeof(rel), "%s%.*s", section, (int) rlen, rest);
	else
	{
		*err = SAAS_ERR_NOT_FOUND;
		return NULL;
	}
	type = static_type(rel);
	if (root == NULL || type == NULL || !static_read(root, rel, &data, &len, &st))
	{
		*err = SAAS_ERR_NOT_FOUND;
		return NULL;
	}
	snprintf(etag, sizeof(etag), "\"%llx-%llx\"", (unsigned long long) st.st_size,
			 (unsigned long long) st.st_mtim.tv_sec * 1000000000ULL +
			 (unsigned long long) st.st_mtim.tv_nsec);
	inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (inm != NULL && saas_etag_matches(inm, etag))
	{
		free(data);
		resp = MHD_create_response_from_buffer(0, (void *) "", MHD_RESPMEM_PERSISTENT);
		*status = 304;
	}
	else
	{
		resp = saas_body_response(conn, data, len, sent);
		free(data);
		*status = 200;
		if (resp != NULL)
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	}
	if (resp == NULL)
		return NULL;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	static_headers(resp);
	return resp;
}
