/*-------------------------------------------------------------------------
 *
 * base64url.h
 *	  Strict unpadded base64url (base64url.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_BASE64URL_H
#define SAAS_BASE64URL_H

#include "lib/stringinfo.h"

extern void saas_b64url_encode(const unsigned char *in, int len, StringInfo out);
extern bool saas_b64url_decode(const char *in, int len, StringInfo out);

#endif							/* SAAS_BASE64URL_H */
