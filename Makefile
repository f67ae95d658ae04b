# libautoclose — build, test and demo.
#   make          build build/libautoclose.so
#   make test     unit tests (cmocka) and integration tests (real loopback sockets)
#   make demo     the legacy-MOS simulator without and with the shim, side by side
#   make deps     install the Debian packages the build and tests need

# The one place the version is set: the library's start-up line, the daemon's and the wrapper's
# --version, the man pages and the Debian package all take it from here.
VERSION := 1.0.0

CC      ?= cc
BUILD   ?= build
WARN    := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -D_GNU_SOURCE
SHIM_CFLAGS := -fPIC -fvisibility=hidden -pthread -U_FORTIFY_SOURCE -DAC_VERSION='"$(VERSION)"'
LDLIBS_SHIM := -ldl -pthread

# shim/core/     what the library and the daemon share (configuration syntax, TCP_INFO and the
#                idle rule, sock_diag, log lines, Prometheus text)
# shim/preload/  the LD_PRELOAD library: its wrappers (wrap_*.c) and the machinery behind them
# shim/daemon/   autoclosed, which reclaims other processes' sockets through pidfd_getfd
CORE_SRCS    := $(wildcard shim/core/*.c)
PRELOAD_SRCS := $(filter-out shim/preload/wrap_%.c,$(wildcard shim/preload/*.c))
WRAP_SRCS    := $(wildcard shim/preload/wrap_*.c)
DAEMON_SRCS  := $(wildcard shim/daemon/*.c)
CORE_OBJS    := $(CORE_SRCS:shim/%.c=$(BUILD)/shim/%.o)
PRELOAD_OBJS := $(PRELOAD_SRCS:shim/%.c=$(BUILD)/shim/%.o)
WRAP_OBJS    := $(WRAP_SRCS:shim/%.c=$(BUILD)/shim/%.o)
DAEMON_OBJS  := $(DAEMON_SRCS:shim/%.c=$(BUILD)/shim/%.o)
SHIM_HEADERS := $(wildcard shim/*/*.h)
SHIM_INCLUDE := -Ishim/core -Ishim/preload
LIB          := $(BUILD)/libautoclose.so
DAEMON       := $(BUILD)/autoclosed
# Everything but the wrappers, for the unit tests and fuzzers to link.
CORE_LIB     := $(BUILD)/libautoclose_core.a

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)

FIX_COMMON := tests/fixtures/mos_proto.c
FIXTURES   := $(BUILD)/fixtures/mos_server $(BUILD)/fixtures/mos_server_fortified \
              $(BUILD)/fixtures/ncs_client $(BUILD)/fixtures/edge_server \
              $(BUILD)/fixtures/inetd_server $(BUILD)/fixtures/fork_storm $(BUILD)/fixtures/fork_inherit \
              $(BUILD)/fixtures/ready_server $(BUILD)/fixtures/ready_server_fortified \
              $(BUILD)/fixtures/neglect_server $(BUILD)/fixtures/halfclose_server \
              $(BUILD)/fixtures/sockopt_probe $(BUILD)/fixtures/plain_listener \
              $(BUILD)/fixtures/exit_server $(BUILD)/fixtures/cancel_probe \
              $(BUILD)/fixtures/main_exit_server $(BUILD)/fixtures/hardened_exec \
              $(BUILD)/fixtures/timeout_probe $(BUILD)/fixtures/thrd_cancel \
              $(BUILD)/fixtures/stderr_reuse $(BUILD)/fixtures/parked_server \
              $(BUILD)/fixtures/late_writer $(BUILD)/fixtures/vfork_server \
              $(BUILD)/fixtures/fork_handlers $(BUILD)/fixtures/spawn_server \
              $(BUILD)/fixtures/close_race

.PHONY: all deps check-deps test unit integration demo fixtures clean format format-check exports

all: check-deps $(LIB)

deps:
	scripts/install-deps.sh

# DEPS_CHECKED=1 skips it: the package build (scripts/debian/rules) has had its Build-Depends
# checked by dpkg-buildpackage and needs none of the test tools.
check-deps:
	@[ -n "$(DEPS_CHECKED)" ] || scripts/install-deps.sh --check-or-install

$(BUILD)/shim/%.o: shim/%.c $(SHIM_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SHIM_CFLAGS) $(SHIM_INCLUDE) -c -o $@ $<

# A SONAME, because the Debian package's checks (lintian) reject a shared object without one in
# a library directory; nothing links against it, so it carries no ABI version. LDFLAGS: the
# package build's hardening (-z now).
$(LIB): $(CORE_OBJS) $(PRELOAD_OBJS) $(WRAP_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -o $@ $^ $(LDLIBS_SHIM) -Wl,-z,defs \
		-Wl,-soname,libautoclose.so -Wl,--version-script=shim/preload/exports.map

$(DAEMON): $(DAEMON_OBJS) $(CORE_OBJS)
	$(CC) $(CFLAGS) -o $@ $^

$(CORE_LIB): $(CORE_OBJS) $(PRELOAD_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/unit/%: tests/unit/%.c $(CORE_LIB) | $(BUILD)/unit
	$(CC) $(CFLAGS) -pthread $(SHIM_INCLUDE) -o $@ $< $(CORE_LIB) -lcmocka -ldl -pthread

$(BUILD)/fixtures/mos_server: tests/fixtures/mos_server.c $(FIX_COMMON) tests/fixtures/mos_proto.h | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -U_FORTIFY_SOURCE -g -pthread -o $@ $< $(FIX_COMMON)

# The same server built fortified: its reads go through __read_chk, __recv_chk, __recvfrom_chk.
$(BUILD)/fixtures/mos_server_fortified: tests/fixtures/mos_server.c $(FIX_COMMON) tests/fixtures/mos_proto.h | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O2 -D_FORTIFY_SOURCE=2 -DMOS_FORTIFIED -g -pthread -o $@ $< $(FIX_COMMON)

# The FIONREAD event-loop server built fortified: its poll and ppoll go through __poll_chk and
# __ppoll_chk (an array whose size the compiler knows, a count it does not).
$(BUILD)/fixtures/ready_server_fortified: tests/fixtures/ready_server.c $(FIX_COMMON) tests/fixtures/mos_proto.h | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O2 -D_FORTIFY_SOURCE=2 -DREADY_FORTIFIED -g -pthread -o $@ $< $(FIX_COMMON)

# The launcher that puts a program under a hardened systemd unit's seccomp filter: libseccomp.
$(BUILD)/fixtures/hardened_exec: tests/fixtures/hardened_exec.c | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -g -o $@ $< -lseccomp

$(BUILD)/fixtures/%: tests/fixtures/%.c $(FIX_COMMON) tests/fixtures/mos_proto.h | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -g -pthread -o $@ $< $(FIX_COMMON)

fixtures: $(FIXTURES)

$(BUILD)/unit $(BUILD)/fixtures:
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

FORMATTED := shim/*/*.c shim/*/*.h tests/unit/*.c tests/fixtures/*.c tests/fixtures/*.h \
             tests/bench/*.c tests/bench/*.h

format:
	clang-format -i $(FORMATTED)

format-check:
	@clang-format --dry-run -Werror $(FORMATTED) && echo "format: clean"

clean:
	rm -rf $(BUILD)

# ---------------------------------------------------------------------------------------------
# install, uninstall: the library, the operator tools (scripts/), their man pages and the systemd
# drop-in example.
#   make install   [PREFIX=/usr/local] [DESTDIR=/staging/root]
#   make uninstall [PREFIX=/usr/local] [DESTDIR=/staging/root]
# The library goes into the multiarch directory the compiler names (lib/x86_64-linux-gnu on
# Debian), next to the system's own libraries; plain lib where it names none. INSTALL_LIB names
# an already built library to install instead of building $(LIB) (the install test uses it so
# that it never rebuilds the library other tests are running with).
PREFIX      ?= /usr/local
DESTDIR     ?=
MULTIARCH    = $(shell gcc -print-multiarch 2>/dev/null)
LIBDIR       = $(PREFIX)/lib$(if $(MULTIARCH),/$(MULTIARCH))
BINDIR       = $(PREFIX)/bin
MANDIR       = $(PREFIX)/share/man
DOCDIR       = $(PREFIX)/share/doc/libautoclose
INSTALL_LIB ?= $(LIB)
TOOLS       := autoclose mos-close-test tcpstates
MAN1        := autoclose.1 mos-close-test.1 tcpstates.1
MAN7        := libautoclose.7
# The installed wrapper and drop-in name the library's final path; the wrapper also gets that
# path relative to BINDIR, so that a staged (DESTDIR) or moved installation still finds it. The
# wrapper and the man pages (on their .TH line) get VERSION; each page goes to the man<section>
# its suffix names.
INSTALLED_LIB = $(LIBDIR)/libautoclose.so
RELATIVE_LIB  = $(shell realpath -m --relative-to='$(BINDIR)' '$(LIBDIR)')/libautoclose.so
SUBST = sed -e 's|@AUTOCLOSE_INSTALLED_LIB@|$(INSTALLED_LIB)|g' \
            -e 's|@AUTOCLOSE_RELATIVE_LIB@|$(RELATIVE_LIB)|g' -e 's|@AUTOCLOSE_BINDIR@|$(BINDIR)|g' \
            -e 's|@AUTOCLOSE_VERSION@|$(VERSION)|g'

.PHONY: install uninstall

install: $(INSTALL_LIB)
	install -d '$(DESTDIR)$(LIBDIR)' '$(DESTDIR)$(BINDIR)' '$(DESTDIR)$(MANDIR)/man1' \
		'$(DESTDIR)$(MANDIR)/man7' '$(DESTDIR)$(DOCDIR)'
	install -m 0644 '$(INSTALL_LIB)' '$(DESTDIR)$(INSTALLED_LIB)'
	$(SUBST) scripts/autoclose >'$(DESTDIR)$(BINDIR)/autoclose'
	chmod 0755 '$(DESTDIR)$(BINDIR)/autoclose'
	install -m 0755 scripts/mos-close-test scripts/tcpstates '$(DESTDIR)$(BINDIR)/'
	for m in $(MAN1) $(MAN7); do \
		$(SUBST) "scripts/man/$$m" >'$(DESTDIR)$(MANDIR)'/man$${m##*.}/$$m && \
		chmod 0644 '$(DESTDIR)$(MANDIR)'/man$${m##*.}/$$m || exit 1; \
	done
	$(SUBST) scripts/systemd/autoclose.conf >'$(DESTDIR)$(DOCDIR)/autoclose.conf'
	chmod 0644 '$(DESTDIR)$(DOCDIR)/autoclose.conf'

uninstall:
	rm -f '$(DESTDIR)$(INSTALLED_LIB)' $(foreach t,$(TOOLS),'$(DESTDIR)$(BINDIR)/$(t)') \
		$(foreach m,$(MAN1),'$(DESTDIR)$(MANDIR)/man1/$(m)') \
		$(foreach m,$(MAN7),'$(DESTDIR)$(MANDIR)/man7/$(m)') '$(DESTDIR)$(DOCDIR)/autoclose.conf'
	rmdir '$(DESTDIR)$(DOCDIR)' 2>/dev/null || true

# ---- benchmarks: make bench ------------------------------------------------------------------
# The same workloads with and without the shim, alternating; tests/bench/run.sh says what is
# measured and which BENCH_* variables scale it (e.g. make bench BENCH_SCALES="1000 10000").
# Built without fortification so the programs call read, recv, poll... themselves, not the _chk
# forms.
BENCH_DIR  := $(BUILD)/bench
BENCH_BINS := $(BENCH_DIR)/hotpath $(BENCH_DIR)/leak_server $(BENCH_DIR)/scale $(BENCH_DIR)/churn

.PHONY: bench bench-smoke
bench: check-deps $(LIB) $(BENCH_BINS)
	@AUTOCLOSE_LIB=$(abspath $(LIB)) BENCH_BIN=$(abspath $(BENCH_DIR)) tests/bench/run.sh

# The harness end to end at a tiny scale (about a minute): CI's check that make bench still runs.
bench-smoke: check-deps $(LIB) $(BENCH_BINS)
	@AUTOCLOSE_LIB=$(abspath $(LIB)) BENCH_BIN=$(abspath $(BENCH_DIR)) tests/bench/smoke.sh

$(BENCH_DIR)/%: tests/bench/%.c tests/bench/bench.c tests/bench/bench.h | $(BENCH_DIR)
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O2 -g -U_FORTIFY_SOURCE -o $@ $< tests/bench/bench.c

$(BENCH_DIR):
	mkdir -p $@

# ---- hardening: make test-asan test-tsan test-valgrind test-servers fuzz ---------------------
# The instrumented suites build into directories of their own (build-asan/, build-tsan/,
# build-fuzz/) with the rules above, through a sub-make. Their CFLAGS reach that sub-make through
# the environment: on its command line they would replace the `CFLAGS +=` above and lose -std,
# the warnings and -D_GNU_SOURCE. Each suite's script says what it runs and installs what it
# needs beyond scripts/install-deps.sh (valgrind, clang, the servers).
HARDEN_FIXTURES := $(BUILD)/fixtures/signal_storm $(BUILD)/fixtures/fd_limits \
                   $(BUILD)/fixtures/close_storm $(BUILD)/fixtures/quiet_fds
SAN_BASE        := -O1 -g -fno-omit-frame-pointer
ASAN_CFLAGS     := $(SAN_BASE) -fsanitize=address,undefined -fno-sanitize-recover=all
TSAN_CFLAGS     := $(SAN_BASE) -fsanitize=thread
FUZZ_CFLAGS     := $(SAN_BASE) -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_SECONDS    ?= 60

.PHONY: test-asan test-tsan test-valgrind test-servers fuzz sanitizer-build fuzz-build \
        clean-hardening format-check-hardening

# The integration suite runs these fixtures too.
integration fixtures: $(HARDEN_FIXTURES)

# What an instrumented suite runs, built in the sub-make's $(BUILD). The fixtures stay
# uninstrumented (their rules ignore CFLAGS): the tests preload the sanitizer runtime.
sanitizer-build: $(LIB) $(UNIT_BINS) $(FIXTURES) $(HARDEN_FIXTURES)

test-asan: check-deps
	@CFLAGS='$(ASAN_CFLAGS)' $(MAKE) --no-print-directory BUILD=build-asan sanitizer-build
	@CC='$(CC)' tests/sanitizers/run.sh asan build-asan

test-tsan: check-deps
	@CFLAGS='$(TSAN_CFLAGS)' $(MAKE) --no-print-directory BUILD=build-tsan sanitizer-build
	@CC='$(CC)' tests/sanitizers/run.sh tsan build-tsan

test-valgrind: check-deps $(LIB) $(UNIT_BINS) $(FIXTURES) $(HARDEN_FIXTURES)
	@tests/valgrind/run.sh $(BUILD)

test-servers: check-deps $(LIB) $(FIXTURES)
	@AUTOCLOSE_LIB=$(abspath $(LIB)) FIXTURES=$(abspath $(BUILD)/fixtures) tests/servers/run.sh

# tests/fuzz/run.sh installs clang and libFuzzer if needed, builds through fuzz-build below
# (in build-fuzz/, with clang) and runs each target for its share of FUZZ_SECONDS.
fuzz: check-deps
	@tests/fuzz/run.sh $(FUZZ_SECONDS)

fuzz-build: $(CORE_LIB) $(BUILD)/fuzz/fuzz_config $(BUILD)/fuzz/fuzz_ports

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(CORE_LIB) $(SHIM_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fsanitize=fuzzer $(SHIM_INCLUDE) -o $@ $< $(CORE_LIB)

format-check: format-check-hardening
format-check-hardening:
	@clang-format --dry-run -Werror tests/fuzz/*.c

clean: clean-hardening
clean-hardening:
	rm -rf build-asan build-tsan build-fuzz

# ---- Debian package: make deb, make test-deb -------------------------------------------------
# make deb builds $(BUILD)/libautoclose_<VERSION>-1_<arch>.deb with dpkg-buildpackage and
# debhelper, from a copy of the source tree in $(BUILD)/deb/src with scripts/debian/ as its
# debian/ (scripts/build-deb.sh). The package holds what `make install PREFIX=/usr` installs.
# make test-deb builds it, runs lintian, installs it (dpkg -i as root, else unpacked into a
# scratch root), runs the installed wrapper against a leaking server, and removes it again.
.PHONY: deb test-deb

deb:
	@scripts/install-deps.sh --check-or-install --deb
	@scripts/build-deb.sh '$(VERSION)' '$(BUILD)'

test-deb: check-deps $(FIXTURES)
	@scripts/install-deps.sh --check-or-install --deb
	@FIXTURES=$(abspath $(BUILD)/fixtures) tests/deb/run.sh '$(abspath $(BUILD))'
