/*-------------------------------------------------------------------------
 *
 * pg_stub.c
 *	  The few PostgreSQL backend functions that the extension's hand-written
 *	  parsers call, for the fuzz targets that build them without a server.
 *
 * palloc and friends allocate with malloc and remember every block, so that
 * pg_fuzz_reset() frees what an input left behind, as the end of a memory
 * context would (the parsers, like all backend code, do not pfree what they
 * return).  ereport and elog go through errstart/errfinish: an ERROR jumps
 * back to the PG_FUZZ_TRY of the target with pg_fuzz_errcode set, anything
 * less is ignored.  StringInfo, the JSON lexer, base64, HMAC and the UTF-8
 * checks are PostgreSQL's own, from libpgcommon.a and libpgport.a.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"

#include "pg_stub.h"

sigjmp_buf *pg_fuzz_jump = NULL;
int			pg_fuzz_errcode = 0;
static int	pg_fuzz_elevel = 0;

/* every live palloc'd block: a header before the bytes handed out */
typedef struct StubBlock
{
	struct StubBlock *prev;
	struct StubBlock *next;
	size_t		size;
	max_align_t align;			/* keeps the bytes after it MAXALIGNed */
} StubBlock;

static StubBlock stub_blocks = {&stub_blocks, &stub_blocks, 0};

/* stub_link: put b in the list of live blocks and return its bytes */
static void *
stub_link(StubBlock *b, size_t size)
{
	if (b == NULL)
		abort();
	b->size = size;
	b->next = stub_blocks.next;
	b->prev = &stub_blocks;
	stub_blocks.next->prev = b;
	stub_blocks.next = b;
	return (char *) b + offsetof(StubBlock, align);
}

/* stub_unlink: the block of pointer p, out of the list */
static StubBlock *
stub_unlink(void *p)
{
	StubBlock  *b = (StubBlock *) ((char *) p - offsetof(StubBlock, align));

	b->prev->next = b->next;
	b->next->prev = b->prev;
	return b;
}

void *
palloc(Size size)
{
	return stub_link(malloc(offsetof(StubBlock, align) + size), size);
}

void *
palloc0(Size size)
{
	return stub_link(calloc(1, offsetof(StubBlock, align) + size), size);
}

void *
palloc_extended(Size size, int flags)
{
	return (flags & MCXT_ALLOC_ZERO) ? palloc0(size) : palloc(size);
}

void
pfree(void *pointer)
{
	free(stub_unlink(pointer));
}

void *
repalloc(void *pointer, Size size)
{
	StubBlock  *b = stub_unlink(pointer);

	return stub_link(realloc(b, offsetof(StubBlock, align) + size), size);
}

char *
pstrdup(const char *in)
{
	return pnstrdup(in, strlen(in));
}

char *
pnstrdup(const char *in, Size len)
{
	char	   *out;

	len = strnlen(in, len);
	out = palloc(len + 1);
	memcpy(out, in, len);
	out[len] = '\0';
	return out;
}

/* pg_fuzz_reset: free every block still live, as a memory context reset would */
void
pg_fuzz_reset(void)
{
	while (stub_blocks.next != &stub_blocks)
		free(stub_unlink((char *) stub_blocks.next + offsetof(StubBlock, align)));
}

bool
errstart(int elevel, const char *domain)
{
	pg_fuzz_elevel = elevel;
	return elevel >= ERROR;
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	if (pg_fuzz_elevel >= ERROR)
	{
		if (pg_fuzz_jump == NULL)
			abort();			/* an ERROR outside PG_FUZZ_TRY */
		siglongjmp(*pg_fuzz_jump, 1);
	}
}

int
errcode(int sqlerrcode)
{
	pg_fuzz_errcode = sqlerrcode;
	return 0;
}

int
errmsg(const char *fmt,...)
{
	return 0;
}

int
errmsg_internal(const char *fmt,...)
{
	pg_fuzz_errcode = ERRCODE_INTERNAL_ERROR;
	return 0;
}

int
errdetail(const char *fmt,...)
{
	return 0;
}

int
errhint(const char *fmt,...)
{
	return 0;
}

/* the database of the fuzz targets is UTF8, like the project's */
int
GetDatabaseEncoding(void)
{
	return PG_UTF8;
}

/* pg_verifymbstr: the backend's check, on libpgcommon's UTF-8 verifier */
bool
pg_verifymbstr(const char *mbstr, int len, bool noError)
{
	if (pg_encoding_verifymbstr(PG_UTF8, mbstr, len) == len)
		return true;
	if (!noError)
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("invalid byte sequence for encoding \"UTF8\"")));
	return false;
}
