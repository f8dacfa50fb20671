# nlayerfs — plain GNU make, dependencies found with pkg-config.
#
#   make                 build everything into $(BUILD)/
#   make check           unit + integration tests, then the integration tests
#                        again against an ASan+UBSan build (build-san/)
#   (make and make install ask for the build packages of tools/install-deps,
#   make check and make bench for the test packages as well)
#   make install         PREFIX=/usr/local DESTDIR=
#   make install-fuse-overlayfs-name   also the name containerd execs (see below)
#   make fs|tier|zns|tools|unit   build one part only
#   make SAN=1 BUILD=build-san    sanitizer build

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
DESTDIR    ?=
BUILD      ?= build
CC         ?= cc
CFLAGS     ?= -O2 -g
SAN        ?=
VERSION    := 0.1.0

# Missing Debian packages are installed (as root) or named before anything
# else is evaluated: the pkg-config lines below need them, and a parallel
# build must not compile while apt-get runs. A build asks for the build
# set only; the goals that run tests or benchmarks for the test set too
# (fuse-overlayfs, podman, matplotlib, ...).
TEST_GOALS := check check-faults check-unit
DEPS_SET   := $(if $(filter bench,$(MAKECMDGOALS)),bench,$(if $(filter $(TEST_GOALS),$(MAKECMDGOALS)),test,build))
ifeq ($(filter-out clean uninstall,$(or $(MAKECMDGOALS),all)),)
else ifneq ($(shell tools/install-deps --auto $(DEPS_SET) >&2; echo $$?),0)
$(error nlayerfs: $(DEPS_SET) dependencies are missing, see above)
endif

PKGS     := fuse3 libpmemobj libzbd libarchive libzstd libcrypto json-c
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_LIBS  := $(shell pkg-config --libs cmocka 2>/dev/null)

NL_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
             -DNLAYERFS_VERSION='"$(VERSION)"' -DNLAYERFS_SYSCONFDIR='"$(SYSCONFDIR)"' \
             -I. -MMD -MP -pthread
NL_LDFLAGS := -pthread
ifneq ($(SAN),)
NL_CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
NL_LDFLAGS += -fsanitize=address,undefined
endif

COMPILE = $(CC) $(NL_CFLAGS) $(PKG_CFLAGS) $(CPPFLAGS) $(CFLAGS)
LINK    = $(CC) $(NL_LDFLAGS) $(CFLAGS) $(LDFLAGS)

# Sources are found by directory so that each part can grow on its own:
#   fs/*.c, fs/*/*.c     -> nlayerfs (fs/main.c holds main; the rest is libnlfs.a)
#   tier/**.c, zns/*.c   -> libnltier.a, libnlzns.a
# A library's object files must have distinct base names: ar keeps one
# member per name.
#   tools/NAME/*.c       -> NAME
#   test/unit/*/test_*.c -> one cmocka program each (folders mirror the sources)
#   test/helpers/*.c     -> small programs used by the integration tests
FS_SRC    := $(filter-out fs/main.c,$(wildcard fs/*.c fs/*/*.c))
TIER_SRC  := $(wildcard tier/*.c tier/*/*.c)
ZNS_SRC   := $(wildcard zns/*.c)
TOOLS     := $(patsubst tools/%/,%,$(sort $(dir $(wildcard tools/*/*.c))))
UNIT_SRC  := $(wildcard test/unit/test_*.c test/unit/*/test_*.c)
UNIT      := $(basename $(notdir $(UNIT_SRC)))
HELPERS   := $(patsubst test/helpers/%.c,%,$(wildcard test/helpers/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBFS   := $(BUILD)/libnlfs.a
LIBTIER := $(BUILD)/libnltier.a
LIBZNS  := $(BUILD)/libnlzns.a
LIBS    := $(LIBFS) $(LIBTIER) $(LIBZNS)

PROGS     := $(BUILD)/nlayerfs $(addprefix $(BUILD)/,$(TOOLS))
UNIT_BIN  := $(addprefix $(BUILD)/test/,$(UNIT))
HELPER_BIN:= $(addprefix $(BUILD)/test/helpers/,$(HELPERS))

.PHONY: all fs tier zns tools unit helpers check check-faults check-unit deps install \
        install-fuse-overlayfs-name uninstall clean bench demo demo-union
all: $(PROGS) $(UNIT_BIN) $(HELPER_BIN)

deps:
	@tools/install-deps test

fs: $(BUILD)/nlayerfs
tier: $(LIBTIER)
zns: $(LIBZNS)
tools: $(addprefix $(BUILD)/,$(TOOLS))
unit: $(UNIT_BIN)
helpers: $(HELPER_BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(COMPILE) -c $< -o $@

$(LIBFS): $(call obj,$(FS_SRC))
$(LIBTIER): $(call obj,$(TIER_SRC))
$(LIBZNS): $(call obj,$(ZNS_SRC))
$(LIBS):
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/nlayerfs: $(call obj,fs/main.c) $(LIBS)
	$(LINK) -o $@ $^ $(PKG_LIBS)

define tool_rule
$(BUILD)/$(1): $(call obj,$(wildcard tools/$(1)/*.c)) $(LIBTIER) $(LIBZNS)
	$$(LINK) -o $$@ $$^ $$(PKG_LIBS)
endef
$(foreach t,$(TOOLS),$(eval $(call tool_rule,$(t))))

define unit_rule
$(BUILD)/test/$(basename $(notdir $(1))): $(call obj,$(1)) $(LIBS)
	@mkdir -p $$(dir $$@)
	$$(LINK) -o $$@ $$^ $$(PKG_LIBS) $$(TEST_LIBS)
endef
$(foreach u,$(UNIT_SRC),$(eval $(call unit_rule,$(u))))

$(BUILD)/test/helpers/%: $(call obj,test/helpers/%.c)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(PKG_LIBS)

# The suite: unit and integration tests on the normal build, then the
# integration tests once more on the sanitizer build. One summary line.
check: all
	$(MAKE) --no-print-directory SAN=1 BUILD=build-san $(PROGS:$(BUILD)/%=build-san/%) \
		$(HELPER_BIN:$(BUILD)/%=build-san/%) $(UNIT_BIN:$(BUILD)/%=build-san/%)
	test/run-tests --build $(BUILD) --san-build build-san

# Faults only, more of them: kill -9 at every step of copy-up, promotion
# and checkpoint writes, damaged pools and images, full disks and zones.
FAULT_TESTS := faults,_errors,ckpt_identity,tier_unmount,tier_verify
check-faults: all
	NLAYERFS_FAULT_KILLS=20 CKPT_FAULT_KILLS=12 \
		test/run-tests --build $(BUILD) --only $(FAULT_TESTS)

check-unit: all
	test/run-tests --build $(BUILD) --unit-only

bench: all
	test/bench/run-all --build $(BUILD)

demo: all
	test/demo/image-demo $(BUILD)

demo-union: all
	test/demo/union-demo $(BUILD)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	install -m 755 $(PROGS) $(DESTDIR)$(BINDIR)/
	for m in man/*.8; do [ -e "$$m" ] && install -m 644 $$m $(DESTDIR)$(MANDIR)/man8/; done; true
	for m in man/*.5; do [ -e "$$m" ] && install -m 644 $$m $(DESTDIR)$(MANDIR)/man5/; done; true

# containerd's fuse-overlayfs snapshotter execs "fuse-overlayfs"; this makes
# that name run nlayerfs. Kept separate so it never replaces a real
# fuse-overlayfs by surprise: another fuse-overlayfs anywhere in PATH (or a
# file that is not our link at the target) stops it unless FORCE=1, since
# which one runs then depends on the PATH of whoever execs the name.
FORCE ?=
install-fuse-overlayfs-name: install
	@link="$(DESTDIR)$(BINDIR)/fuse-overlayfs"; \
	if [ -e "$$link" ] && [ "$$(readlink "$$link")" != nlayerfs ] && [ "$(FORCE)" != 1 ]; then \
		echo "nlayerfs: $$link exists and is not a link to nlayerfs; not replaced." >&2; \
		echo "nlayerfs: run 'make install-fuse-overlayfs-name FORCE=1' to replace it." >&2; \
		exit 1; \
	fi; \
	others=""; \
	if [ -z "$(DESTDIR)" ]; then \
		oldifs=$$IFS; IFS=:; \
		for d in $$PATH; do \
			f="$${d:-.}/fuse-overlayfs"; \
			[ -x "$$f" ] && [ "$$(realpath "$$f")" != "$$(realpath "$(BINDIR)/nlayerfs")" ] && \
				case " $$others " in *" $$(realpath "$$f") "*) ;; *) others="$$others $$(realpath "$$f")";; esac; \
		done; \
		IFS=$$oldifs; \
	fi; \
	if [ -n "$$others" ] && [ "$(FORCE)" != 1 ]; then \
		echo "nlayerfs: another fuse-overlayfs is installed:$$others" >&2; \
		echo "nlayerfs: a program that execs 'fuse-overlayfs' runs the first one in its PATH;" >&2; \
		echo "nlayerfs: a link in $(BINDIR) would hide that one, or be hidden by it, depending" >&2; \
		echo "nlayerfs: on that PATH (containerd's comes from its service unit)." >&2; \
		echo "nlayerfs: nothing installed; run 'make install-fuse-overlayfs-name FORCE=1' to install" >&2; \
		echo "nlayerfs: the link anyway, or point the program at $(BINDIR)/nlayerfs directly." >&2; \
		exit 1; \
	fi; \
	ln -sf nlayerfs "$$link" && echo "nlayerfs: installed $$link -> nlayerfs"; \
	if [ -n "$$others" ]; then \
		first=$$(command -v fuse-overlayfs); \
		echo "nlayerfs: with PATH=$$PATH, 'fuse-overlayfs' runs $$first ($$(realpath "$$first"))"; \
		echo "nlayerfs: other programs run the first fuse-overlayfs of their own PATH"; \
	fi

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(PROGS)))
	[ "$$(readlink $(DESTDIR)$(BINDIR)/fuse-overlayfs)" != nlayerfs ] || rm -f $(DESTDIR)$(BINDIR)/fuse-overlayfs
	for m in man/*.8; do rm -f $(DESTDIR)$(MANDIR)/man8/$$(basename $$m); done
	for m in man/*.5; do rm -f $(DESTDIR)$(MANDIR)/man5/$$(basename $$m); done

clean:
	rm -rf build build-san build-*

.SECONDARY:

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
