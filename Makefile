# nlayerfs — plain GNU make, dependencies found with pkg-config.
#
#   make                 build everything into $(BUILD)/
#   make check           unit + integration tests, then the integration tests
#                        again against an ASan+UBSan build (build-san/)
#   make install         PREFIX=/usr/local DESTDIR= (also installs the
#                        fuse-overlayfs name, see install-fuse-overlayfs-name)
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
# build must not compile while apt-get runs.
ifeq ($(filter-out clean uninstall,$(or $(MAKECMDGOALS),all)),)
else ifneq ($(shell tools/install-deps --auto >&2; echo $$?),0)
$(error nlayerfs: build dependencies are missing, see above)
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
#   fs/*.c               -> nlayerfs (fs/main.c holds main; the rest is libnlfs.a)
#   tier/*.c, zns/*.c    -> libnltier.a, libnlzns.a
#   tools/NAME/*.c       -> NAME
#   test/unit/test_*.c   -> one cmocka program each
#   test/helpers/*.c     -> small programs used by the integration tests
FS_SRC    := $(filter-out fs/main.c,$(wildcard fs/*.c))
TIER_SRC  := $(wildcard tier/*.c)
ZNS_SRC   := $(wildcard zns/*.c)
TOOLS     := $(patsubst tools/%/,%,$(sort $(dir $(wildcard tools/*/*.c))))
UNIT      := $(patsubst test/unit/%.c,%,$(wildcard test/unit/test_*.c))
HELPERS   := $(patsubst test/helpers/%.c,%,$(wildcard test/helpers/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBFS   := $(BUILD)/libnlfs.a
LIBTIER := $(BUILD)/libnltier.a
LIBZNS  := $(BUILD)/libnlzns.a
LIBS    := $(LIBFS) $(LIBTIER) $(LIBZNS)

PROGS     := $(BUILD)/nlayerfs $(addprefix $(BUILD)/,$(TOOLS))
UNIT_BIN  := $(addprefix $(BUILD)/test/,$(UNIT))
HELPER_BIN:= $(addprefix $(BUILD)/test/helpers/,$(HELPERS))

.PHONY: all fs tier zns tools unit helpers check check-unit deps install \
        install-fuse-overlayfs-name uninstall clean bench demo demo-union
all: $(PROGS) $(UNIT_BIN) $(HELPER_BIN)

deps:
	@tools/install-deps

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

$(BUILD)/test/test_%: $(call obj,test/unit/test_%.c) $(LIBS)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(PKG_LIBS) $(TEST_LIBS)

$(BUILD)/test/helpers/%: $(call obj,test/helpers/%.c)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(PKG_LIBS)

# The suite: unit and integration tests on the normal build, then the
# integration tests once more on the sanitizer build. One summary line.
check: all
	$(MAKE) --no-print-directory SAN=1 BUILD=build-san $(PROGS:$(BUILD)/%=build-san/%) \
		$(HELPER_BIN:$(BUILD)/%=build-san/%) $(UNIT_BIN:$(BUILD)/%=build-san/%)
	test/run-tests --build $(BUILD) --san-build build-san

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
# fuse-overlayfs by surprise.
install-fuse-overlayfs-name: install
	ln -sf nlayerfs $(DESTDIR)$(BINDIR)/fuse-overlayfs

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(PROGS)))
	[ "$$(readlink $(DESTDIR)$(BINDIR)/fuse-overlayfs)" != nlayerfs ] || rm -f $(DESTDIR)$(BINDIR)/fuse-overlayfs
	for m in man/*.8; do rm -f $(DESTDIR)$(MANDIR)/man8/$$(basename $$m); done
	for m in man/*.5; do rm -f $(DESTDIR)$(MANDIR)/man5/$$(basename $$m); done

clean:
	rm -rf build build-san build-*

.SECONDARY:

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
