/*-------------------------------------------------------------------------
 *
 * password.c
 *	  Passwords: argon2id (libargon2) in PHC string format with at least the
 *	  OWASP parameters (19 MiB, 2 iterations, 1 lane), and the policy.
 *
 * A login for an unknown email must cost what a wrong password costs, or
 * timing tells which emails exist: saas_password_burn verifies against a
 * dummy hash made once per backend with the same parameters.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <argon2.h>

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"

PG_FUNCTION_INFO_V1(saas_hash_password);
PG_FUNCTION_INFO_V1(saas_verify_password);

#define PW_MIN_CHARS	10
#define PW_MAX_BYTES	256
#define PW_SALT_LEN		16
#define PW_HASH_LEN		32
#define PW_LANES		1

/* The passwords every breach list starts with; refused whatever their length. */
static const char *const common_passwords[] = {
	"1234567890", "12345678910", "123456789a", "qwertyuiop", "password12",
	"password123", "password1234", "passw0rd123", "iloveyou12", "letmein123",
	"welcome123", "administrator", "qwerty12345", "abcdefghij", "0987654321",
	"1q2w3e4r5t", "changeme123", "superman123", NULL
};

static char *dummy_hash = NULL;

/*
 * saas_password_policy_error: NULL when the password is acceptable, else
 * the reason, phrased for the user. Length counts characters, not bytes.
 */
const char *
saas_password_policy_error(const char *password, const char *email)
{
	int			bytes = strlen(password);
	int			chars;
	int			i;
	bool		all_same = true;

	if (bytes > PW_MAX_BYTES)
		return "must be at most 256 bytes long";
	if (!pg_verifymbstr(password, bytes, true))
		return "must be valid UTF-8";
	chars = pg_mbstrlen_with_len(password, bytes);
	if (chars < PW_MIN_CHARS)
		return "must be at least 10 characters long";
	for (i = 1; i < bytes; i++)
		if (password[i] != password[0])
			all_same = false;
	if (all_same)
		return "must not repeat a single character";
	for (i = 0; common_passwords[i]; i++)
		if (pg_strcasecmp(password, common_passwords[i]) == 0)
			return "is too common";
	if (email && pg_strcasecmp(password, email) == 0)
		return "must not be the email address";
	return NULL;
}

/* saas_password_hash: a new argon2id PHC string for password. */
char *
saas_password_hash(const char *password)
{
	unsigned char salt[PW_SALT_LEN];
	size_t		enclen;
	char	   *encoded;
	int			rc;

	saas_random_bytes(salt, sizeof(salt));
	enclen = argon2_encodedlen(saas_argon2_iterations, saas_argon2_memory_kib,
							   PW_LANES, PW_SALT_LEN, PW_HASH_LEN, Argon2_id);
	encoded = palloc(enclen + 1);
	rc = argon2id_hash_encoded(saas_argon2_iterations, saas_argon2_memory_kib,
							   PW_LANES, password, strlen(password),
							   salt, PW_SALT_LEN, PW_HASH_LEN, encoded, enclen);
	if (rc != ARGON2_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not hash password: %s", argon2_error_message(rc))));
	return encoded;
}

/*
 * saas_password_verify: true when password matches phc. Only argon2id PHC
 * strings are accepted; anything else is a mismatch, never an error.
 */
bool
saas_password_verify(const char *password, const char *phc)
{
	if (phc == NULL || strncmp(phc, "$argon2id$", 10) != 0)
		return false;
	CHECK_FOR_INTERRUPTS();
	return argon2id_verify(phc, password, strlen(password)) == ARGON2_OK;
}

/* saas_password_burn: spend one verification's cost on nothing. */
void
saas_password_burn(const char *password)
{
	if (dummy_hash == NULL)
	{
		char		random_pw[33];
		unsigned char rnd[16];
		int			i;
		char	   *h;

		saas_random_bytes(rnd, sizeof(rnd));
		for (i = 0; i < 16; i++)
			snprintf(random_pw + 2 * i, 3, "%02x", rnd[i]);
		h = saas_password_hash(random_pw);
		dummy_hash = MemoryContextStrdup(TopMemoryContext, h);
	}
	(void) saas_password_verify(password, dummy_hash);
}

/* SQL: saas.hash_password(password text) RETURNS text */
Datum
saas_hash_password(PG_FUNCTION_ARGS)
{
	char	   *pw = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const char *why = saas_password_policy_error(pw, NULL);

	if (why)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_VALIDATION),
				 errmsg("password %s", why)));
	PG_RETURN_TEXT_P(cstring_to_text(saas_password_hash(pw)));
}

/* SQL: saas.verify_password(password text, phc text) RETURNS boolean */
Datum
saas_verify_password(PG_FUNCTION_ARGS)
{
	char	   *pw = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *phc = text_to_cstring(PG_GETARG_TEXT_PP(1));

	PG_RETURN_BOOL(saas_password_verify(pw, phc));
}
