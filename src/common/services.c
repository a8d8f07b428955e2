/*-------------------------------------------------------------------------
 *
 * services.c
 *	  The external services by index: the one list of their names in C.
 *
 * saas.integrations is the source of the services (every column that
 * names one references it). The worker's shared memory keeps a slot per
 * service, so the C code works with indexes and asks for one by name with
 * saas_service_index; test/pgtap checks that this list and the table
 * agree.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/common.h"

/* NULL-terminated, so that it also serves as a validation enum (SF_ENUM). */
const char *const saas_service_names[SAAS_NSERVICES + 1] = {
	"user-service", "payment-service", "communication-service", NULL
};

/* saas_service_index: the index of a service by name, or -1 if unknown. */
int
saas_service_index(const char *service)
{
	int			i;

	if (service == NULL)
		return -1;
	for (i = 0; i < SAAS_NSERVICES; i++)
		if (strcmp(saas_service_names[i], service) == 0)
			return i;
	return -1;
}
