# pg_saas: the extension (PGXS), its background worker, and the programs saas-http and saas-sim.
#
#   make run     install what is missing, build, start PostgreSQL + worker, relay and simulator
#   make test    the same in a throwaway cluster, then every suite; ends with "N passed, N failed"
#   make bench   benchmarks (test/bench/)
#   make fuzz    each libFuzzer target for FUZZ_SECONDS (fuzz/fuzz.mk)
#   make openapi-lint   docs/openapi.json against Redocly's recommended rules

EXTVERSION  = 0.1.0
MODULE_big  = pg_saas
MODULEDIR   = extension
# The module entry (pg_saas.c) knows both layers; src/<subsystem>/ is the
# extension, bgworker/ the worker that uses it (README: map of the code).
OBJS        = pg_saas.o $(patsubst %.c,%.o,$(sort $(wildcard src/*/*.c bgworker/*.c)))
DATA        = extension/pg_saas.control
DATA_built  = extension/pg_saas--$(EXTVERSION).sql
EXTRA_CLEAN = $(PROGRAMS)

# make installcheck: the pg_regress suite (sql/, expected/) and the isolation
# specs (test/isolation/) through PGXS, against a running server that has
# pg_saas in shared_preload_libraries (docs/testing.md). Each makes its own
# database with the extension; the regress setup (sql/00_setup.sql) and the
# first spec (00_app_role) make the roles the others act as.
REGRESS        = $(sort $(basename $(notdir $(wildcard sql/*.sql))))
REGRESS_OPTS   = --load-extension=pg_saas
ISOLATION      = $(sort $(basename $(notdir $(wildcard test/isolation/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test/isolation --load-extension=pg_saas

PG_CONFIG  ?= pg_config
# Headers are included as "pg_saas.h", "<subsystem>/<subsystem>.h" and, in
# bgworker/, by their bare name. Symbols are hidden unless marked PGDLLEXPORT
# (src/pg_saas.h explains; test/suites/05_symbols.sh checks).
PG_CPPFLAGS = -I. -Isrc -Ibgworker '-DPGDLLEXPORT=__attribute__((visibility("default")))'

# -Wextra minus two checks that fire on PostgreSQL's own conventions: every V1 function
# takes fcinfo whether it uses it or not, and plan/field tables rely on zeroed tails.
PG_CFLAGS   = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers \
              -fvisibility=hidden
SHLIB_LINK  = -lcurl -largon2 -lcrypto

# The install script is assembled from extension/sql/*.sql in name order (pg_partman style).
INSTALL_PARTS = $(sort $(wildcard extension/sql/*.sql))

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track header dependencies: every object depends on every
# header of the extension (a struct change must rebuild its readers).
$(OBJS): src/pg_saas.h $(wildcard src/*/*.h bgworker/*.h)

extension/pg_saas--$(EXTVERSION).sql: $(INSTALL_PARTS)
	@echo "-- generated from extension/sql/*.sql by make; edit the parts, not this file" > $@
	@printf '%s\n' '\echo Use "CREATE EXTENSION pg_saas" to load this file. \quit' >> $@
	cat $(INSTALL_PARTS) >> $@

# The programs: one fragment per program folder.
PROGRAMS =
-include shim/shim.mk
-include sim/sim.mk
# libFuzzer targets (make fuzz); not part of all
-include fuzz/fuzz.mk

all: $(PROGRAMS)

.PHONY: deps run test bench programs openapi-lint
programs: $(PROGRAMS)

deps:
	@bash scripts/deps.sh

# make run prints what it does; the compiler's commands and messages go to the build log,
# whose end is shown when the build fails.
RUN_DIR ?= $(or $(SAAS_RUN_DIR),.run)
run: deps
	@mkdir -p $(RUN_DIR)
	@echo "run: building the extension, its worker, saas-http and saas-sim (log: $(RUN_DIR)/build.log)"
	@$(MAKE) --no-print-directory all >$(RUN_DIR)/build.log 2>&1 || \
		{ echo "run: the build failed; the end of $(RUN_DIR)/build.log:" >&2; tail -25 $(RUN_DIR)/build.log >&2; exit 1; }
	@echo "run: installing pg_saas into $$($(PG_CONFIG) --pkglibdir)"
	@$(MAKE) --no-print-directory install >>$(RUN_DIR)/build.log 2>&1 || \
		{ echo "run: make install failed; the end of $(RUN_DIR)/build.log:" >&2; tail -25 $(RUN_DIR)/build.log >&2; exit 1; }
	@bash scripts/run.sh

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory install >/dev/null
	@bash test/run_all.sh

openapi-lint:
	@bash scripts/openapi_lint.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory install >/dev/null
	@bash test/bench/run_bench.sh
