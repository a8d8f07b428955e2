/*-------------------------------------------------------------------------
 *
 * metrics.h
 *	  Counters for GET /metrics (Prometheus text format).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_HTTP_METRICS_H
#define SAAS_HTTP_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "json.h"
#include "pool.h"

extern int	saas_route_of(const char *target);
extern const char *saas_route_name(int route);
extern void saas_metrics_request(int route, const char *method, int status,
								 int64_t micros);
extern void saas_metrics_in_flight(int delta);
extern void saas_metrics_connections(int delta);
extern void saas_metrics_refused(bool per_client);
extern void saas_metrics_deadline(bool body);
extern void saas_metrics_render(SaasBuf *out, SaasPool *pool);
extern void saas_metrics_render_db(SaasBuf *out, SaasPool *pool, int timeout_ms);

#endif							/* SAAS_HTTP_METRICS_H */
