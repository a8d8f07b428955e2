# saas-sim: the simulated external services (sim/). Included by the top-level Makefile.
# Plain C with libmicrohttpd, libcurl, OpenSSL and jansson (pkg-config); PGXS's CFLAGS/LDFLAGS are left alone.
#   sim/saas-sim        optimized, for `make run` and the benchmark
#   sim/saas-sim-asan   AddressSanitizer + UBSan build, used by test/suites/50_sim.sh

SIM_SRCS  := $(sort $(wildcard sim/*.c))
SIM_HDRS  := $(wildcard sim/*.h)
SIM_WARN  := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
SIM_LIBS  := -lmicrohttpd -lcurl -lcrypto $(shell pkg-config --libs jansson) -lpthread -lm
SIM_CFLAGS ?=
SIM_CPPFLAGS := $(shell pkg-config --cflags jansson)

PROGRAMS += sim/saas-sim sim/saas-sim-asan

sim/saas-sim: $(SIM_SRCS) $(SIM_HDRS) sim/sim.mk
	$(CC) $(SIM_WARN) -O2 -g $(SIM_CPPFLAGS) $(SIM_CFLAGS) -o $@ $(SIM_SRCS) $(SIM_LIBS)

sim/saas-sim-asan: $(SIM_SRCS) $(SIM_HDRS) sim/sim.mk
	$(CC) $(SIM_WARN) -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
		-fno-sanitize-recover=undefined $(SIM_CPPFLAGS) $(SIM_CFLAGS) -o $@ $(SIM_SRCS) $(SIM_LIBS)

.PHONY: sim
sim: sim/saas-sim sim/saas-sim-asan
