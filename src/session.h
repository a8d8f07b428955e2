/*-------------------------------------------------------------------------
 *
 * session.h
 *	  The current facts behind a token (session.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_SESSION_H
#define SAAS_SESSION_H

#include "utils/uuid.h"

/*
 * How long a backend trusts what it read about a user. The documented bound
 * is 5 seconds; a second of it is left for the request in flight.
 */
#define SAAS_SESSION_TTL_S 4
/* Revoked tokens kept per user before logout ends all sessions instead. */
#define SAAS_SESSION_MAX_REVOKED 32

typedef enum SaasSessionStatus
{
	SAAS_SESSION_OK,
	SAAS_SESSION_GONE,
	SAAS_SESSION_INACTIVE,
	SAAS_SESSION_ORG_SUSPENDED,
	SAAS_SESSION_ENDED
} SaasSessionStatus;

extern uint64 saas_jti_hash(const char *jti, size_t len);
extern SaasSessionStatus saas_session_check(const pg_uuid_t *org_id, const pg_uuid_t *user_id,
											int64 gen, uint64 jti, char *role);
extern const char *saas_session_message(SaasSessionStatus st);
extern void saas_session_forget(void);

#endif
