/*-------------------------------------------------------------------------
 *
 * refresh_token.c
 *	  The refresh token's wire form and its stored hash.
 *
 * A refresh token is "rt_" followed by the unpadded base64url of 64 bytes:
 * the organization's id, the token's id (both 16 bytes) and a 256-bit
 * secret from pg_strong_random. The ids are not secret; they name the row
 * (saas._refresh_tokens, keyed (org_id, id)), so that on Citus the lookup is
 * routed to the organization's shard, never a scan. Only the SHA-256 of the
 * secret is stored, and it is compared in constant time.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"

#define RT_PREFIX "rt_"
#define RT_RAW_LEN (16 + 16 + SAAS_REFRESH_SECRET_LEN)

/* saas_refresh_encode: the token's text form (palloc'd). */
char *
saas_refresh_encode(const SaasRefreshToken *t)
{
	unsigned char raw[RT_RAW_LEN];
	StringInfoData out;

	memcpy(raw, t->org_id.data, 16);
	memcpy(raw + 16, t->id.data, 16);
	memcpy(raw + 32, t->secret, SAAS_REFRESH_SECRET_LEN);
	initStringInfo(&out);
	appendStringInfoString(&out, RT_PREFIX);
	saas_b64url_encode(raw, RT_RAW_LEN, &out);
	explicit_bzero(raw, sizeof(raw));
	return out.data;
}

/*
 * saas_refresh_decode: parse a token's text form; false for anything that
 * is not exactly one (wrong prefix, length, alphabet, padding).
 */
bool
saas_refresh_decode(const char *s, SaasRefreshToken *t)
{
	StringInfoData raw;
	size_t		len;
	bool		ok;

	memset(t, 0, sizeof(*t));
	if (s == NULL || strncmp(s, RT_PREFIX, strlen(RT_PREFIX)) != 0)
		return false;
	s += strlen(RT_PREFIX);
	len = strlen(s);
	if (len != (RT_RAW_LEN * 4 + 2) / 3)
		return false;
	initStringInfo(&raw);
	ok = saas_b64url_decode(s, (int) len, &raw) && raw.len == RT_RAW_LEN;
	if (ok)
	{
		memcpy(t->org_id.data, raw.data, 16);
		memcpy(t->id.data, raw.data + 16, 16);
		memcpy(t->secret, raw.data + 32, SAAS_REFRESH_SECRET_LEN);
	}
	explicit_bzero(raw.data, raw.len);
	pfree(raw.data);
	return ok;
}

/* saas_refresh_new: a new token of an organization: a fresh id and secret. */
void
saas_refresh_new(const pg_uuid_t *org_id, SaasRefreshToken *t)
{
	t->org_id = *org_id;
	saas_uuid_v7(&t->id);
	saas_random_bytes(t->secret, SAAS_REFRESH_SECRET_LEN);
}

/* saas_refresh_hash: SHA-256 of the token's secret, what is stored. */
void
saas_refresh_hash(const SaasRefreshToken *t, unsigned char *out /* 32 bytes */ )
{
	saas_sha256(t->secret, SAAS_REFRESH_SECRET_LEN, out);
}
