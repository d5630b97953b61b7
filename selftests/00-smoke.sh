#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=120
#
# Plumbing check for the selftest environment: loop devices, a dm-linear
# mapping with its udev node, whole-device hashing, write-through, a
# read-only loop, and loading $VHDCRYPT_KO when it has been built.
. "$(dirname "$0")/lib.sh"

need_root
need_cmd losetup dmsetup dd sha256sum truncate udevadm
tap_plan 8

img=$SELFTEST_TMP/disk.img
sectors=$((16 * 2048)) # 16 MiB
# Deterministic, non-zero content: each 1 MiB differs.
for i in $(seq 1 16); do
	head -c 1048576 /dev/zero | tr '\0' "\\$(printf '%03o' $((i + 64)))"
done >"$img"
want=$(sha256_dev "$img")

if loop=$(new_loop "$img"); then
	tap_ok "losetup attaches the image ($loop)"
else
	tap_fail "losetup attaches the image"
	skip_all "no loop device"
fi

tap_check "loop device has the image's sha256" test "$(sha256_dev "$loop")" = "$want"

name=vhdcrypt-smoke-$$
tap_check "dmsetup creates a linear mapping" dm_create "$name" "0 $sectors linear $loop 0"
tap_check "udev created /dev/mapper/$name" test -b "/dev/mapper/$name"
tap_check "linear mapping has the image's sha256" \
	test "$(sha256_dev "/dev/mapper/$name")" = "$want"

# A write through the mapping lands in the image at the same offset.
write_through() {
	local got
	printf 'vhdcrypt-smoke' | dd of="/dev/mapper/$name" bs=512 seek=100 conv=notrunc status=none ||
		return 1
	sync
	got=$(dd if="$img" bs=1 skip=$((100 * 512)) count=14 status=none)
	echo "read back from the image: '$got'"
	[ "$got" = vhdcrypt-smoke ]
}
tap_check "a write through dm-linear reaches the image" write_through

ro=$(new_loop "$img" --ro)
expect_fail "a read-only loop refuses writes" \
	dd if=/dev/zero of="$ro" bs=4096 count=1 oflag=direct status=none

if [ -f "${VHDCRYPT_KO:-}" ]; then
	if load_vhdcrypt; then
		tap_check "dm-vhdcrypt registers its target" \
			sh -c 'dmsetup targets | grep -w vhdcrypt'
	else
		tap_fail "insmod $VHDCRYPT_KO"
	fi
else
	tap_skip "load dm-vhdcrypt" "module not built (${VHDCRYPT_KO:-VHDCRYPT_KO unset})"
fi

tap_done
