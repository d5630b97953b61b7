# SPDX-License-Identifier: GPL-2.0
#
# make                  module for the default kernel + vhdcryptsetup
# make module KVER=V    build/V/dm-vhdcrypt.ko for installed kernel V (or KDIR=)
# make check            unit tests on the host + selftests in a VM on 6.1 and 6.12
# make check-full       the same with the long variants (hours)
# make selftests-tools  selftests/tools: replay-log, wlog (test tools)
# make check-debug      selftests in a VM on a KASAN/lockdep/kmemleak 6.12 kernel
# make install          module (+depmod), tool, man page, udev rules under DESTDIR/PREFIX

# Default kernel: the running one if its headers exist, else the newest installed.
KVER ?= $(shell v=$$(uname -r); if [ -d /lib/modules/$$v/build ]; then echo $$v; \
	else ls -d /lib/modules/*/build 2>/dev/null | sed 's|/lib/modules/||;s|/build||' | sort -V | tail -n1; fi)
KDIR ?= /lib/modules/$(KVER)/build
BUILD := build/$(KVER)
PREFIX ?= /usr
DESTDIR ?=
MODDIR ?= /lib/modules/$(KVER)/updates
UDEVDIR ?= /lib/udev/rules.d

KERNEL_SRC := $(wildcard kernel/*.c kernel/*.h kernel/Kbuild kernel/conftest.sh kernel/conftest/*.c)
INCLUDE_SRC := $(wildcard include/vhdcrypt/*.h)

.PHONY: all module modules-all userspace selftests-tools check check-full check-debug install clean sparse checkpatch

all: module userspace

# The module is built in a per-kernel copy of kernel/ and include/, so builds
# for several kernels never share objects.
module: $(BUILD)/dm-vhdcrypt.ko

$(BUILD)/dm-vhdcrypt.ko: $(KERNEL_SRC) $(INCLUDE_SRC)
	@test -d $(KDIR) || { echo "no kernel headers in $(KDIR): install linux-headers-$(KVER)" >&2; exit 1; }
	rm -rf $(BUILD)/kernel $(BUILD)/include
	mkdir -p $(BUILD)/kernel/conftest $(BUILD)/include
	cp kernel/*.c kernel/*.h kernel/Kbuild kernel/conftest.sh $(BUILD)/kernel/
	cp kernel/conftest/*.c $(BUILD)/kernel/conftest/
	cp -r include/vhdcrypt $(BUILD)/include/
	sh $(BUILD)/kernel/conftest.sh $(KDIR) $(BUILD)/kernel
	$(MAKE) -C $(KDIR) M=$(CURDIR)/$(BUILD)/kernel $(if $(W),W=$(W)) $(if $(C),C=$(C)) modules
	cp $(BUILD)/kernel/dm-vhdcrypt.ko $@

# Every installed kernel with headers.
modules-all:
	@for v in $$(ls -d /lib/modules/*/build | sed 's|/lib/modules/||;s|/build||'); do \
		$(MAKE) --no-print-directory module KVER=$$v || exit 1; done

sparse:
	$(MAKE) -B module C=2 W=1

userspace:
	$(MAKE) -C userspace

# Test tools for the write path (selftests/tools/README.md).
selftests-tools:
	$(MAKE) -C selftests/tools

# Installs missing packages first (as root), so a fresh Debian 12 machine passes.
check:
	scripts/install-deps
	$(MAKE) --no-print-directory all selftests-tools
	scripts/run-checks

# The long variants (hundreds of power-cut points per image kind, the whole
# hostile-image set): a few hours on 2 cores.
check-full:
	scripts/install-deps
	$(MAKE) --no-print-directory all selftests-tools
	VHDCRYPT_FULL=1 VHDCRYPT_TIMEOUT_SCALE=$${VHDCRYPT_TIMEOUT_SCALE:-8} \
		VM_TIMEOUT=$${VM_TIMEOUT:-28800} scripts/run-checks

# The kernel is built once (scripts/build-debug-kernel, cached in
# build/kernel-debug/), the module against it; SELFTEST_ONLY picks tests.
check-debug:
	scripts/install-deps --debug-kernel
	$(MAKE) --no-print-directory userspace selftests-tools
	VHDCRYPT_KERNELS=debug VHDCRYPT_HOST_TESTS=0 scripts/run-checks

# checkpatch.pl from an unpacked kernel tree, else from Debian's
# linux-source-* tarball (unpacked into build/checkpatch).
CHECKPATCH ?= $(firstword $(wildcard /usr/src/linux-source-*/scripts/checkpatch.pl) \
	build/checkpatch/scripts/checkpatch.pl)
# CAMELCASE: the kernel's own zlib_inflateInit2/zlib_inflateEnd, which
# checkpatch cannot look up without a tree.
checkpatch: $(CHECKPATCH)
	perl $(CHECKPATCH) --strict --no-tree --ignore CAMELCASE --terse -f kernel/*.[ch] kernel/conftest/*.c include/vhdcrypt/*.h

build/checkpatch/scripts/checkpatch.pl:
	@tarball=$$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n 1); \
	test -n "$$tarball" || { echo "checkpatch: no kernel source: apt-get install linux-source-6.1 (or set CHECKPATCH=)" >&2; exit 1; }; \
	top=$$(basename $$tarball .tar.xz); mkdir -p build/checkpatch; \
	tar -xJf $$tarball -C build/checkpatch --strip-components=1 \
		$$top/scripts/checkpatch.pl $$top/scripts/spelling.txt $$top/scripts/const_structs.checkpatch

install: all
	install -D -m 644 $(BUILD)/dm-vhdcrypt.ko $(DESTDIR)$(MODDIR)/dm-vhdcrypt.ko
	[ -n "$(DESTDIR)" ] || depmod -a $(KVER)
	$(MAKE) -C userspace install DESTDIR=$(DESTDIR) PREFIX=$(PREFIX)	# tool + man page
	for r in scripts/udev/*.rules; do [ -f "$$r" ] && install -D -m 644 $$r $(DESTDIR)$(UDEVDIR)/$$(basename $$r); done; true

clean:
	rm -rf build
	-$(MAKE) -C userspace clean
	-$(MAKE) -C selftests/tools clean
