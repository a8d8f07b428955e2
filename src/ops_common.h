/*-------------------------------------------------------------------------
 *
 * ops_common.h
 *	  Helpers shared by the operation files.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_OPS_COMMON_H
#define SAAS_OPS_COMMON_H

#include "pg_saas.h"
#include "spi_util.h"
#include "utils/jsonb.h"

#define USER_COLUMNS \
	"id, org_id, email, first_name, last_name, role, status, external_user_ids, " \
	"created_at, updated_at, last_login, version"
#define ORG_COLUMNS \
	"id, name, slug, subscription_tier, employee_limit, features_enabled, external_ids, " \
	"status, created_at, updated_at, version"

extern int64 saas_row_json(StringInfo out, int rowno);
extern void saas_page_json(StringInfo out, int limit, const char *sort_col);
extern void saas_require_role(const SaasContext *ctx, const char *const *roles,
							  const char *what);
extern void saas_not_found(const char *entity);
extern Datum saas_uuid_datum(const pg_uuid_t *u);
extern Datum saas_text_datum_or_null(const char *s, char *nullflag);
extern char *saas_header_get(Jsonb *headers, const char *name);

#endif
