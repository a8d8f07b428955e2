/*-------------------------------------------------------------------------
 *
 * request_id.c
 *	  The X-Request-Id of a request: the client's when sane, else a new one.
 *
 * A client's id is kept only when it is 1..128 characters of
 * [A-Za-z0-9._:-]: such an id can go into logs, JSON and response headers
 * without escaping, so no client can smuggle anything through it.  A
 * generated id is a UUIDv7 (RFC 9562), like the ids the extension makes:
 * time-ordered, so ids in logs sort by arrival, with 74 random bits.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
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
 *		A new id: a UUIDv7 in its 36-character form.  If no randomness is to
 *		be had (should not happen), a counter fills the random bits: ids stay
 *		unique within this process, which is what logs need.
 */
void
saas_request_id_generate(char out[SAAS_REQUEST_ID_MAX + 1])
{
	static const char hex[] = "0123456789abcdef";
	static atomic_uint_fast64_t counter;
	struct timespec now;
	unsigned char raw[16];
	uint64_t	ms;
	int			i,
				o = 0;

	if (!rid_random(raw, sizeof(raw)))
	{
		uint64_t	n = atomic_fetch_add(&counter, 1);

		memset(raw, 0, sizeof(raw));
		memcpy(raw + 8, &n, sizeof(n));
	}
	clock_gettime(CLOCK_REALTIME, &now);
	ms = (uint64_t) now.tv_sec * 1000 + (uint64_t) now.tv_nsec / 1000000;
	for (i = 0; i < 6; i++)
		raw[i] = (unsigned char) (ms >> (40 - 8 * i));	/* 48-bit big-endian ms */
	raw[6] = (unsigned char) (0x70 | (raw[6] & 0x0f));	/* version 7 */
	raw[8] = (unsigned char) (0x80 | (raw[8] & 0x3f));	/* variant 10 */
	for (i = 0; i < 16; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[raw[i] >> 4];
		out[o++] = hex[raw[i] & 0x0f];
	}
	out[o] = '\0';
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
