/*-------------------------------------------------------------------------
 *
 * password.h
 *	  argon2id password hashing and the password policy.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_PASSWORD_H
#define SAAS_PASSWORD_H

extern const char *saas_password_policy_error(const char *password, const char *email);
extern char *saas_password_hash(const char *password);
extern bool saas_password_verify(const char *password, const char *phc);
extern void saas_password_burn(const char *password);

#endif
