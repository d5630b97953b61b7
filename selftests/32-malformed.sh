#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=900
#
# Hostile images: damaged copies of small good qcow2 and VHD images (header
# fields out of range, L1/L2/BAT entries pointing outside the device or into
# metadata, absurd sizes, bad compressed clusters, seeded random bit flips).
# Each must either fail the table load with a vhdcrypt message in the kernel
# log, or map and then read back completely or fail with EIO; never hang or
# make the kernel warn or oops.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-img.sh"
# shellcheck disable=SC2034 # read by run_case in lib-img.sh
CASE_SPLIT=1	# independent cases: make check spreads them over the kernels

start_image_test qemu-img qemu-io timeout

# put OFFSET SIZE VALUE IMG: a big-endian field (OFFSET < 0: from the end).
put() { $IMGTOOL poke "$4" "$1" "$2" "$3"; }

# ---------------------------------------------------------------------------
# Good images

make_bases() {
	local src=$WORK/text.raw
	qemu-img create -q -f qcow2 -o cluster_size=64k "$WORK/qbase.qcow2" 16M &&
		qemu-io -f qcow2 -c "write -P 0x11 0 1M" -c "write -P 0x22 5M 64k" \
			-c "write -P 0x33 12M 4k" "$WORK/qbase.qcow2" >/dev/null &&
		truncate -s 4M "$src" && seq 1 400000 | dd of="$src" conv=notrunc status=none &&
		qemu-img convert -c -O qcow2 -o cluster_size=64k "$src" "$WORK/qcomp.qcow2" &&
		qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=64k "$WORK/qext.qcow2" 16M &&
		qemu-io -f qcow2 -c "write -P 0x44 12k 4k" -c "write -z 20k 2k" -c "write -P 0x45 1M 64k" \
			"$WORK/qext.qcow2" >/dev/null &&
		qemu-img create -q -f vpc -o force_size=on "$WORK/vdyn.vhd" 8M &&
		qemu-io -f vpc -c "write -P 0x55 0 64k" -c "write -P 0x66 2M 4k" -c "write -P 0x77 6M 4k" \
			"$WORK/vdyn.vhd" >/dev/null &&
		qemu-img create -q -f vpc -o subformat=fixed,force_size=on "$WORK/vfix.vhd" 4M &&
		qemu-io -f vpc -c "write -P 0x55 512k 64k" "$WORK/vfix.vhd" >/dev/null
}

# ---------------------------------------------------------------------------
# The check

# hostile EXPECT BASE DAMAGE...: copy BASE, apply DAMAGE (its last argument
# is the copy), map it with cipher none, read it all.
#   EXPECT load-fail: the load must fail (with a vhdcrypt message);
#          eio:       the load fails, or reading the device fails with EIO;
#          any:       any of these, or a complete read.
hostile() {
	local expect=$1 base=$2 img ext size fmt rc
	shift 2
	ext=${base##*.}
	img=$WORK/bad.$ext
	if ! cp "$WORK/$base" "$img" || ! "$@" "$img"; then
		echo "could not damage the image"
		return 1
	fi
	if [ "$ext" = vhd ]; then
		fmt=vhd size=$(vhd_current_size "$WORK/$base")
	else
		fmt=qcow2 size=$(qcow2_size "$WORK/$base")
	fi
	loop "$img" || return 1
	kmsg_mark
	if ! map bad "0 $((size / 512)) vhdcrypt $fmt $LOOP none - 0" 2>/dev/null; then
		failure_explained
		return
	fi
	[ "$expect" = load-fail ] && { echo "the table loaded"; return 1; }
	timeout 120 dd if="$(dev bad)" of=/dev/null bs=1M iflag=direct status=none 2>"$WORK/dd.err"
	rc=$?
	kmsg_since | sed 's/^/dmesg: /'
	case $rc in
	0) echo "mapped, read completely"
	   [ "$expect" = any ] || { echo "a clean read, expected EIO"; return 1; } ;;
	124) echo "read hangs (still running after 120 s)"; return 1 ;;
	*) cat "$WORK/dd.err"
	   grep -q 'Input/output error' "$WORK/dd.err" || { echo "read failed, but not with EIO"; return 1; }
	   dmsetup status "$CASE_PREFIX-bad" | grep -Eq ' io_errors:[1-9]' ||
		{ echo "EIO, but dmsetup status counts no io_errors: $(dmsetup status "$CASE_PREFIX-bad")"; return 1; } ;;
	esac
	no_kernel_problems
}

# ---------------------------------------------------------------------------
# Damage, each applied to the file given as the last argument

l2_entry() { $IMGTOOL qcow2-l2-entry "$1" "$2"; }

# set_l2 VOFFSET NEWVALUE-EXPR IMG: replace the L2 entry that maps VOFFSET;
# the expression may use $v (the old value).
set_l2() {
	local where v
	read -r where v < <(l2_entry "$3" "$1") || return 1
	put "$where" 8 $(($2)) "$3"
}

# set_l1 INDEX VALUE IMG
set_l1() {
	put $(($(be "$3" 40 8) + 8 * $1)) 8 "$2" "$3"
}

# compressed VOFFSET: the L2 entry of a compressed cluster keeps its flags and
# length bits, but its host offset (bits 0..x-1, x = 62 - (cluster_bits - 8))
# becomes OFFSET.
compressed_at() {
	local x=$((62 - ($(be "$3" 20 4) - 8)))
	set_l2 "$1" "(v & ~((1 << $x) - 1)) | $2" "$3"
}

# garbage_cluster VOFFSET IMG: random bytes where a compressed cluster's data is.
garbage_compressed() {
	local where v x off
	read -r where v < <(l2_entry "$2" "$1") || return 1
	x=$((62 - ($(be "$2" 20 4) - 8)))
	off=$((v & ((1 << x) - 1)))
	dd if=/dev/urandom of="$2" bs=1 seek="$off" count=512 conv=notrunc status=none
}

# flips SEED N FIRST LAST IMG: flip N seeded random bits in bytes FIRST..LAST.
flips() {
	local i args=()
	RANDOM=$1
	for ((i = 0; i < $2; i++)); do
		args+=($(($3 + RANDOM % ($4 - $3 + 1))) $((1 << (RANDOM % 8))))
	done
	$IMGTOOL xor "$5" "${args[@]}"
}

# VHD: poke a field, then make the checksums right again so the value is
# what the kernel sees.  Header fields are at 512 + offset.
vhd_put() { put "$@" && $IMGTOOL vhd-fix "$4"; }
vhd_footer_put() { put "$@" && put $(($1 + 512)) "$2" "$3" "$4" && $IMGTOOL vhd-fix "$4"; }
vhd_flips() { flips "$@" && $IMGTOOL vhd-fix "${!#}"; }

# set_bat BLOCK VALUE IMG
set_bat() {
	local where
	read -r where _ < <($IMGTOOL vhd-bat-entry "$3" "$1") || return 1
	put "$where" 4 "$2" "$3"
}

# fixed VHD cut short: the footer moved up.
fixed_short() {
	tail -c 512 "$1" >"$1.footer" && truncate -s 1M "$1" &&
		cat "$1.footer" >>"$1" && rm -f "$1.footer"
}

backing_beyond() { put 8 8 0x7fff0 "$1" && put 16 4 1023 "$1"; }
snapshots_beyond() { put 60 4 0xffffff "$1" && put 64 8 $((1 << 50)) "$1"; }

l1_flips() {
	local l1
	l1=$(be "$1" 40 8)
	flips 2 64 "$l1" $((l1 + 15)) "$1"
}

# Extended L2 entries are 16 bytes; the second u64 has the "allocated"
# (bits 0-31) and "reads as zeros" (bits 32-63) subcluster bits.
ext_l2_conflict() {
	local where v
	read -r where v < <(l2_entry "$1" 12288) && put $((where + 8)) 8 0x0000ffff0000ffff "$1"
}

duplicate_bat() {
	set_bat 2 "$($IMGTOOL vhd-bat-entry "$1" 0 | cut -d' ' -f2)" "$1"
}

footer_flips() {
	local end
	end=$(stat -c %s "$1")
	vhd_flips 3 24 $((end - 512)) $((end - 449)) "$1"
}

# ---------------------------------------------------------------------------

NQ=27 NV=19
tap_plan $((NQ + NV))
if ! make_bases; then
	for i in $(seq $((NQ + NV))); do run_case "hostile image $i (no base images)" false; done
	tap_done
fi

# qcow2: header fields (offsets from the qcow2 specification)
run_case "qcow2: l1_size 0xffffffff" hostile load-fail qbase.qcow2 put 36 4 0xffffffff
run_case "qcow2: l1_size 0 with data" hostile any qbase.qcow2 put 36 4 0
run_case "qcow2: L1 table offset not cluster aligned" hostile any qbase.qcow2 put 40 8 0x30008
run_case "qcow2: header_length larger than a cluster" hostile load-fail qbase.qcow2 put 100 4 0x20000
run_case "qcow2: header_length 72 in a v3 header" hostile any qbase.qcow2 put 100 4 72
run_case "qcow2: refcount_order 7" hostile any qbase.qcow2 put 96 4 7
run_case "qcow2: virtual size 2^62" hostile any qbase.qcow2 put 24 8 $((1 << 62))
run_case "qcow2: backing file name beyond the first cluster" hostile any qbase.qcow2 backing_beyond
run_case "qcow2: crypt_method 2 (LUKS) on a plain image, cipher none" hostile load-fail qbase.qcow2 put 32 4 2
run_case "qcow2: crypt_method 7" hostile load-fail qbase.qcow2 put 32 4 7
run_case "qcow2: cluster_bits 63" hostile load-fail qbase.qcow2 put 20 4 63
run_case "qcow2: version 1" hostile load-fail qbase.qcow2 put 4 4 1
run_case "qcow2: snapshot table beyond the device" hostile any qbase.qcow2 snapshots_beyond
for seed in 1 2 3 4; do
	run_case "qcow2: 3 random bit flips in header fields (seed $seed)" hostile any qbase.qcow2 flips "$seed" 3 4 103
done
run_case "qcow2: 64 random bit flips in the L1 table (seed 2)" hostile any qbase.qcow2 l1_flips
# qcow2: tables
run_case "qcow2: L2 entry beyond the device -> EIO" hostile eio qbase.qcow2 set_l2 $((1 << 20)) '(1 << 63) | (1 << 40)'
run_case "qcow2: L2 entry not cluster aligned" hostile eio qbase.qcow2 set_l2 $((5 << 20)) 'v | 0x200'
run_case "qcow2: L2 entry pointing at the header" hostile any qbase.qcow2 set_l2 $((12 << 20)) '(1 << 63)'
run_case "qcow2: L1 entry beyond the device -> EIO" hostile eio qbase.qcow2 set_l1 0 $(((1 << 63) | (1 << 44)))
run_case "qcow2: L1 entry not cluster aligned" hostile eio qbase.qcow2 set_l1 0 $(((1 << 63) | 0x30200))
run_case "qcow2: compressed cluster beyond the device -> EIO" hostile eio qcomp.qcow2 compressed_at 0 $((1 << 40))
run_case "qcow2: compressed cluster with random data" hostile any qcomp.qcow2 garbage_compressed 65536
run_case "qcow2: extended L2, subcluster both allocated and zero" hostile any qext.qcow2 ext_l2_conflict
run_case "qcow2: extended_l2 bit set on a normal image" hostile any qbase.qcow2 put 72 8 16

# VHD: footer (at the end and its copy at 0) and dynamic header (at 512)
run_case "vhd: max_table_entries 0xffffffff" hostile load-fail vdyn.vhd vhd_put $((512 + 28)) 4 0xffffffff
run_case "vhd: max_table_entries smaller than the disk" hostile any vdyn.vhd vhd_put $((512 + 28)) 4 1
run_case "vhd: block_size 3 MiB (not a power of two)" hostile any vdyn.vhd vhd_put $((512 + 32)) 4 $((3 << 20))
run_case "vhd: block_size 0" hostile load-fail vdyn.vhd vhd_put $((512 + 32)) 4 0
run_case "vhd: block_size 512" hostile any vdyn.vhd vhd_put $((512 + 32)) 4 512
run_case "vhd: BAT beyond the device" hostile load-fail vdyn.vhd vhd_put $((512 + 16)) 8 $((1 << 40))
run_case "vhd: dynamic header beyond the device" hostile load-fail vdyn.vhd vhd_footer_put -496 8 $((1 << 40))
run_case "vhd: current_size larger than the BAT covers" hostile any vdyn.vhd vhd_footer_put -464 8 $((1 << 40))
run_case "vhd: disk type 5" hostile load-fail vdyn.vhd vhd_footer_put -452 4 5
run_case "vhd: dynamic disk marked differencing, no backing" hostile any vdyn.vhd vhd_footer_put -452 4 4
run_case "vhd: BAT entry beyond the device" hostile eio vdyn.vhd set_bat 1 0x7ffffff0
run_case "vhd: BAT entry pointing at the footer copy" hostile any vdyn.vhd set_bat 1 0
run_case "vhd: two BAT entries for one block" hostile any vdyn.vhd duplicate_bat
run_case "vhd: fixed image shorter than current_size" hostile load-fail vfix.vhd fixed_short
run_case "vhd: 24 random bit flips in the footer, checksums fixed (seed 3)" hostile any vdyn.vhd footer_flips
for seed in 4 5 6 7; do
	run_case "vhd: 3 random bit flips in dynamic header fields, checksum fixed (seed $seed)" \
		hostile any vdyn.vhd vhd_flips "$seed" 3 $((512 + 8)) $((512 + 39))
done
tap_done
