# fuzz/fuzz.mk: libFuzzer targets (clang -fsanitize=fuzzer,address,undefined), included by the
# top-level Makefile.  Not part of "make all": a machine without clang still builds the rest.
#
#   make fuzz-build         build every target into fuzz/bin/
#   make fuzz               run each for FUZZ_SECONDS (default 60) on its seed corpus
#                           (fuzz/corpus/<target>/) and print the executions per target
#   test/suites/15_fuzz.sh  the same for a few seconds each, as part of make test
#
# The extension's parsers (base64url, JWT, webhook signature header, webhook bodies) use palloc
# and ereport: fuzz/pg_stub.c stands in for those few PostgreSQL functions.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_FLAGS    = -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
                -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
FUZZ_TARGETS  = sim_body relay_request base64url jwt webhook_sig webhook_body
FUZZ_BINS     = $(addprefix fuzz/bin/fuzz_,$(FUZZ_TARGETS))

EXTRA_CLEAN  += fuzz/bin

fuzz/bin/fuzz_sim_body: fuzz/fuzz_sim_body.c $(filter-out sim/main.c,$(SIM_SRCS)) $(SIM_HDRS) fuzz/fuzz.mk
	@mkdir -p fuzz/bin
	$(FUZZ_CC) $(FUZZ_FLAGS) -Isim $(SIM_CPPFLAGS) -o $@ $< $(filter-out sim/main.c,$(SIM_SRCS)) $(SIM_LIBS)

# checks.c and headers.c are #included by the target (their statics are fuzzed too)
FUZZ_RELAY_SRCS = $(filter-out shim/main.c shim/checks.c shim/headers.c,$(SHIM_SRCS))

fuzz/bin/fuzz_relay_request: fuzz/fuzz_relay_request.c $(SHIM_SRCS) $(SHIM_HDRS) fuzz/fuzz.mk
	@mkdir -p fuzz/bin
	$(FUZZ_CC) $(FUZZ_FLAGS) $(SHIM_DEFS) -Ishim -I$(SHIM_PG_INC) $(SIM_CPPFLAGS) -o $@ $< \
		$(FUZZ_RELAY_SRCS) $(SHIM_LIBS) $(shell pkg-config --libs jansson)

# The extension's parsers, built with the server's headers and fuzz/pg_stub.c in place of the
# backend, on libpgcommon/libpgport (StringInfo, JSON lexer, base64, HMAC, UTF-8) and OpenSSL.
# (PostgreSQL was built with gcc: clang does not know its gnu_printf format attribute)
FUZZ_PG_FLAGS = -I$(shell $(PG_CONFIG) --includedir-server) -Isrc -Ibgworker -Ifuzz -Wno-ignored-attributes
FUZZ_PG_LIBS  = -L$(shell $(PG_CONFIG) --pkglibdir) -lpgcommon -lpgport -lssl -lcrypto -lm
FUZZ_PG_DEPS  = fuzz/pg_stub.c fuzz/pg_stub.h src/pg_saas.h src/common/common.h src/auth/auth.h \
                src/ingest/ingest.h fuzz/fuzz.mk
FUZZ_JWT_SRCS = src/auth/jwt_parse.c src/common/json_strict.c src/common/base64url.c src/common/util.c

fuzz/bin/fuzz_base64url: fuzz/fuzz_base64url.c src/common/base64url.c $(FUZZ_PG_DEPS)
	@mkdir -p fuzz/bin
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_PG_FLAGS) -o $@ $< src/common/base64url.c fuzz/pg_stub.c $(FUZZ_PG_LIBS)

fuzz/bin/fuzz_jwt: fuzz/fuzz_jwt.c $(FUZZ_JWT_SRCS) $(FUZZ_PG_DEPS)
	@mkdir -p fuzz/bin
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_PG_FLAGS) -o $@ $< $(FUZZ_JWT_SRCS) fuzz/pg_stub.c $(FUZZ_PG_LIBS)

fuzz/bin/fuzz_webhook_sig: fuzz/fuzz_webhook_sig.c src/ingest/webhook_sig.c src/common/util.c $(FUZZ_PG_DEPS)
	@mkdir -p fuzz/bin
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_PG_FLAGS) -o $@ $< src/ingest/webhook_sig.c src/common/util.c fuzz/pg_stub.c \
		$(FUZZ_PG_LIBS)

fuzz/bin/fuzz_webhook_body: fuzz/fuzz_webhook_body.c src/common/json_strict.c $(FUZZ_PG_DEPS)
	@mkdir -p fuzz/bin
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_PG_FLAGS) $(SIM_CPPFLAGS) -o $@ $< src/common/json_strict.c \
		fuzz/pg_stub.c $(FUZZ_PG_LIBS) $(shell pkg-config --libs jansson)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@bash fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# the target names, for test/suites/15_fuzz.sh
.PHONY: fuzz-targets
fuzz-targets:
	@echo $(FUZZ_TARGETS)
