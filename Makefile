# libautoclose — build, test and demo.
#   make          build build/libautoclose.so
#   make test     unit tests (cmocka) and integration tests (real loopback sockets)
#   make demo     the legacy-MOS simulator without and with the shim, side by side
#   make deps     install the Debian packages the build needs (make only checks them, and says
#                 what is missing; the test targets install what they need themselves)

# The one place the version is set: the library's start-up line, the daemon's and the wrapper's
# --version, the man pages and the Debian package all take it from here.
VERSION := 1.0.0

CC      ?= cc
BUILD   ?= build
WARN    := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -D_GNU_SOURCE
# -fexceptions: a wrapper's cleanup (a close mark, poll's borrowed flags) runs when
# pthread_cancel unwinds through it; it costs nothing on the normal path.
SHIM_CFLAGS := -fPIC -fvisibility=hidden -pthread -fexceptions -U_FORTIFY_SOURCE -DAC_VERSION='"$(VERSION)"'
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
# autoclose --check's helper: the library's own parser, reading the environment.
SETTINGS     := $(BUILD)/autoclose-settings
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
              $(BUILD)/fixtures/lockdown_server $(BUILD)/fixtures/cancel_close \
              $(BUILD)/fixtures/fork_probe $(BUILD)/fixtures/secure_probe \
              $(BUILD)/fixtures/shared_unread $(BUILD)/fixtures/errno_probe \
              $(BUILD)/fixtures/timeout_probe $(BUILD)/fixtures/thrd_cancel \
              $(BUILD)/fixtures/stderr_reuse $(BUILD)/fixtures/parked_server \
              $(BUILD)/fixtures/late_writer $(BUILD)/fixtures/vfork_server \
              $(BUILD)/fixtures/fork_handlers $(BUILD)/fixtures/spawn_server \
              $(BUILD)/fixtures/close_race $(BUILD)/fixtures/mos_server_static \
              $(BUILD)/fixtures/go_leaky_server $(BUILD)/fixtures/go_leaky_server_dynamic \
              $(BUILD)/fixtures/reuse_server \
              $(BUILD)/fixtures/slow_reader \
              $(BUILD)/fixtures/select_user $(BUILD)/fixtures/select_user.so \
              $(BUILD)/fixtures/nofile_via_system $(BUILD)/fixtures/nofile_via_spawn \
              $(BUILD)/fixtures/nofile_via_exec $(BUILD)/fixtures/nofile_via_dlopen \
              $(BUILD)/fixtures/fd_pass $(BUILD)/fixtures/reclaimed_probe \
              $(BUILD)/fixtures/fd_idiom $(BUILD)/fixtures/closeall_server \
              $(BUILD)/fixtures/passed_server $(BUILD)/fixtures/seccomp_deny \
              $(BUILD)/fixtures/at_pid \
              $(BUILD)/fixtures/fuse_stall $(BUILD)/fixtures/fuse_swap $(BUILD)/fixtures/cw_swarm \
              $(BUILD)/fixtures/exec_stuck $(BUILD)/fixtures/fd_hog \
              $(BUILD)/fixtures/lock_holder \
              $(BUILD)/fixtures/leak_sites $(BUILD)/fixtures/stripped/leak_sites \
              $(BUILD)/fixtures/dlopen_ctor $(BUILD)/fixtures/dlopen_ctor.so \
              $(BUILD)/fixtures/sites_dlclose $(BUILD)/fixtures/sites_dlclose_a.so \
              $(BUILD)/fixtures/sites_dlclose_b.so

.PHONY: all deps check-deps test-deps test unit integration demo fixtures clean format \
        format-check exports

all: check-deps $(LIB) $(DAEMON) $(SETTINGS)

# The Debian packages each target needs, by scripts/install-deps.sh's groups. The build only
# checks its own (gcc, make, libc6-dev, uthash-dev, libmicrohttpd-dev) and, when one is missing, names it with the
# apt-get command and stops: it never installs anything. make deps installs them (and, on amd64,
# the 32-bit library's toolchain). The test targets install what they need when it is missing
# (as root or with sudo -n; otherwise they print the command), so that CI's suites run on a
# fresh machine. DEPS_CHECKED=1 skips both: the package build (scripts/debian/rules) has had its
# Build-Depends checked by dpkg-buildpackage.
deps:
	scripts/install-deps.sh --build --lib32

check-deps:
	@[ -n "$(DEPS_CHECKED)" ] || scripts/install-deps.sh --check --build

test-deps:
	@[ -n "$(DEPS_CHECKED)" ] || scripts/install-deps.sh --check-or-install --build --lib32 --test

$(BUILD)/shim/%.o: shim/%.c $(SHIM_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SHIM_CFLAGS) $(SHIM_INCLUDE) -c -o $@ $<

# A SONAME, because the Debian package's checks (lintian) reject a shared object without one in
# a library directory; nothing links against it, so it carries no ABI version. LDFLAGS: the
# package build's hardening (-z now).
$(LIB): $(CORE_OBJS) $(PRELOAD_OBJS) $(WRAP_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -o $@ $^ $(LDLIBS_SHIM) -Wl,-z,defs \
		-Wl,-soname,libautoclose.so -Wl,--version-script=shim/preload/exports.map

# libmicrohttpd (--metrics-listen's HTTP server, shim/daemon/metrics_http.c) is loaded at run time,
# only when asked for: its header is needed to build, the library only to serve.
LDLIBS_DAEMON := -ldl -pthread
$(DAEMON): $(DAEMON_OBJS) $(CORE_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS_DAEMON)

$(SETTINGS): $(BUILD)/shim/tools/settings.o $(BUILD)/shim/core/config.o $(BUILD)/shim/core/text.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^

$(CORE_LIB): $(CORE_OBJS) $(PRELOAD_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/unit/%: tests/unit/%.c $(CORE_LIB) | $(BUILD)/unit
	$(CC) $(CFLAGS) -pthread $(SHIM_INCLUDE) -o $@ $< $(CORE_LIB) -lcmocka -ldl -pthread

# test_sites unloads a plugin after naming a site in it: the fixtures' sites_dlclose_a.so.
$(BUILD)/unit/test_sites: tests/unit/test_sites.c $(CORE_LIB) $(BUILD)/fixtures/sites_dlclose_a.so | $(BUILD)/unit
	$(CC) $(CFLAGS) -pthread $(SHIM_INCLUDE) -DSITES_PLUGIN='"$(abspath $(BUILD)/fixtures/sites_dlclose_a.so)"' \
		-o $@ $< $(CORE_LIB) -lcmocka -ldl -pthread

$(BUILD)/fixtures/mos_server: tests/fixtures/mos_server.c $(FIX_COMMON) tests/fixtures/mos_proto.h | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -U_FORTIFY_SOURCE -g -pthread -o $@ $< $(FIX_COMMON)

# The same server built fortified: its reads go through __read_chk, __recv_chk, __recvfrom_chk.
$(BUILD)/fixtures/mos_server_fortified: tests/fixtures/mos_server.c $(FIX_COMMON) tests/fixtures/mos_proto.h | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O2 -D_FORTIFY_SOURCE=2 -DMOS_FORTIFIED -g -pthread -o $@ $< $(FIX_COMMON)

# The FIONREAD event-loop server built fortified: its poll and ppoll go through __poll_chk and
# __ppoll_chk (an array whose size the compiler knows, a count it does not).
$(BUILD)/fixtures/ready_server_fortified: tests/fixtures/ready_server.c $(FIX_COMMON) tests/fixtures/mos_proto.h | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O2 -D_FORTIFY_SOURCE=2 -DREADY_FORTIFIED -g -pthread -o $@ $< $(FIX_COMMON)

# The same server linked statically (glibc's libc.a, from libc6-dev): no dynamic loader, so no
# library can be preloaded into it; only autoclosed can reclaim its connections.
$(BUILD)/fixtures/mos_server_static: tests/fixtures/mos_server.c $(FIX_COMMON) tests/fixtures/mos_proto.h | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -U_FORTIFY_SOURCE -g -pthread -static -o $@ $< $(FIX_COMMON)

# A leaking server in Go: its runtime makes its own system calls, so a preloaded library never
# sees them. Built off-network from the standard library alone (no module is fetched), statically
# (no cgo), with Go's caches inside $(BUILD) rather than in the user's home.
GO_FIXTURE_ENV := GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0 \
                  GOCACHE=$(abspath $(BUILD))/go/cache GOPATH=$(abspath $(BUILD))/go/path
$(BUILD)/fixtures/go_leaky_server: tests/fixtures/go/go.mod tests/fixtures/go/main.go | $(BUILD)/fixtures
	cd tests/fixtures/go && $(GO_FIXTURE_ENV) go build -trimpath -o $(abspath $@) .

# The same Go server linked dynamically (cgo and the system's linker): it names glibc's loader,
# yet its sockets are the Go runtime's, so the wrapper must refuse it too (t_tools_check).
$(BUILD)/fixtures/go_leaky_server_dynamic: tests/fixtures/go/go.mod tests/fixtures/go/main.go | $(BUILD)/fixtures
	cd tests/fixtures/go && $(subst CGO_ENABLED=0,CGO_ENABLED=1,$(GO_FIXTURE_ENV)) \
		go build -trimpath -ldflags=-linkmode=external -o $(abspath $@) .

# A select() user built fortified, so that FD_SET of a number from 1024 up aborts it (__fdelt_chk)
# rather than overwrite its stack: as a program, and as a plugin for dlopen. The programs that
# start or load it are built once per way, each importing only that one function.
$(BUILD)/fixtures/select_user: tests/fixtures/select_user.c | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O2 -D_FORTIFY_SOURCE=2 -g -o $@ $<
$(BUILD)/fixtures/select_user.so: tests/fixtures/select_user.c | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O2 -D_FORTIFY_SOURCE=2 -DSELECT_USER_PLUGIN -g \
		-fPIC -shared -o $@ $<
$(BUILD)/fixtures/nofile_via_%: tests/fixtures/nofile_starter.c | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -g -DVIA_$* -o $@ $<

# The launcher that puts a program under a hardened systemd unit's seccomp filter: libseccomp.
$(BUILD)/fixtures/hardened_exec: tests/fixtures/hardened_exec.c | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -g -o $@ $< -lseccomp

# The launcher that makes chosen system calls fail with a chosen errno: libseccomp too.
$(BUILD)/fixtures/seccomp_deny: tests/fixtures/seccomp_deny.c | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -g -o $@ $< -lseccomp

# A server that installs its own seccomp allow-list after start-up: libseccomp too.
$(BUILD)/fixtures/lockdown_server: tests/fixtures/lockdown_server.c $(FIX_COMMON) tests/fixtures/mos_proto.h | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -g -pthread -o $@ $< $(FIX_COMMON) -lseccomp

# The server with two leaking code paths (t_leak_sites): -rdynamic puts its functions in the
# dynamic symbol table too, where dladdr finds them; the stripped copy keeps only that, under the
# same file name (its log lines must name the same module and offsets).
$(BUILD)/fixtures/leak_sites: tests/fixtures/leak_sites.c $(FIX_COMMON) tests/fixtures/mos_proto.h | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -g -rdynamic -pthread -o $@ $< $(FIX_COMMON)
$(BUILD)/fixtures/stripped/leak_sites: $(BUILD)/fixtures/leak_sites
	@mkdir -p $(@D)
	strip --strip-all -o $@ $<

# The plugin whose constructor runs inside dlopen, holding the loader's lock (t_dlopen_ctor).
$(BUILD)/fixtures/dlopen_ctor.so: tests/fixtures/dlopen_ctor.c $(FIX_COMMON) tests/fixtures/mos_proto.h | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -g -DDLOPEN_CTOR_PLUGIN -fPIC -shared -pthread \
		-o $@ $< $(FIX_COMMON)

# The two plugins t_sites_dlclose unloads and swaps: built alike, so the loader maps b where a was.
$(BUILD)/fixtures/sites_dlclose_%.so: tests/fixtures/sites_dlclose.c tests/fixtures/mos_proto.h | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -g -DSITES_DLCLOSE_PLUGIN=$* -fPIC -shared -o $@ $<

$(BUILD)/fixtures/%: tests/fixtures/%.c $(FIX_COMMON) tests/fixtures/mos_proto.h | $(BUILD)/fixtures
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -g -pthread -o $@ $< $(FIX_COMMON)

fixtures: $(FIXTURES)

$(BUILD)/unit $(BUILD)/fixtures:
	mkdir -p $@

unit: test-deps $(UNIT_BINS)
	@tests/unit/run.sh $(UNIT_BINS)

integration: test-deps $(LIB) $(DAEMON) $(SETTINGS) $(FIXTURES)
	@AUTOCLOSE_LIB=$(abspath $(LIB)) FIXTURES=$(abspath $(BUILD)/fixtures) AUTOCLOSED=$(abspath $(DAEMON)) \
		tests/integration/run.sh

test: test-deps exports format-check unit integration

exports: $(LIB)
	@scripts/check-exports.sh $(LIB)

demo: test-deps $(LIB) $(FIXTURES)
	@AUTOCLOSE_LIB=$(abspath $(LIB)) FIXTURES=$(abspath $(BUILD)/fixtures) scripts/demo.sh

FORMATTED := shim/*/*.c shim/*/*.h tests/unit/*.c tests/unit/musl/*.h tests/fixtures/*.c tests/fixtures/*.h \
             tests/bench/*.c tests/bench/*.h

format: test-deps
	clang-format -i $(FORMATTED)

format-check: test-deps
	@clang-format --dry-run -Werror $(FORMATTED) && echo "format: clean"

clean:
	rm -rf $(BUILD)

# ---------------------------------------------------------------------------------------------
# install, uninstall: the library, the operator tools (scripts/) with the wrapper's --check helper
# and its report script, their man pages and the systemd drop-in example (the template with the
# library's path filled in and its guard, the lines marked @AUTOCLOSE_TEMPLATE@, left out).
#   make install   [PREFIX=/usr/local] [DESTDIR=/staging/root]
#   make uninstall [PREFIX=/usr/local] [DESTDIR=/staging/root]
# The library goes into the multiarch directory the compiler names (lib/x86_64-linux-gnu on
# Debian), next to the system's own libraries; plain lib where it names none. INSTALL_LIB names
# an already built library to install instead of building $(LIB) (the install test uses it so
# that it never rebuilds the library other tests are running with); INSTALL_DAEMON and
# INSTALL_SETTINGS likewise.
PREFIX      ?= /usr/local
DESTDIR     ?=
MULTIARCH    = $(shell gcc -print-multiarch 2>/dev/null)
LIBDIR       = $(PREFIX)/lib$(if $(MULTIARCH),/$(MULTIARCH))
BINDIR       = $(PREFIX)/bin
SBINDIR      = $(PREFIX)/sbin
# The daemon's unit: where systemd looks for units of packages (/usr/lib/systemd/system on
# Debian 12, whose /lib is /usr/lib) and of local installs (/usr/local/lib/systemd/system). The
# Debian package's rules set /lib/systemd/system, where Debian 12's dh_installsystemd looks.
UNITDIR      = $(PREFIX)/lib/systemd/system
MANDIR       = $(PREFIX)/share/man
# autoclose --check's helper (autoclose-settings): run by the wrapper only.
HELPERDIR    = $(PREFIX)/libexec/libautoclose
DOCDIR       = $(PREFIX)/share/doc/libautoclose
INSTALL_LIB ?= $(LIB)
INSTALL_SETTINGS ?= $(SETTINGS)
TOOLS       := autoclose mos-close-test tcpstates
MAN1        := autoclose.1 mos-close-test.1 tcpstates.1
MAN7        := libautoclose.7
MAN8        := autoclosed.8
INSTALL_DAEMON ?= $(DAEMON)
# The installed wrapper and drop-in name the library's final path; the wrapper also gets that
# path relative to BINDIR, so that a staged (DESTDIR) or moved installation still finds it. The
# wrapper and the man pages (on their .TH line) get VERSION; each page goes to the man<section>
# its suffix names.
INSTALLED_LIB = $(LIBDIR)/libautoclose.so
RELATIVE_LIB  = $(shell realpath -m --relative-to='$(BINDIR)' '$(LIBDIR)')/libautoclose.so
# The preload tree (scripts/preload-tree.sh): one LD_PRELOAD value for every loader,
# '$(PRELOADDIR)/$$LIB/libautoclose.so', which the wrapper and the drop-in use.
PRELOADDIR    = $(PREFIX)/lib/libautoclose
PRELOAD_VALUE = $(PRELOADDIR)/$$LIB/libautoclose.so
RELATIVE_PRELOADDIR = $(shell realpath -m --relative-to='$(BINDIR)' '$(PRELOADDIR)')
INSTALLED_SETTINGS = $(HELPERDIR)/autoclose-settings
RELATIVE_SETTINGS  = $(shell realpath -m --relative-to='$(BINDIR)' '$(HELPERDIR)')/autoclose-settings
# autoclose report's script, run by the wrapper.
INSTALLED_REPORT = $(HELPERDIR)/autoclose-report
RELATIVE_REPORT  = $(shell realpath -m --relative-to='$(BINDIR)' '$(HELPERDIR)')/autoclose-report
SUBST = sed -e 's|@AUTOCLOSE_INSTALLED_LIB@|$(INSTALLED_LIB)|g' \
            -e 's|@AUTOCLOSE_RELATIVE_LIB@|$(RELATIVE_LIB)|g' -e 's|@AUTOCLOSE_BINDIR@|$(BINDIR)|g' \
            -e 's|@AUTOCLOSE_INSTALLED_SETTINGS@|$(INSTALLED_SETTINGS)|g' \
            -e 's|@AUTOCLOSE_RELATIVE_SETTINGS@|$(RELATIVE_SETTINGS)|g' \
            -e 's|@AUTOCLOSE_INSTALLED_REPORT@|$(INSTALLED_REPORT)|g' \
            -e 's|@AUTOCLOSE_RELATIVE_REPORT@|$(RELATIVE_REPORT)|g' \
            -e 's|@AUTOCLOSE_SBINDIR@|$(SBINDIR)|g' \
            -e 's|@AUTOCLOSE_PRELOAD_DIR@|$(PRELOADDIR)|g' \
            -e 's|@AUTOCLOSE_RELATIVE_PRELOAD_DIR@|$(RELATIVE_PRELOADDIR)|g' \
            -e 's|@AUTOCLOSE_PRELOAD@|$(PRELOAD_VALUE)|g' \
            -e 's|@AUTOCLOSE_VERSION@|$(VERSION)|g'

.PHONY: install uninstall

install: $(INSTALL_LIB) $(INSTALL_DAEMON) $(INSTALL_SETTINGS)
	install -d '$(DESTDIR)$(LIBDIR)' '$(DESTDIR)$(BINDIR)' '$(DESTDIR)$(MANDIR)/man1' \
		'$(DESTDIR)$(MANDIR)/man7' '$(DESTDIR)$(DOCDIR)' '$(DESTDIR)$(SBINDIR)' \
		'$(DESTDIR)$(MANDIR)/man8' '$(DESTDIR)$(UNITDIR)' '$(DESTDIR)$(HELPERDIR)'
	install -m 0755 '$(INSTALL_DAEMON)' '$(DESTDIR)$(SBINDIR)/autoclosed'
	$(SUBST) scripts/systemd/autoclosed.service >'$(DESTDIR)$(UNITDIR)/autoclosed.service'
	chmod 0644 '$(DESTDIR)$(UNITDIR)/autoclosed.service'
	install -m 0644 '$(INSTALL_LIB)' '$(DESTDIR)$(INSTALLED_LIB)'
	$(SUBST) scripts/autoclose >'$(DESTDIR)$(BINDIR)/autoclose'
	chmod 0755 '$(DESTDIR)$(BINDIR)/autoclose'
	install -m 0755 '$(INSTALL_SETTINGS)' '$(DESTDIR)$(INSTALLED_SETTINGS)'
	install -m 0755 scripts/autoclose-report '$(DESTDIR)$(INSTALLED_REPORT)'
	install -m 0755 scripts/mos-close-test scripts/tcpstates '$(DESTDIR)$(BINDIR)/'
	for m in $(MAN1) $(MAN7) $(MAN8); do \
		$(SUBST) "scripts/man/$$m" >'$(DESTDIR)$(MANDIR)'/man$${m##*.}/$$m && \
		chmod 0644 '$(DESTDIR)$(MANDIR)'/man$${m##*.}/$$m || exit 1; \
	done
	$(SUBST) -e '/@AUTOCLOSE_TEMPLATE@/d' scripts/systemd/autoclose.conf \
		>'$(DESTDIR)$(DOCDIR)/autoclose.conf'
	chmod 0644 '$(DESTDIR)$(DOCDIR)/autoclose.conf'
	scripts/preload-tree.sh '$(DESTDIR)$(PRELOADDIR)' $(call preload_entries,$(DESTDIR)$(INSTALLED_LIB),$(DESTDIR)$(INSTALLED_LIB32),$(DESTDIR)$(INSTALLED_LIBMUSL))

uninstall:
	rm -f '$(DESTDIR)$(INSTALLED_LIB)' $(foreach t,$(TOOLS),'$(DESTDIR)$(BINDIR)/$(t)') \
		$(foreach m,$(MAN1),'$(DESTDIR)$(MANDIR)/man1/$(m)') \
		$(foreach m,$(MAN7),'$(DESTDIR)$(MANDIR)/man7/$(m)') '$(DESTDIR)$(DOCDIR)/autoclose.conf' \
		'$(DESTDIR)$(SBINDIR)/autoclosed' $(foreach m,$(MAN8),'$(DESTDIR)$(MANDIR)/man8/$(m)') \
		'$(DESTDIR)$(UNITDIR)/autoclosed.service' '$(DESTDIR)$(INSTALLED_SETTINGS)' \
		'$(DESTDIR)$(INSTALLED_REPORT)'
	scripts/preload-tree.sh '$(DESTDIR)$(PRELOADDIR)' $(call preload_entries,,,)
	find '$(DESTDIR)$(PRELOADDIR)' -depth -type d -empty -delete 2>/dev/null || true
	rmdir '$(DESTDIR)$(DOCDIR)' '$(DESTDIR)$(HELPERDIR)' 2>/dev/null || true

# ---- benchmarks: make bench ------------------------------------------------------------------
# The same workloads with and without the shim, alternating; tests/bench/run.sh says what is
# measured and which BENCH_* variables scale it (e.g. make bench BENCH_SCALES="1000 10000").
# Built without fortification so the programs call read, recv, poll... themselves, not the _chk
# forms.
BENCH_DIR  := $(BUILD)/bench
BENCH_BINS := $(BENCH_DIR)/hotpath $(BENCH_DIR)/leak_server $(BENCH_DIR)/scale $(BENCH_DIR)/churn \
              $(BENCH_DIR)/forks $(BENCH_DIR)/pileup $(BENCH_DIR)/scan_churn

.PHONY: bench bench-smoke
bench: test-deps $(LIB) $(DAEMON) $(BENCH_BINS)
	@AUTOCLOSE_LIB=$(abspath $(LIB)) AUTOCLOSED=$(abspath $(DAEMON)) BENCH_BIN=$(abspath $(BENCH_DIR)) \
		tests/bench/run.sh

# The harness end to end at a tiny scale (about a minute): CI's check that make bench still runs.
bench-smoke: test-deps $(LIB) $(DAEMON) $(BENCH_BINS)
	@AUTOCLOSE_LIB=$(abspath $(LIB)) AUTOCLOSED=$(abspath $(DAEMON)) BENCH_BIN=$(abspath $(BENCH_DIR)) \
		tests/bench/smoke.sh

$(BENCH_DIR)/%: tests/bench/%.c tests/bench/bench.c tests/bench/bench.h | $(BENCH_DIR)
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O2 -g -U_FORTIFY_SOURCE -o $@ $< tests/bench/bench.c

$(BENCH_DIR):
	mkdir -p $@

# ---- hardening: make test-asan test-tsan test-valgrind test-servers fuzz ---------------------
# The instrumented suites build into directories of their own (build-asan/, build-tsan/,
# build-fuzz/) with the rules above, through a sub-make. Their CFLAGS reach that sub-make through
# the environment: on its command line they would replace the `CFLAGS +=` above and lose -std,
# the warnings and -D_GNU_SOURCE. Each suite's script says what it runs and installs what it
# needs beyond scripts/install-deps.sh --test (valgrind, clang, the servers).
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
sanitizer-build: $(LIB) $(DAEMON) $(SETTINGS) $(UNIT_BINS) $(FIXTURES) $(HARDEN_FIXTURES)

test-asan: test-deps
	@CFLAGS='$(ASAN_CFLAGS)' $(MAKE) --no-print-directory BUILD=build-asan sanitizer-build
	@CC='$(CC)' tests/sanitizers/run.sh asan build-asan

test-tsan: test-deps
	@CFLAGS='$(TSAN_CFLAGS)' $(MAKE) --no-print-directory BUILD=build-tsan sanitizer-build
	@CC='$(CC)' tests/sanitizers/run.sh tsan build-tsan

test-valgrind: test-deps $(LIB) $(DAEMON) $(UNIT_BINS) $(FIXTURES) $(HARDEN_FIXTURES)
	@tests/valgrind/run.sh $(BUILD)

test-servers: test-deps $(LIB) $(FIXTURES)
	@AUTOCLOSE_LIB=$(abspath $(LIB)) FIXTURES=$(abspath $(BUILD)/fixtures) tests/servers/run.sh

# tests/fuzz/run.sh installs clang and libFuzzer if needed, builds through fuzz-build below
# (in build-fuzz/, with clang) and runs each target for its share of FUZZ_SECONDS.
fuzz: test-deps
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

# ---- 32-bit x86: make lib32 (part of make, make install, make test) --------------------------
# The same library built with -m32 into build/i386/, for 32-bit programs: scripts/autoclose
# chooses it by the program's ELF class. Built when the compiler links a 32-bit program (Debian:
# gcc-12-multilib and libc6-dev-i386, which make deps and the test targets install on amd64);
# otherwise one line says that it is skipped and why, and nothing fails. The probe runs in the
# recipe, after a test target's test-deps has installed what was missing, so the build itself is
# a sub-make.
#   make lib32                       the 32-bit library alone
#   make build/i386/fixtures/NAME    a fixture built 32-bit (t_i386 runs mos_server)
# make install puts it into lib/<32-bit multiarch> (lib/i386-linux-gnu) beside the 64-bit one;
# INSTALL_LIB32 names an already built one instead (empty: none).
LIB32_DIR      := $(BUILD)/i386
LIB32          := $(LIB32_DIR)/libautoclose.so
LIB32_OBJS     := $(patsubst $(BUILD)/%,$(LIB32_DIR)/%,$(CORE_OBJS) $(PRELOAD_OBJS) $(WRAP_OBJS))
FIXTURE32_BINS := $(LIB32_DIR)/fixtures/mos_server
MULTIARCH32     = $(shell gcc -m32 -print-multiarch 2>/dev/null)
LIBDIR32        = $(PREFIX)/lib$(if $(MULTIARCH32),/$(MULTIARCH32),32)
INSTALLED_LIB32 = $(LIBDIR32)/libautoclose.so
RELATIVE_LIB32  = $(shell realpath -m --relative-to='$(BINDIR)' '$(LIBDIR32)')/libautoclose.so
INSTALL_LIB32  ?= $(LIB32)
# The installed wrapper learns where the 32-bit library goes, built or not: it refuses a 32-bit
# program only when the library is not there.
SUBST += -e 's|@AUTOCLOSE_INSTALLED_LIB32@|$(INSTALLED_LIB32)|g' \
         -e 's|@AUTOCLOSE_RELATIVE_LIB32@|$(RELATIVE_LIB32)|g'

# The kernel's asm/ headers, which <sys/socket.h> and <errno.h> include, are in the 64-bit
# multiarch directory; -m32 looks in i386-linux-gnu. Debian's gcc-multilib package is nothing but
# a /usr/include/asm link to them, and it conflicts with every cross compiler (the aarch64 one
# below included), so install-deps.sh installs the real 32-bit pieces (gcc-12-multilib,
# libc6-dev-i386) and the same link is made here, in build/i386/include, searched last.
M32 = -m32 -idirafter $(LIB32_DIR)/include
M32_ASM = /usr/include/$(MULTIARCH)/asm

# try_m32 TARGETS: builds TARGETS when $(CC) $(M32) links a threaded program that includes the
# socket headers; otherwise prints one line with the compiler's first complaint and removes stale
# copies (so that neither the tests nor make install pick up a library this toolchain did not
# build).
M32_ASM_LINK = mkdir -p $(LIB32_DIR)/include && \
	{ [ ! -d $(M32_ASM) ] || ln -sfn $(M32_ASM) $(LIB32_DIR)/include/asm; }
try_m32 = $(M32_ASM_LINK) && t=$$(mktemp -d) && \
	printf '\#include <errno.h>\n\#include <stdio.h>\n\#include <sys/socket.h>\nint main(void) { return puts("") == EOF ? errno : 0; }\n' >"$$t/probe.c" && \
	if $(CC) $(M32) -o "$$t/probe" "$$t/probe.c" -pthread -ldl >"$$t/why" 2>&1; then \
		rm -rf "$$t" && $(MAKE) --no-print-directory $(1); \
	else \
		why=$$(grep -m 1 -iE 'error|cannot|unrecognized|not found' "$$t/why" || head -n 1 "$$t/why"); \
		rm -rf "$$t" $(1); \
		echo "make: 32-bit library skipped: '$(CC) -m32' cannot build a 32-bit program ($$why);" \
			"on amd64 make deps installs gcc-12-multilib and libc6-dev-i386"; \
	fi

.PHONY: lib32 lib32-tests install-lib32 uninstall-lib32 exports32

all: lib32
lib32: check-deps
	+@$(call try_m32,$(LIB32))

# The integration tests find the 32-bit library and server here (t_i386 skips without them).
integration: lib32-tests
integration: export AUTOCLOSE_LIB32 := $(abspath $(LIB32))
integration: export FIXTURES32 := $(abspath $(LIB32_DIR)/fixtures)
lib32-tests: test-deps
	+@$(call try_m32,$(LIB32) $(FIXTURE32_BINS))

$(LIB32_DIR)/shim/%.o: shim/%.c $(SHIM_HEADERS)
	@mkdir -p $(@D) && $(M32_ASM_LINK)
	$(CC) $(M32) $(CFLAGS) $(SHIM_CFLAGS) $(SHIM_INCLUDE) -c -o $@ $<

$(LIB32): $(LIB32_OBJS)
	$(CC) $(M32) $(CFLAGS) $(LDFLAGS) -shared -o $@ $^ $(LDLIBS_SHIM) -Wl,-z,defs \
		-Wl,-soname,libautoclose.so -Wl,--version-script=shim/preload/exports.map

$(LIB32_DIR)/fixtures/mos_server: tests/fixtures/mos_server.c $(FIX_COMMON) tests/fixtures/mos_proto.h
	@mkdir -p $(@D) && $(M32_ASM_LINK)
	$(CC) $(M32) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -U_FORTIFY_SOURCE -g -pthread -o $@ $< $(FIX_COMMON)

$(LIB32_DIR)/fixtures/%: tests/fixtures/%.c $(FIX_COMMON) tests/fixtures/mos_proto.h
	@mkdir -p $(@D) && $(M32_ASM_LINK)
	$(CC) $(M32) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -g -pthread -o $@ $< $(FIX_COMMON)

# Its exports are checked too when it was built.
exports: exports32
exports32:
	@if [ -f $(LIB32) ]; then scripts/check-exports.sh $(LIB32); fi

install: install-lib32
install-lib32:
ifeq ($(INSTALL_LIB32),$(LIB32))
	+@$(call try_m32,$(LIB32))
endif
	@if [ -n '$(INSTALL_LIB32)' ]; then \
		[ -f '$(INSTALL_LIB32)' ] || [ '$(INSTALL_LIB32)' = '$(LIB32)' ] || \
			{ echo "make: INSTALL_LIB32='$(INSTALL_LIB32)' does not exist" >&2; exit 1; }; \
		if [ -f '$(INSTALL_LIB32)' ]; then \
			echo "install -m 0644 '$(INSTALL_LIB32)' '$(DESTDIR)$(INSTALLED_LIB32)'"; \
			install -d '$(DESTDIR)$(LIBDIR32)' && \
			install -m 0644 '$(INSTALL_LIB32)' '$(DESTDIR)$(INSTALLED_LIB32)'; \
		fi; \
	fi

uninstall: uninstall-lib32
uninstall-lib32:
	rm -f '$(DESTDIR)$(INSTALLED_LIB32)'

# ---- musl: make libmusl (part of make, make install, make test) -----------------------------
# The same library built with musl-gcc into build/musl/, for programs linked against musl (whose
# loader, /lib/ld-musl-ARCH.so.1, cannot load the glibc one): scripts/autoclose chooses it by the
# program's ELF interpreter. What differs between the two libcs is in shim/core/libc_compat.h.
# Built where musl-gcc is (Debian: musl-tools, which the test targets install); otherwise one
# line says that it is skipped, and nothing fails. The check runs in the recipe, after a test
# target's test-deps has installed what was missing, so the build itself is a sub-make.
#   make libmusl                     the musl library alone
#   make build/musl/fixtures/NAME    a fixture built against musl (the t_musl_* tests run them)
# make install puts it into lib/<arch>-linux-musl (the multiarch name with -musl for -gnu:
# lib/x86_64-linux-musl), the directory of Debian's musl-dev; it is preloaded by its full path. INSTALL_LIBMUSL names an already
# built one instead (empty: none).
MUSL_CC        ?= musl-gcc
MUSL_DIR       := $(BUILD)/musl
LIBMUSL        := $(MUSL_DIR)/libautoclose.so
MUSL_OBJS      := $(patsubst $(BUILD)/%,$(MUSL_DIR)/%,$(CORE_OBJS) $(PRELOAD_OBJS) $(WRAP_OBJS))
MUSL_FIXTURES  := $(addprefix $(MUSL_DIR)/fixtures/,mos_server ready_server neglect_server fork_storm \
                  cancel_close cancel_poll cancel_probe nofile_via_system halfclose_server \
                  fork_inherit longjmp_poll longjmp_close errno_probe leak_sites)
MUSL_UNIT_BINS := $(UNIT_BINS:$(BUILD)/unit/%=$(MUSL_DIR)/unit/%)
MUSL_MULTIARCH  = $(if $(MULTIARCH),$(subst -gnu,-musl,$(MULTIARCH)),$(shell uname -m)-linux-musl)
LIBDIRMUSL      = $(PREFIX)/lib/$(MUSL_MULTIARCH)
INSTALLED_LIBMUSL = $(LIBDIRMUSL)/libautoclose.so
RELATIVE_LIBMUSL  = $(shell realpath -m --relative-to='$(BINDIR)' '$(LIBDIRMUSL)')/libautoclose.so
INSTALL_LIBMUSL  ?= $(LIBMUSL)
SUBST += -e 's|@AUTOCLOSE_INSTALLED_LIBMUSL@|$(INSTALLED_LIBMUSL)|g' \
         -e 's|@AUTOCLOSE_RELATIVE_LIBMUSL@|$(RELATIVE_LIBMUSL)|g'

# musl-gcc searches musl's headers alone: the kernel's (linux/, asm/, asm-generic/) and uthash.h
# are linked into build/musl/include, searched last, as Alpine's linux-headers would provide.
MUSL_INC = -idirafter $(MUSL_DIR)/include
MUSL_HDR_LINK = mkdir -p $(MUSL_DIR)/include && \
	for h in /usr/include/linux /usr/include/asm-generic /usr/include/$(MULTIARCH)/asm \
		/usr/include/uthash.h; do [ ! -e $$h ] || ln -sfn $$h $(MUSL_DIR)/include/; done

# try_musl TARGETS: builds TARGETS where $(MUSL_CC) is; otherwise one line, and stale copies go.
try_musl = if command -v $(MUSL_CC) >/dev/null; then \
		$(MAKE) --no-print-directory $(1); \
	else \
		rm -rf $(1); \
		echo "make: musl library skipped: no $(MUSL_CC) (Debian: musl-tools; make test installs it)"; \
	fi

.PHONY: libmusl musl-tests install-libmusl uninstall-libmusl exports-musl musl-unit

all: libmusl
libmusl: check-deps
	+@$(call try_musl,$(LIBMUSL))

integration: musl-tests
integration: export AUTOCLOSE_LIBMUSL := $(abspath $(LIBMUSL))
integration: export FIXTURES_MUSL := $(abspath $(MUSL_DIR)/fixtures)
musl-tests: test-deps
	+@$(call try_musl,$(LIBMUSL) $(MUSL_FIXTURES))

# Without -fexceptions: musl's pthread_cancel does not unwind (AC_ON_CANCEL does that work), and
# the unwinder it would link, Debian's libgcc_eh.a, is glibc's.
$(MUSL_DIR)/shim/%.o: shim/%.c $(SHIM_HEADERS)
	@mkdir -p $(@D) && $(MUSL_HDR_LINK)
	$(MUSL_CC) $(MUSL_INC) $(CFLAGS) $(filter-out -fexceptions,$(SHIM_CFLAGS)) $(SHIM_INCLUDE) -c -o $@ $<

# musl has libdl and libpthread inside libc.so: nothing more to link. The ELF header's OS/ABI
# byte (EI_OSABI, offset 7) is then set to 255: a program the musl server starts inherits its
# LD_PRELOAD, and glibc's loader, for a glibc program (a Debian /bin/sh through system()), skips
# a file of another OS/ABI with one line ("cannot be preloaded ... ignored") rather than stop the
# program on this library's musl libc.so. musl's loader does not read that byte.
$(LIBMUSL): $(MUSL_OBJS)
	$(MUSL_CC) $(CFLAGS) $(LDFLAGS) -shared -o $@.tmp $^ -Wl,-z,defs \
		-Wl,-soname,libautoclose.so -Wl,--version-script=shim/preload/exports.map
	printf '\377' | dd of=$@.tmp bs=1 seek=7 conv=notrunc status=none
	mv -f $@.tmp $@

# A musl program that starts another through system() (musl's posix_spawn of /bin/sh).
$(MUSL_DIR)/fixtures/nofile_via_system: tests/fixtures/nofile_starter.c
	@mkdir -p $(@D)
	$(MUSL_CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -g -DVIA_system -o $@ $<

$(MUSL_DIR)/fixtures/%: tests/fixtures/%.c $(FIX_COMMON) tests/fixtures/mos_proto.h
	@mkdir -p $(@D) && $(MUSL_HDR_LINK)
	$(MUSL_CC) $(MUSL_INC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -g -pthread -o $@ $< $(FIX_COMMON)

# make bench: the hot path under musl too, beside glibc's (tests/bench/run.sh's musl section),
# with hotpath built against musl.
BENCH_MUSL := $(BENCH_DIR)/musl/hotpath
.PHONY: bench-musl
bench bench-smoke: bench-musl
bench bench-smoke: export AUTOCLOSE_LIBMUSL := $(abspath $(LIBMUSL))
bench bench-smoke: export BENCH_BIN_MUSL := $(abspath $(BENCH_DIR)/musl)
bench-musl: test-deps
	+@$(call try_musl,$(LIBMUSL) $(BENCH_MUSL))

$(BENCH_DIR)/musl/%: tests/bench/%.c tests/bench/bench.c tests/bench/bench.h
	@mkdir -p $(@D) && $(MUSL_HDR_LINK)
	$(MUSL_CC) $(MUSL_INC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O2 -g -U_FORTIFY_SOURCE -o $@ $< \
		tests/bench/bench.c

# make unit: the unit tests built against musl too, with the musl build's objects. Debian's
# libcmocka is built against glibc and cannot be linked into a musl program: tests/unit/musl/
# holds the part of cmocka's API the tests use.
MUSL_CORE_LIB := $(MUSL_DIR)/libautoclose_core.a
.PHONY: musl-unit
unit: musl-unit
musl-unit: test-deps
	+@$(call try_musl,$(MUSL_UNIT_BINS))
	@if [ -x '$(firstword $(MUSL_UNIT_BINS))' ]; then tests/unit/run.sh $(MUSL_UNIT_BINS); fi

$(MUSL_CORE_LIB): $(patsubst $(BUILD)/%,$(MUSL_DIR)/%,$(CORE_OBJS) $(PRELOAD_OBJS))
	rm -f $@ && ar rcs $@ $^

$(MUSL_DIR)/unit/%: tests/unit/%.c $(MUSL_CORE_LIB) tests/unit/musl/cmocka.h
	@mkdir -p $(@D)
	$(MUSL_CC) $(MUSL_INC) -Itests/unit/musl $(CFLAGS) -pthread $(SHIM_INCLUDE) -o $@ $< \
		$(MUSL_CORE_LIB)

# Its exports are checked too (built first where musl-gcc is): the list less the fortified entry
# points.
exports: exports-musl
exports-musl:
	+@$(call try_musl,$(LIBMUSL))
	@if [ -f $(LIBMUSL) ]; then scripts/check-exports.sh --musl $(LIBMUSL); fi

install: install-libmusl
install-libmusl:
ifeq ($(INSTALL_LIBMUSL),$(LIBMUSL))
	+@$(call try_musl,$(LIBMUSL))
endif
	@if [ -n '$(INSTALL_LIBMUSL)' ]; then \
		[ -f '$(INSTALL_LIBMUSL)' ] || [ '$(INSTALL_LIBMUSL)' = '$(LIBMUSL)' ] || \
			{ echo "make: INSTALL_LIBMUSL='$(INSTALL_LIBMUSL)' does not exist" >&2; exit 1; }; \
		if [ -f '$(INSTALL_LIBMUSL)' ]; then \
			echo "install -m 0644 '$(INSTALL_LIBMUSL)' '$(DESTDIR)$(INSTALLED_LIBMUSL)'"; \
			install -d '$(DESTDIR)$(LIBDIRMUSL)' && \
			install -m 0644 '$(INSTALL_LIBMUSL)' '$(DESTDIR)$(INSTALLED_LIBMUSL)'; \
		fi; \
	fi

uninstall: uninstall-libmusl
uninstall-libmusl:
	rm -f '$(DESTDIR)$(INSTALLED_LIBMUSL)'

# ---- the preload tree: make (build/preload), make install ($(PREFIX)/lib/libautoclose) ----------
# Relative links to each built library under the name its loader expands $$LIB to (glibc's:
# lib/<multiarch>, or lib32 for Debian's libc6-i386; musl's: $$LIB itself, unexpanded), so that
# LD_PRELOAD='<tree>/$$LIB/libautoclose.so' gives every program its own C library's build, and
# the children it starts theirs (scripts/preload-tree.sh says more). The wrapper preloads that.
# lib64 and lib: what other glibc builds expand $$LIB to (upstream's, Fedora's: lib64; Arch's:
# lib), for a program run by a loader of its own; the native library there, as its full path was.
# preload_entries GLIBC,GLIBC32,MUSL: the tree's ENTRY=LIBRARY pairs.
preload_entries = $(if $(MULTIARCH),'lib/$(MULTIARCH)=$(1)') 'lib64=$(1)' 'lib=$(1)' \
	$(if $(MULTIARCH32),'lib/$(MULTIARCH32)=$(2)' 'lib32=$(2)') '$$LIB=$(3)'
# make builds it after the libraries; the tests after the test targets' builds of them (which
# install what is missing first, where make alone only checks).
make_preload_tree = @scripts/preload-tree.sh $(BUILD)/preload \
	$(call preload_entries,$(LIB),$(LIB32),$(LIBMUSL))
.PHONY: preload-tree preload-tree-tests
all: preload-tree
preload-tree: $(LIB) lib32 libmusl
	$(make_preload_tree)
integration: preload-tree-tests
preload-tree-tests: $(LIB) lib32-tests musl-tests
	$(make_preload_tree)

# ---- cross-build: make cross-aarch64 ---------------------------------------------------------
# The library alone (no tests: nothing here runs it) cross-compiled for 64-bit ARM into
# build/aarch64/, so that no architecture's build breaks unnoticed (the vfork wrapper is
# assembly per architecture); then checked: an AArch64 shared object that exports exactly the
# wrapped functions. Debian's gcc-aarch64-linux-gnu and libc6-dev-arm64-cross, which the target
# installs first (scripts/install-deps.sh --cross), so the build itself is a sub-make;
# AARCH64_CROSS names another toolchain prefix (empty on an arm64 machine itself).
AARCH64_CROSS ?= aarch64-linux-gnu-
AARCH64_DIR   := $(BUILD)/aarch64
LIB_AARCH64   := $(AARCH64_DIR)/libautoclose.so
AARCH64_OBJS  := $(patsubst $(BUILD)/%,$(AARCH64_DIR)/%,$(CORE_OBJS) $(PRELOAD_OBJS) $(WRAP_OBJS))

.PHONY: cross-aarch64

cross-aarch64:
	@[ -n "$(DEPS_CHECKED)" ] || scripts/install-deps.sh --check-or-install --build --cross
	@$(MAKE) --no-print-directory $(LIB_AARCH64)
	@$(AARCH64_CROSS)readelf -h $(LIB_AARCH64) >$(AARCH64_DIR)/elf-header.txt
	@grep -Eq 'Type: +DYN ' $(AARCH64_DIR)/elf-header.txt && \
		grep -Eq 'Machine: +AArch64$$' $(AARCH64_DIR)/elf-header.txt || \
		{ echo "cross-aarch64: $(LIB_AARCH64) is not an AArch64 shared object:" >&2; \
		  grep -E 'Class|Type|Machine' $(AARCH64_DIR)/elf-header.txt >&2; exit 1; }
	@echo "cross-aarch64: $(LIB_AARCH64) is an AArch64 shared object"
	@NM=$(AARCH64_CROSS)nm scripts/check-exports.sh $(LIB_AARCH64)

$(AARCH64_DIR)/shim/%.o: shim/%.c $(SHIM_HEADERS)
	@mkdir -p $(@D)
	$(AARCH64_CROSS)gcc $(CFLAGS) $(SHIM_CFLAGS) $(SHIM_INCLUDE) -c -o $@ $<

$(LIB_AARCH64): $(AARCH64_OBJS)
	$(AARCH64_CROSS)gcc $(CFLAGS) -shared -o $@ $^ $(LDLIBS_SHIM) -Wl,-z,defs \
		-Wl,--version-script=shim/preload/exports.map

# ---- make test-vm: tests on Debian 12's own kernel ----------------------------------------------
# Boots Debian's kernel (linux-image-amd64, downloaded once into $(BUILD)/vm, never installed)
# under qemu with the host's file systems read-only, and runs VM_TESTS there (tests/vm/run.sh):
# t_i386 protects a 32-bit server even where the host's kernel cannot run one (no IA32
# emulation). A test that skips in the VM fails the target.
VM_TESTS ?= t_i386
.PHONY: test-vm

test-vm: test-deps $(LIB) $(DAEMON) fixtures lib32-tests
	@[ -n "$(DEPS_CHECKED)" ] || scripts/install-deps.sh --check-or-install --vm
	@tests/vm/run.sh '$(BUILD)' $(VM_TESTS)

# ---- Debian packages: make deb, make test-deb -----------------------------------------------
# make deb builds, into $(BUILD)/, the packages libautoclose (the library), autoclose (the tools)
# and autoclosed (the daemon) with dpkg-buildpackage and debhelper, from a copy of the source tree
# in $(BUILD)/deb/src with scripts/debian/ as its debian/ (scripts/build-deb.sh), and on amd64
# libautoclose's i386 package too, of the 32-bit library. Together they hold what
# `make install PREFIX=/usr` installs. It checks for the packaging tools (and the build's
# packages, which dpkg-buildpackage checks too) and installs nothing; make test-deb installs what
# it needs, builds them, runs lintian, installs them (dpkg -i as root, else unpacked into a
# scratch root), runs the installed wrapper against a leaking server, and removes them again.
.PHONY: deb test-deb

deb:
	@[ -n "$(DEPS_CHECKED)" ] || scripts/install-deps.sh --check --build --deb
	@scripts/build-deb.sh '$(VERSION)' '$(BUILD)'

test-deb: test-deps $(FIXTURES) lib32-tests musl-tests
	@[ -n "$(DEPS_CHECKED)" ] || scripts/install-deps.sh --check-or-install --deb --deb-test
	@FIXTURES=$(abspath $(BUILD)/fixtures) FIXTURES32=$(abspath $(LIB32_DIR)/fixtures) \
		FIXTURES_MUSL=$(abspath $(MUSL_DIR)/fixtures) tests/deb/run.sh '$(abspath $(BUILD))'

# ---- the node agent's image: make image, make test-image -------------------------------------
# make image writes $(IMAGE): an OCI archive of autoclosed with no distribution base (the daemon,
# the libraries it links and its ELF interpreter; no shell), built with umoci
# (scripts/image/build.sh); podman load -i, skopeo copy oci-archive:... take it. Its dates are
# SOURCE_DATE_EPOCH, else the last commit's, so the same daemon gives the same digest. It checks
# for umoci and installs nothing; make test-image installs it and podman, checks the archive's
# files, config and reproducibility, the DaemonSet manifest (scripts/k8s/), and runs the image
# under podman against a leaking server where this machine can run a container (tests/image/).
IMAGE       := $(BUILD)/autoclosed-image.tar
IMAGE_EPOCH  = $(or $(SOURCE_DATE_EPOCH),$(shell git log -1 --format=%ct 2>/dev/null),0)
.PHONY: image test-image

image: $(IMAGE)

$(IMAGE): $(DAEMON) scripts/image/build.sh
	@[ -n "$(DEPS_CHECKED)" ] || scripts/install-deps.sh --check --image
	SOURCE_DATE_EPOCH=$(IMAGE_EPOCH) scripts/image/build.sh $(DAEMON) $(VERSION) $@

test-image: test-deps $(DAEMON) $(BUILD)/fixtures/mos_server $(BUILD)/fixtures/ncs_client
	@[ -n "$(DEPS_CHECKED)" ] || scripts/install-deps.sh --check-or-install --image --image-test
	@$(MAKE) --no-print-directory image
	@IMAGE=$(abspath $(IMAGE)) IMAGE_EPOCH=$(IMAGE_EPOCH) AUTOCLOSED=$(abspath $(DAEMON)) \
		FIXTURES=$(abspath $(BUILD)/fixtures) tests/image/run.sh
