#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=1200
#
# Unencrypted qcow2 images made by qemu-img/qemu-io, mapped with cipher
# "none" and compared with qemu-img convert -O raw: versions 2 and 3, cluster
# sizes 512 B to 2 MiB, zero clusters, zlib and zstd compressed clusters,
# extended L2 entries with subclusters, backing chains (qcow2 and raw
# backing, an overlay larger than its base, three levels), internal
# snapshots.  Damaged headers must be refused at table load with a vhdcrypt
# message in the kernel log.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-img.sh"
# shellcheck disable=SC2034 # read by run_case in lib-img.sh
CASE_SPLIT=1	# independent cases: make check spreads them over the kernels

start_image_test qemu-img qemu-io

# qcreate NAME SIZE [-o OPTS] [-b BASE]: $WORK/NAME.qcow2
qcreate() {
	local name=$1 size=$2
	shift 2
	qemu-img create -q -f qcow2 "$@" "$WORK/$name.qcow2" "$size"
}

# qio NAME qemu-io-command...
qio() {
	local img=$WORK/$1.qcow2 args=() c
	shift
	for c; do args+=(-c "$c"); done
	qemu-io -f qcow2 "${args[@]}" "$img" >/dev/null
}

# The write pattern used by most cases: first sector, 64k at 1M, an odd
# sector run, 8k across a 2M boundary, the last sector.
PATTERN=(
	"write -P 0x11 0 512"
	"write -P 0xab 1M 64k"
	"write -P 0x5c 3584512 7680"
	"write -P 0x22 4092k 8k"
	"write -P 0x33 16383k 1k"
)

# check NAME [BACKING_DEV]: map $WORK/NAME.qcow2 (over BACKING_DEV) and
# compare the device with qemu-img convert -O raw.  A raw file for the
# expected data may be given in EXPECT instead.
check() {
	local name=$1 back=$2 img=$WORK/$1.qcow2 raw=$WORK/$1.raw opt='' q_size
	q_size=$(qcow2_size "$img")
	if [ -n "$EXPECT" ]; then
		raw=$EXPECT
	else
		qemu_raw -f qcow2 "$img" "$raw" || return 1
	fi
	loop "$img" || return 1
	[ -n "$back" ] && opt=" 1 backing:$back"
	map "$name" "0 $((q_size / 512)) vhdcrypt qcow2 $LOOP none - 0$opt" || return 1
	same "$(dev "$name")" "$raw" || return 1
	[ -n "$EXPECT" ] || rm -f "$raw"
}
EXPECT=

# simple NAME -o OPTS: a 16M image with the common pattern.
simple() {
	local name=$1
	shift
	qcreate "$name" 16M "$@" && qio "$name" "${PATTERN[@]}" && check "$name"
}

zero_clusters() {
	qcreate zero 16M -o compat=1.1,cluster_size=64k &&
		qio zero "${PATTERN[@]}" \
			"write -P 0x77 6M 1M" \
			"write -z 6M 128k" \
			"write -z -u 6400k 64k" \
			"write -z 8M 256k" \
			"write -z 1M 4k" &&
		check zero
}

# A raw source with random, repetitive and constant parts, for compression.
make_source() {
	local src=$WORK/src.raw
	truncate -s 16M "$src" &&
		dd if=/dev/urandom of="$src" bs=64k count=4 seek=2 conv=notrunc status=none &&
		seq 1 300000 | dd of="$src" bs=64k seek=40 conv=notrunc status=none &&
		qemu-io -f raw -c "write -P 0x3c 12M 1M" -c "write -P 0x11 16383k 1k" "$src" >/dev/null
}

# compressed NAME OPTS: qemu-img convert -c, then a few plain writes on top
# (mixing compressed and normal clusters).
compressed() {
	local name=$1 opts=$2
	[ -f "$WORK/src.raw" ] || make_source || return 1
	qemu-img convert -c -O qcow2 -o "$opts" "$WORK/src.raw" "$WORK/$name.qcow2" || return 1
	qio "$name" "write -P 0x9a 2200k 4k" "write -P 0x9b 12M 512" && check "$name"
}

ext_l2() {
	qcreate extl2 16M -o extended_l2=on,cluster_size=64k &&
		qio extl2 "write -P 0x31 12k 4k" "write -P 0x32 70k 2k" "write -z 20k 2k" \
			"write -P 0x33 1030k 512" "write -P 0x34 4092k 8k" \
			"write -P 0x35 8M 64k" "write -z 8M 2k" "write -z -u 8196k 4k" \
			"write -P 0x36 16380k 4k" &&
		check extl2
}

# make_base NAME SIZE: a qcow2 holding random data everywhere, so that any
# sector read from the wrong place shows.
make_base() {
	local name=$1 size=$2
	truncate -s "$size" "$WORK/$name.src" &&
		dd if=/dev/urandom of="$WORK/$name.src" bs=1M count=$(($(stat -c %s "$WORK/$name.src") >> 20)) \
			conv=notrunc status=none &&
		qemu-img convert -O qcow2 "$WORK/$name.src" "$WORK/$name.qcow2" &&
		rm -f "$WORK/$name.src"
}

# Subclusters not allocated in the overlay come from the backing device.
ext_l2_backing() {
	make_base extbase 16M &&
		qcreate extover 16M -o extended_l2=on,cluster_size=128k -b "$WORK/extbase.qcow2" -F qcow2 &&
		qio extover "write -P 0x41 12k 4k" "write -P 0x42 132k 4k" "write -z 260k 4k" \
			"write -P 0x43 1M 512" "write -P 0x44 5M 128k" "write -z 5M 4k" \
			"write -P 0x45 16380k 4k" &&
		check extbase && check extover "$(dev extbase)"
}

chain() {
	make_base base 16M &&
		qcreate over 16M -b "$WORK/base.qcow2" -F qcow2 &&
		qio over "${PATTERN[@]}" "write -z 8M 192k" "write -z 10M 4k" &&
		check base && check over "$(dev base)"
}

# Sectors past the end of the backing device read as zeros.
bigger_overlay() {
	make_base small 8M &&
		qcreate large 24M -b "$WORK/small.qcow2" -F qcow2 &&
		qio large "write -P 0x51 7M 2M" "write -P 0x52 20M 4k" &&
		check small && check large "$(dev small)"
}

three_levels() {
	make_base l0 16M &&
		qcreate l1 16M -o cluster_size=4k -b "$WORK/l0.qcow2" -F qcow2 &&
		qio l1 "write -P 0x61 0 1M" "write -P 0x62 6M 3M" &&
		qcreate l2 16M -o cluster_size=512 -b "$WORK/l1.qcow2" -F qcow2 &&
		qio l2 "write -P 0x63 512k 1M" "write -z 7M 512k" "write -P 0x64 15M 3k" &&
		check l0 && check l1 "$(dev l0)" && check l2 "$(dev l1)"
}

raw_backing() {
	local raw=$WORK/rawbase.img
	truncate -s 16M "$raw" &&
		dd if=/dev/urandom of="$raw" bs=1M count=16 conv=notrunc status=none &&
		qcreate overraw 16M -b "$raw" -F raw &&
		qio overraw "${PATTERN[@]}" || return 1
	loop "$raw" || return 1
	check overraw "$LOOP"
}

# Without a backing: option, clusters the image does not hold read as zeros
# (compared with QEMU opening the image with "backing": null).
no_backing_option() {
	make_base nbbase 16M &&
		qcreate nbover 16M -b "$WORK/nbbase.qcow2" -F qcow2 &&
		qio nbover "${PATTERN[@]}" &&
		qemu-img convert "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"$WORK/nbover.qcow2\"},\"backing\":null}" \
			-O raw "$WORK/nbover.expect" || return 1
	EXPECT=$WORK/nbover.expect check nbover
}

# The active L1 table is mapped, not the snapshot's.
snapshots() {
	qcreate snap 16M &&
		qio snap "${PATTERN[@]}" &&
		qemu-img snapshot -c s1 "$WORK/snap.qcow2" &&
		qio snap "write -P 0x71 1M 16k" "write -P 0x72 9M 64k" "write -z 0 512" &&
		qemu-img snapshot -c s2 "$WORK/snap.qcow2" &&
		qio snap "write -P 0x73 1040k 4k" &&
		check snap
}

# ---------------------------------------------------------------------------
# Damaged headers

# broken NAME POKE-ARGS...: copy the good v3 image, change header bytes,
# the load must fail.
broken() {
	local name=$1 img=$WORK/bad-$1.qcow2 q_size
	shift
	cp "$WORK/good.qcow2" "$img" && $IMGTOOL poke "$img" "$@" || return 1
	q_size=$(qcow2_size "$img")
	loop "$img" || return 1
	expect_load_fail "$name" "0 $((q_size / 512)) vhdcrypt qcow2 $LOOP none - 0"
}

vhd_as_qcow2() {
	qemu-img create -q -f vpc -o force_size=on "$WORK/x.vhd" 8M || return 1
	loop "$WORK/x.vhd" || return 1
	expect_load_fail vhdasq "0 16384 vhdcrypt qcow2 $LOOP none - 0"
}

tap_plan 24
run_case "v2 (compat=0.10), 64k clusters" simple v2 -o compat=0.10
run_case "v3, 512-byte clusters" simple c512 -o cluster_size=512
run_case "v3, 64k clusters" simple c64k -o cluster_size=64k
run_case "v3, 2M clusters" simple c2m -o cluster_size=2M
run_case "v3, zero clusters" zero_clusters
run_case "compressed, zlib, 64k clusters" compressed zlib64k cluster_size=64k
run_case "compressed, zlib, 2M clusters" compressed zlib2m cluster_size=2M
run_case "compressed, zstd, 64k clusters" compressed zstd64k cluster_size=64k,compression_type=zstd
run_case "compressed, zstd, 4k clusters" compressed zstd4k cluster_size=4k,compression_type=zstd
run_case "extended L2, 64k clusters, subcluster writes" ext_l2
run_case "extended L2 over a backing image (128k clusters)" ext_l2_backing
run_case "backing chain qcow2 over qcow2, zero clusters over data" chain
run_case "overlay larger than its base" bigger_overlay
run_case "three-level chain, 64k/4k/512 clusters" three_levels
run_case "raw backing device" raw_backing
run_case "backing file named but no backing: option" no_backing_option
run_case "internal snapshots, active L1 mapped" snapshots
if qcreate good 8M -o cluster_size=64k && qio good "write -P 0x11 0 1M"; then
	run_case "unknown incompatible feature bit" broken incompat 72 8 $((1 << 10))
	run_case "corrupt bit set" broken corrupt 72 8 2
	run_case "cluster_bits 8" broken cbits8 20 4 8
	run_case "cluster_bits 22" broken cbits22 20 4 22
	run_case "L1 table beyond the device" broken l1far 40 8 $((1 << 40))
	run_case "version 4" broken v4 4 4 4
else
	for i in 1 2 3 4 5 6; do run_case "damaged header $i (no base image)" false; done
fi
run_case "VHD image mapped as qcow2" vhd_as_qcow2
tap_done
