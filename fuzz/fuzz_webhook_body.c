/*-------------------------------------------------------------------------
 *
 * fuzz_webhook_body.c
 *	  libFuzzer target: the strict JSON gate of webhook and API bodies
 *	  (saas_json_valid_strict, src/common/json_strict.c), the first code that reads
 *	  a webhook body, before the event schema (src/ingest/event_schema.c, which
 *	  works on the jsonb this gate lets through).
 *
 * It must answer, never raise or crash, and never accept what is not JSON:
 * whatever it accepts, jansson must parse too (numbers aside: PostgreSQL's
 * JSON has no range, jansson's has), and both must agree that there are
 * no duplicate keys at the top level.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <jansson.h>

#include "pg_saas.h"
#include "common/common.h"
#include "pg_stub.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sigjmp_buf	jump;
	bool		ours;

	if (size > 65536)
		return 0;
	pg_fuzz_jump = &jump;
	if (sigsetjmp(jump, 0) != 0)
		abort();				/* the gate raised instead of answering */
	ours = saas_json_valid_strict((const char *) data, (int) size, false);
	pg_fuzz_jump = NULL;
	if (ours)
	{
		json_error_t jerr;
		json_t	   *v = json_loadb((const char *) data, size,
								   JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &jerr);

		if (v == NULL && json_error_code(&jerr) != json_error_numeric_overflow &&
			json_error_code(&jerr) != json_error_stack_overflow)
		{
			fprintf(stderr, "accepted, but jansson says: %s\n", jerr.text);
			abort();
		}
		json_decref(v);
	}
	pg_fuzz_reset();
	return 0;
}
