# libautoclose — build, test and demo.
#   make          build build/libautoclose.so
#   make test     unit tests (cmocka) and integration tests (real loopback sockets)
#   make demo     the legacy-MOS simulator without and with the shim, side by side
#   make deps     install the Debian packages the build and tests need

CC      ?= cc
BUILD   ?= build
WARN    := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -D_GNU_SOURCE
SHIM_CFLAGS := -fPIC -fvisibility=hidden -pthread -U_FORTIFY_SOURCE
LDLIBS_SHIM := -ldl -pthread

# Sources with no wrapped symbol: linked into the library and into the unit tests.
CORE_SRCS := $(filter-out shim/wrap_%.c,$(wildcard shim/*.c))
WRAP_SRCS := $(wildcard shim/wrap_*.c)
CORE_OBJS := $(CORE_SRCS:shim/%.c=$(BUILD)/shim/%.o)
WRAP_OBJS := $(WRAP_SRCS:shim/%.c=$(BUILD)/shim/%.o)
LIB       := $(BUILD)/libautoclose.so
CORE_LIB  := $(BUILD)/libautoclose_core.a

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)

FIX_COMMON := tests/fixtures/mos_proto.c
FIXTURES   := $(BUILD)/fixtures/mos_server $(BUILD)/fixtures/mos_server_fortified \
              $(BUILD)/fixtures/ncs_client $(BUILD)/fixtures/edge_server \
              $(BUILD)/fixtures/inetd_server $(BUILD)/fixtures/fork_storm $(BUILD)/fixtures/fork_inherit \
              $(BUILD)/fixtures/ready_server $(BUILD)/fixtures/ready_server_fortified \
              $(BUILD)/fixtures/neglect_server $(BUILD)/fixtures/halfclose_server

.PHONY: all deps check-deps test unit integration demo fixtures clean format format-check exports

all: check-deps $(LIB)

deps:
	scripts/install-deps.sh

check-deps:
	@scripts/install-deps.sh --check-or-install

$(BUILD)/shim/%.o: shim/%.c $(wildcard shim/*.h) | $(BUILD)/shim
	$(CC) $(CFLAGS) $(SHIM_CFLAGS) -c -o $@ $<

$(LIB): $(CORE_OBJS) $(WRAP_OBJS)
	$(CC) $(CFLAGS) -shared -o $@ $^ $(LDLIBS_SHIM) -Wl,-z,defs -Wl,--version-script=shim/exports.map

$(CORE_LIB): $(CORE_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/unit/%: tests/unit/%.c $(CORE_LIB) | $(BUILD)/unit
	$(CC) $(CFLAGS) -pthread -Ishim -o $@ $< $(CORE_LIB) -lcmocka -ldl -pthread

$(BUILD)/fixtures/mos_server: tests/fixtures/mos_server.c $(FIX_COMMON) tests/fixtures/mos_proto.h | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -U_FORTIFY_SOURCE -g -pthread -o $@ $< $(FIX_COMMON)

# The same server built fortified: its reads go through __read_chk, __recv_chk, __recvfrom_chk.
$(BUILD)/fixtures/mos_server_fortified: tests/fixtures/mos_server.c $(FIX_COMMON) tests/fixtures/mos_proto.h | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O2 -D_FORTIFY_SOURCE=2 -DMOS_FORTIFIED -g -pthread -o $@ $< $(FIX_COMMON)

# The FIONREAD event-loop server built fortified: its poll and ppoll go through __poll_chk and
# __ppoll_chk (an array whose size the compiler knows, a count it does not).
$(BUILD)/fixtures/ready_server_fortified: tests/fixtures/ready_server.c $(FIX_COMMON) tests/fixtures/mos_proto.h | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O2 -D_FORTIFY_SOURCE=2 -DREADY_FORTIFIED -g -pthread -o $@ $< $(FIX_COMMON)

$(BUILD)/fixtures/%: tests/fixtures/%.c $(FIX_COMMON) tests/fixtures/mos_proto.h | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -g -pthread -o $@ $< $(FIX_COMMON)

fixtures: $(FIXTURES)

$(BUILD)/shim $(BUILD)/unit $(BUILD)/fixtures:
	mkdir -p $@

unit: check-deps $(UNIT_BINS)
	@tests/unit/run.sh $(UNIT_BINS)

integration: check-deps $(LIB) $(FIXTURES)
	@AUTOCLOSE_LIB=$(abspath $(LIB)) FIXTURES=$(abspath $(BUILD)/fixtures) tests/integration/run.sh

test: exports format-check unit integration

exports: $(LIB)
	@scripts/check-exports.sh $(LIB)

demo: check-deps $(LIB) $(FIXTURES)
	@AUTOCLOSE_LIB=$(abspath $(LIB)) FIXTURES=$(abspath $(BUILD)/fixtures) scripts/demo.sh

format:
	clang-format -i shim/*.c shim/*.h tests/unit/*.c tests/fixtures/*.c tests/fixtures/*.h

format-check:
	@clang-format --dry-run -Werror shim/*.c shim/*.h tests/unit/*.c tests/fixtures/*.c tests/fixtures/*.h && echo "format: clean"

clean:
	rm -rf $(BUILD)
