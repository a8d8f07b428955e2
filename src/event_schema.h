/*-------------------------------------------------------------------------
 *
 * event_schema.h
 *	  What the data of each webhook event type must hold (event_schema.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_EVENT_SCHEMA_H
#define SAAS_EVENT_SCHEMA_H

#include "utils/jsonb.h"

extern const char *saas_event_data_error(const char *event_type, JsonbContainer *data);

#endif							/* SAAS_EVENT_SCHEMA_H */
