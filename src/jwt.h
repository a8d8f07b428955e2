/*-------------------------------------------------------------------------
 *
 * jwt.h
 *	  Compact JWS (HS256) parsing, signing and verification.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_JWT_H
#define SAAS_JWT_H

#include "lib/stringinfo.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "base64url.h"

#define SAAS_JWT_MAX_LEN		8192
#define SAAS_JWT_SIG_LEN		32	/* HMAC-SHA256 */

/* Why a token was refused; saas_jwt_error_message turns it into words. */
typedef enum SaasJwtStatus
{
	SAAS_JWT_OK = 0,
	SAAS_JWT_MALFORMED,
	SAAS_JWT_BAD_HEADER,
	SAAS_JWT_ALG_MISMATCH,
	SAAS_JWT_UNKNOWN_KEY,
	SAAS_JWT_BAD_SIGNATURE,
	SAAS_JWT_EXPIRED,
	SAAS_JWT_NOT_YET_VALID,
	SAAS_JWT_BAD_CLAIMS,
	SAAS_JWT_WRONG_ISSUER,
	SAAS_JWT_WRONG_AUDIENCE
} SaasJwtStatus;

/* A token split into its parts; pointers into the token or palloc'd. */
typedef struct SaasJwtParts
{
	const char *signing_input;	/* header.payload */
	int			signing_input_len;
	char		alg[16];
	char		kid[65];		/* empty when absent */
	char	   *payload_json;	/* decoded, validated JSON text */
	int			payload_len;
	unsigned char sig[SAAS_JWT_SIG_LEN];
} SaasJwtParts;

extern const char *saas_jwt_error_message(SaasJwtStatus st);
extern SaasJwtStatus saas_jwt_split(const char *token, SaasJwtParts *parts);
extern SaasJwtStatus saas_jwt_check_sig(const SaasJwtParts *parts,
										const unsigned char *secret, int secret_len);
extern void saas_jwt_hmac_sha256(const unsigned char *key, int keylen,
								 const char *data, int len, unsigned char *out);
/* The time claims of a token, as read. */
typedef struct SaasJwtTimes
{
	bool		has_exp,
				has_nbf,
				has_iat;
	int64		exp,
				nbf,
				iat;
} SaasJwtTimes;

extern SaasJwtStatus saas_jwt_check_time_values(const SaasJwtTimes *t, int64 now, int leeway,
												bool require_exp);
extern SaasJwtStatus saas_jwt_check_times(Jsonb *claims, int64 now, int leeway,
										  bool require_exp);
extern char *saas_jwt_encode(const char *kid, const char *claims_json, int claims_len,
							 const unsigned char *secret, int secret_len);
extern Jsonb *saas_jsonb_from_text(const char *json, int len);
extern bool saas_json_valid_strict(const char *json, int len, bool top_object);
extern JsonbValue *saas_jsonb_get(Jsonb *jb, const char *key);
extern JsonbValue *saas_jsonb_container_get(JsonbContainer *c, const char *key);

/*
 * A NumericDate (JSON number text, may be non-integer or use an exponent)
 * as whole seconds: round_up false for exp, true for nbf and iat; then the
 * whole-second checks of saas_jwt_check_time_values answer as they would
 * for the exact value. False when not a JSON number or beyond +/- 2^53 s.
 */
extern bool saas_jwt_numeric_date(const char *num, bool round_up, int64 *out);

#endif
