/*-------------------------------------------------------------------------
 *
 * uuid.c
 *	  Time-ordered UUIDv7 generation (RFC 9562) and text conversion.
 *
 * Ids sort by creation time, which keeps primary-key indexes append-mostly
 * and makes id order a stable pagination order.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/time.h>

#include "fmgr.h"
#include "utils/uuid.h"

#include "pg_saas.h"
#include "common/common.h"

PG_FUNCTION_INFO_V1(saas_uuid_generate_v7);

/*
 * Last timestamp and counter, so that ids made in the same millisecond by
 * this backend still increase (RFC 9562 method 1, 12-bit counter in rand_a).
 */
static uint64 last_ms = 0;
static uint16 seq_counter = 0;

/* saas_uuid_v7: fill *out with a new UUIDv7. */
void
saas_uuid_v7(pg_uuid_t *out)
{
	struct timeval tv;
	uint64		ms;
	unsigned char *b = out->data;

	gettimeofday(&tv, NULL);
	ms = (uint64) tv.tv_sec * 1000 + tv.tv_usec / 1000;

	saas_random_bytes(b, UUID_LEN);
	if (ms <= last_ms)
	{
		/* Same (or earlier: clock step) millisecond: bump the counter. */
		seq_counter++;
		if (seq_counter > 0x0FFF)
		{
			last_ms++;
			seq_counter = 0;
		}
		ms = last_ms;
	}
	else
	{
		last_ms = ms;
		seq_counter = ((uint16) b[6] << 8 | b[7]) & 0x07FF;	/* random start, room to grow */
	}

	b[0] = (ms >> 40) & 0xFF;
	b[1] = (ms >> 32) & 0xFF;
	b[2] = (ms >> 24) & 0xFF;
	b[3] = (ms >> 16) & 0xFF;
	b[4] = (ms >> 8) & 0xFF;
	b[5] = ms & 0xFF;
	b[6] = 0x70 | ((seq_counter >> 8) & 0x0F);
	b[7] = seq_counter & 0xFF;
	b[8] = (b[8] & 0x3F) | 0x80;	/* RFC 4122 variant */
}

/* saas_uuid_to_cstr: canonical lower-case text form into buf[37]. */
void
saas_uuid_to_cstr(const pg_uuid_t *u, char *buf)
{
	static const char hex[] = "0123456789abcdef";
	int			i;
	char	   *p = buf;

	for (i = 0; i < UUID_LEN; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[u->data[i] >> 4];
		*p++ = hex[u->data[i] & 0x0F];
	}
	*p = '\0';
}

/*
 * saas_uuid_from_cstr: parse the canonical 36-character form only; false
 * (not an error) for anything else, so callers choose 400 or 404.
 */
bool
saas_uuid_from_cstr(const char *s, pg_uuid_t *out)
{
	int			i,
				j = 0;

	if (s == NULL || strlen(s) != 36)
		return false;
	for (i = 0; i < 36; i++)
	{
		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (s[i] != '-')
				return false;
			continue;
		}
		if (saas_hex_value(s[i]) < 0 || saas_hex_value(s[i + 1]) < 0)
			return false;
		out->data[j++] = (saas_hex_value(s[i]) << 4) | saas_hex_value(s[i + 1]);
		i++;
	}
	return j == UUID_LEN;
}

/* SQL: saas.uuid_generate_v7() RETURNS uuid */
Datum
saas_uuid_generate_v7(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

	saas_uuid_v7(u);
	PG_RETURN_UUID_P(u);
}
