#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=900
# check-kernels=6.1
#
# vhdcryptsetup open, the read-only cases and what it shares with others:
# --readonly, a read-only file, legacy AES and a dirty qcow2 map read-only
# and change no byte; QEMU's image locks are honoured both ways (a QEMU
# writer refuses our open, our mapping refuses a QEMU writer) and a second
# read-write open is refused; the partitions of a disk image are mapped as
# <name>p<N> (and an LVM volume group in one activates), close removes
# them, --no-partitions maps none.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-img.sh"
. "$(dirname "$0")/lib-write.sh"
. "$(dirname "$0")/lib-cli.sh"

start_cli_test qemu-img qemu-io cmp python3 sha256sum sfdisk
W=$SELFTEST_TMP
cd "$W" || skip_all "no work directory"
P=vcr$$
SIZE=24M
head -c 4608 /dev/urandom >d4608

# ro_case NAME WANT-MSG IMAGE OPEN-ARGS...: a read-only mapping that changes no byte.
ro_case() {
	local t=$1 msg=$2 img=$3 name=$P-ro sum
	shift 3
	sum=$(sha256sum <"$img")
	at_exit close_quiet "$name"
	cli "$t: open" 0 "$msg" "$TOOL" open "$@" "$img" "$name" || return
	tap_check "$t: status says ro" status_is "$name" ro
	expect_fail "$t: writes are refused" dd if=d4608 of="/dev/mapper/$name" oflag=direct \
		status=none
	cli "$t: close" 0 "" "$TOOL" close "$name"
	tap_check "$t: not a byte changed" test "$(sha256sum <"$img")" = "$sum"
}

# (a fresh qcow2 ends in the middle of a sector: a loop device cannot show it whole)
wimg_make qcow2 ro.qcow2 "$SIZE"
qemu-io -f qcow2 ro.qcow2 -c "write -P 0x5a 1M 64k" >/dev/null
ro_case "--readonly" "" ro.qcow2 --readonly
wimg_make vhd ro.vhd "$SIZE"
ro_case "--readonly (VHD)" "" ro.vhd --readonly
chmod 0444 ro.qcow2
ro_case "a file without write permission" "mapped read-only: the file has no write permission" ro.qcow2
chmod 0644 ro.qcow2

# legacy AES (crypt_method 1): QEMU 7.2 still writes it with -o encryption=on
printf pw-aes >pw-aes
if qemu-img create -q -f qcow2 --object secret,id=s0,data=pw-aes \
	-o encrypt.format=aes,encrypt.key-secret=s0 aes.qcow2 "$SIZE" 2>/dev/null &&
	qemu-io --object secret,id=s0,data=pw-aes -c "write -P 0x5a 1M 64k" --image-opts \
		driver=qcow2,file.filename=aes.qcow2,encrypt.key-secret=s0 >/dev/null; then
	ro_case "legacy AES" "mapped read-only: legacy qcow2 AES" aes.qcow2 --key-file pw-aes
else
	tap_skip "legacy AES" "qemu-img cannot make legacy AES images"
fi

# a dirty qcow2 (lazy refcounts left by a crash): incompatible feature bit 0
qemu-img create -q -f qcow2 -o lazy_refcounts=on dirty.qcow2 "$SIZE"
qemu-io -f qcow2 dirty.qcow2 -c "write -P 0x5a 1M 64k" >/dev/null
printf '\001' | dd of=dirty.qcow2 bs=1 seek=79 conv=notrunc status=none
ro_case "dirty qcow2" "qemu-img check -r all" dirty.qcow2

# --- QEMU's locks ------------------------------------------------------------

# qemu_hold FILE QEMU-IO-ARGS...: a qemu-io in the background that holds FILE
# (its pid in $QPID) once its locks are in /proc/locks.
qemu_hold() {
	local file=$1 ino
	shift
	ino=$(stat -c %i "$file")
	qemu-io "$@" -c "sleep 600000" "$file" >/dev/null 2>&1 &
	QPID=$!
	at_exit stop_pid "$QPID"
	for _ in $(seq 100); do
		grep -q ":$ino 100 " /proc/locks && return 0
		sleep 0.1
	done
	echo "qemu-io took no lock on $file"
	return 1
}

stop_pid() {
	kill "$1" 2>/dev/null
	return 0
}

qemu_release() {
	kill "$QPID" && wait "$QPID" 2>/dev/null
	return 0
}

wimg_make qcow2 lk.qcow2 "$SIZE"
qemu-io -f qcow2 lk.qcow2 -c "write -P 0x5a 0 64k" >/dev/null
at_exit close_quiet "$P-lk"
at_exit close_quiet "$P-lk2"
if tap_check "a QEMU writer holds the image" qemu_hold lk.qcow2 -f qcow2; then
	cli "QEMU writing: read-write open refused" 5 "is in use" "$TOOL" open lk.qcow2 "$P-lk"
	cli "QEMU writing: read-only open refused" 5 "is in use" "$TOOL" open --readonly \
		lk.qcow2 "$P-lk"
	tap_check "QEMU writing: nothing left behind" nothing_left "$P-lk" "$W/lk.qcow2"
	qemu_release
fi
if tap_check "a QEMU reader holds the image" qemu_hold lk.qcow2 -r -f qcow2; then
	cli "QEMU reading: read-write open refused" 5 "is in use" "$TOOL" open lk.qcow2 "$P-lk"
	cli "QEMU reading: read-only open allowed" 0 "" "$TOOL" open --readonly lk.qcow2 "$P-lk"
	cli "QEMU reading: close" 0 "" "$TOOL" close "$P-lk"
	qemu_release
fi
if cli "open read-write" 0 "" "$TOOL" open lk.qcow2 "$P-lk"; then
	cli "open read-write: a QEMU writer is refused" 1 "lock" \
		qemu-io -f qcow2 -c "write 0 512" lk.qcow2
	cli "open read-write: qemu-img info is refused" 1 "lock" qemu-img info lk.qcow2
	cli "open read-write: qemu-img info -U works" 0 "" qemu-img info -U lk.qcow2
	cli "open read-write: a second open is refused" 5 "in use" \
		"$TOOL" open lk.qcow2 "$P-lk2"
	cli "open read-write: a second read-only open is refused" 5 "in use" \
		"$TOOL" open --readonly lk.qcow2 "$P-lk2"
	cli "open read-write: close" 0 "" "$TOOL" close "$P-lk"
	cli "closed: qemu-img info works" 0 "" qemu-img info lk.qcow2
	cli "closed: QEMU writes" 0 "" qemu-io -f qcow2 -c "write 0 512" lk.qcow2
fi
if cli "open read-only" 0 "" "$TOOL" open --readonly lk.qcow2 "$P-lk"; then
	cli "open read-only: a QEMU writer is refused" 1 "lock" \
		qemu-io -f qcow2 -c "write 0 512" lk.qcow2
	cli "open read-only: a QEMU reader works" 0 "" qemu-img info lk.qcow2
	cli "open read-only: close" 0 "" "$TOOL" close "$P-lk"
fi

# --- partitions --------------------------------------------------------------

# a GPT disk with two partitions of random data, as a qcow2
truncate -s 40M disk.raw
printf 'label: gpt\nstart=2048, size=16384\nstart=18432, size=40960\n' | sfdisk -q disk.raw
head -c 8M /dev/urandom >p1.data
head -c 20M /dev/urandom >p2.data
dd if=p1.data of=disk.raw bs=512 seek=2048 conv=notrunc status=none
dd if=p2.data of=disk.raw bs=512 seek=18432 conv=notrunc status=none
qemu-img convert -f raw -O qcow2 disk.raw disk.qcow2

# parts_are NAME: p1 and p2 hold the partitions, with kpartx's DM UUIDs.
parts_are() {
	local uuid
	cmp "/dev/mapper/$1p1" p1.data && cmp "/dev/mapper/$1p2" p2.data || return 1
	uuid=$(dmsetup info -c --noheadings -o uuid "$1")
	[ "$(dmsetup info -c --noheadings -o uuid "$1p1")" = "part1-$uuid" ] &&
		[ "$(dmsetup info -c --noheadings -o uuid "$1p2")" = "part2-$uuid" ]
}

at_exit close_quiet "$P-d"
if cli "partitions: open" 0 "" "$TOOL" open disk.qcow2 "$P-d"; then
	tap_check "partitions: p1 and p2 hold the partitions" parts_are "$P-d"
	tap_check "partitions: written through p2" \
		dd if=d4608 of="/dev/mapper/$P-dp2" bs=512 seek=100 oflag=direct status=none
	dd if=d4608 of=p2.data bs=512 seek=100 conv=notrunc status=none
	cli "partitions: close" 0 "" "$TOOL" close "$P-d"
	tap_check "partitions: nothing left behind" nothing_left "$P-d" "$W/disk.qcow2"
	qemu-img convert -f qcow2 -O raw disk.qcow2 disk.after
	tap_check "partitions: QEMU reads the write in p2" cmp <(tail -c +$((18432 * 512 + 1)) \
		disk.after | head -c 20M) p2.data
fi
if cli "partitions --readonly: open" 0 "" "$TOOL" open --readonly disk.qcow2 "$P-d"; then
	tap_check "partitions --readonly: p1 and p2 hold the partitions" parts_are "$P-d"
	tap_check "partitions --readonly: p1 is read-only" \
		test "$(blockdev --getro "/dev/mapper/$P-dp1")" = 1
	cli "partitions --readonly: close" 0 "" "$TOOL" close "$P-d"
fi
if cli "--no-partitions: open" 0 "" "$TOOL" open --no-partitions disk.qcow2 "$P-d"; then
	tap_check "--no-partitions: no partition device" test ! -e "/dev/mapper/$P-dp1"
	cli "--no-partitions: close" 0 "" "$TOOL" close "$P-d"
fi

# An LVM volume group in a partition activates, and is found again after a reopen.
LVMCONF='backup { backup = 0 archive = 0 } devices { obtain_device_list_from_udev = 0 }'
lvm_cmd() {
	"$@" --config "$LVMCONF"
}
vg=vcvg$$
if ! command -v vgchange >/dev/null; then
	tap_skip "LVM in a partition" "no lvm2"
elif cli "LVM: open" 0 "" "$TOOL" open disk.qcow2 "$P-d"; then
	head -c 1M /dev/urandom >lv.data
	if lvm_cmd pvcreate -q "/dev/mapper/$P-dp2" && lvm_cmd vgcreate -q "$vg" "/dev/mapper/$P-dp2" &&
		lvm_cmd lvcreate -q -y -L 4M -n lv "$vg" && udev_settle &&
		dd if=lv.data of="/dev/$vg/lv" bs=1M oflag=direct status=none &&
		lvm_cmd vgchange -q -an "$vg"; then
		tap_ok "LVM: a volume group made in p2"
	else
		tap_fail "LVM: a volume group made in p2"
	fi
	cli "LVM: close" 0 "" "$TOOL" close "$P-d"
	cli "LVM: reopen" 0 "" "$TOOL" open disk.qcow2 "$P-d"
	tap_check "LVM: vgchange -ay activates it" lvm_cmd vgchange -q -ay "$vg"
	udev_settle
	tap_check "LVM: the volume holds what was written" cmp -n 1048576 "/dev/$vg/lv" lv.data
	cli "LVM: close refused while the volume group is active" 5 "in use" \
		"$TOOL" close "$P-d"
	lvm_cmd vgchange -q -an "$vg" >/dev/null
	cli "LVM: close" 0 "" "$TOOL" close "$P-d"
	tap_check "LVM: nothing left behind" nothing_left "$P-d" "$W/disk.qcow2"
fi

tap_done
