/*-------------------------------------------------------------------------
 *
 * validate.h
 *	  Request body validation with field-level errors.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_VALIDATE_H
#define SAAS_VALIDATE_H

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

typedef enum SaasFieldKind
{
	SF_STRING,					/* min..max characters */
	SF_EMAIL,
	SF_SLUG,
	SF_PASSWORD,				/* policy checked by the operation */
	SF_INT,						/* min..max */
	SF_ENUM,					/* one of choices */
	SF_STRING_ARRAY,			/* up to max strings of 1..64 chars */
	SF_STRING_MAP,				/* object of up to max string values */
	SF_OBJECT					/* nested object, validated by the operation */
} SaasFieldKind;

typedef struct SaasField
{
	const char *name;
	SaasFieldKind kind;
	bool		required;
	int			min;
	int			max;
	const char *const *choices;
} SaasField;

/* Accumulated field errors, raised together as one 400. */
typedef struct SaasErrors
{
	StringInfoData json;		/* [{"field":..,"message":..},...] */
	int			n;
} SaasErrors;

extern void saas_errors_init(SaasErrors *e);
extern void saas_errors_add(SaasErrors *e, const char *field, const char *message);
extern void saas_errors_raise(SaasErrors *e);
extern void saas_raise_field_error(const char *field, const char *message);

extern Jsonb *saas_require_object(Jsonb *body);
extern void saas_validate(Jsonb *obj, const SaasField *fields, const char *prefix,
						  SaasErrors *e);

extern char *saas_get_str(Jsonb *obj, const char *key);
extern bool saas_get_int(Jsonb *obj, const char *key, int32 *out);
extern Jsonb *saas_get_jsonb(Jsonb *obj, const char *key);
extern bool saas_has(Jsonb *obj, const char *key);

extern const char *const saas_roles_assignable[];
extern const char *const saas_user_statuses[];
extern const char *const saas_tiers[];
extern const char *const saas_org_statuses[];

#endif
