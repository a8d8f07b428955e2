# pg_saas: the extension (PGXS), its background worker, and the programs saas-http and saas-sim.
#
#   make run     install what is missing, build, start PostgreSQL + worker, relay and simulator
#   make test    the same in a throwaway cluster, then every suite; ends with "N passed, N failed"
#   make bench   benchmarks (test/bench/)
#   make fuzz    each libFuzzer target for FUZZ_SECONDS (fuzz/fuzz.mk)

EXTVERSION  = 0.1.0
MODULE_big  = pg_saas
MODULEDIR   = extension
OBJS        = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c bgworker/*.c)))
DATA        = extension/pg_saas.control
DATA_built  = extension/pg_saas--$(EXTVERSION).sql
EXTRA_CLEAN = $(PROGRAMS)

PG_CONFIG  ?= pg_config
PG_CPPFLAGS = -Isrc -Ibgworker
# -Wextra minus two checks that fire on PostgreSQL's own conventions: every V1 function
# takes fcinfo whether it uses it or not, and plan/field tables rely on zeroed tails.
PG_CFLAGS   = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
SHLIB_LINK  = -lcurl -largon2

# The install script is assembled from extension/sql/*.sql in name order (pg_partman style).
INSTALL_PARTS = $(sort $(wildcard extension/sql/*.sql))

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track header dependencies: every object depends on every
# header of the extension (a struct change must rebuild its readers).
$(OBJS): $(wildcard src/*.h bgworker/*.h)

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

.PHONY: deps run test bench programs
programs: $(PROGRAMS)

deps:
	@bash scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory install >/dev/null
	@bash scripts/run.sh

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory install >/dev/null
	@bash test/run_all.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory install >/dev/null
	@bash test/bench/run_bench.sh
