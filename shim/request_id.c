/*-------------------------------------------------------------------------
 *
 * request_id.c
 *	  The X-Request-Id of a request: the client's when sane, else a new one.
 *
 * A client's id is kept only when it is 1..128 characters of
 * [A-Za-z0-9._:-]: such an id can go into logs, JSON and response headers
 * without escaping, so no client can smuggle anything through it.  A
 * generated id is 128 random bits as 32 lowercase hex characters.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common.h"
#include "request_id.h"

/*
 * saas_request_id_is_sane
 *		True when id may be reused as the request id.
 */
bool
saas_request_id_is_sane(const char *id)
{
	size_t		n;

	if (id == NULL)
		return false;
	for (n = 0; id[n] != '\0'; n++)
	{
		char		c = id[n];

		if (n >= SAAS_REQUEST_ID_MAX)
			return false;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
			  c == '-'))
			return false;
	}
	return n > 0;
}

/*
 * rid_random
 *		Fill buf from the kernel's CSPRNG.  getrandom() cannot run short for
 *		16 bytes once the pool is initialised; /dev/urandom is the fallback
 *		for kernels without it.  Returns false only if both fail.
 */
static bool
rid_random(unsigned char *buf, size_t n)
{
	ssize_t		got;
	int			fd;

	do
		got = getrandom(buf, n, 0);
	while (got < 0 && errno == EINTR);
	if (got == (ssize_t) n)
		return true;

	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	got = read(fd, buf, n);
	close(fd);
	return got == (ssize_t) n;
}

/*
 * saas_request_id_generate
 *		A new id: 32 hex characters.  If no randomness is to be had (should
 *		not happen), a clock-and-counter id still keeps ids unique within
 *		this process, which is what logs need.
 */
void
saas_request_id_generate(char out[SAAS_REQUEST_ID_MAX + 1])
{
	static const char hex[] = "0123456789abcdef";
	static atomic_uint_fast64_t counter;
	unsigned char raw[16];
	int			i;

	if (!rid_random(raw, sizeof(raw)))
	{
		uint64_t	a = (uint64_t) saas_now_us();
		uint64_t	b = atomic_fetch_add(&counter, 1);

		memcpy(raw, &a, 8);
		memcpy(raw + 8, &b, 8);
	}
	for (i = 0; i < 16; i++)
	{
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 0x0f];
	}
	out[32] = '\0';
}

/*
 * saas_request_id_choose
 *		The id of this request: client_id when sane, else a generated one.
 */
void
saas_request_id_choose(const char *client_id, char out[SAAS_REQUEST_ID_MAX + 1])
{
	if (saas_request_id_is_sane(client_id))
	{
		/* sane implies at most SAAS_REQUEST_ID_MAX characters */
		strcpy(out, client_id);
		return;
	}
	saas_request_id_generate(out);
}
