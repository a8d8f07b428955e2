# shim/shim.mk: saas-http, the HTTP relay (libmicrohttpd + libpq), included by the top-level Makefile.
#
#   make shim/saas-http        the relay (part of "make all" through PROGRAMS)
#   make shim/saas-http-asan   the same with AddressSanitizer and UBSan, for test/suites/60_relay.sh
#
# PGXS owns CFLAGS/LDFLAGS/PG_CPPFLAGS, so this program uses its own variable names.

SHIM_SRCS    = $(sort $(wildcard shim/*.c))
SHIM_HDRS    = $(wildcard shim/*.h)
SHIM_PG_INC  = $(shell $(PG_CONFIG) --includedir)
SHIM_PG_LIB  = $(shell $(PG_CONFIG) --libdir)
SHIM_DOCDIR  = $(shell $(PG_CONFIG) --docdir)/extension
SHIM_WARN    = -Wall -Wextra -Werror
SHIM_DEFS    = -D_GNU_SOURCE -DSAAS_HTTP_DOCDIR='"$(SHIM_DOCDIR)"'
SHIM_LIBS    = -L$(SHIM_PG_LIB) -lmicrohttpd -lpq -lz -lpthread

PROGRAMS    += shim/saas-http
EXTRA_CLEAN += shim/saas-http-asan

shim/saas-http: $(SHIM_SRCS) $(SHIM_HDRS) shim/shim.mk
	$(CC) -std=gnu11 -O2 -g $(SHIM_WARN) $(SHIM_DEFS) -I$(SHIM_PG_INC) -o $@ $(SHIM_SRCS) $(SHIM_LIBS)

shim/saas-http-asan: $(SHIM_SRCS) $(SHIM_HDRS) shim/shim.mk
	$(CC) -std=gnu11 -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
		$(SHIM_WARN) $(SHIM_DEFS) -I$(SHIM_PG_INC) -o $@ $(SHIM_SRCS) $(SHIM_LIBS)
