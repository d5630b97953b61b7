#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=600
#
# Unencrypted VHD images made by qemu-img (fixed and dynamic, with and
# without force_size, and one whose footer current_size exceeds the CHS size)
# mapped with cipher "none" and compared with qemu-img convert; broken images
# (bad checksums, wrong cookies, blocks beyond the end of the file) must be
# refused at table load with a vhdcrypt message in the kernel log.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-img.sh"

start_image_test qemu-img qemu-io

# fill IMG: the data pattern of every positive case, written with qemu-io:
# sector 0, 64k at 1M, 8k across the 2M block boundary, a run at an odd
# sector in the middle and the last sector of the disk (current_size).
fill() {
	local img=$1 size
	size=$(vhd_current_size "$img")
	qemu-io -f vpc \
		-c "write -P 0x11 0 4k" \
		-c "write -P 0xab 1M 64k" \
		-c "write -P 0x22 $((2048 - 4))k 8k" \
		-c "write -P 0x44 $(((size / 2 & ~511) + 3 * 512)) 1536" \
		-c "write -P 0x33 $((size - 512)) 512" \
		"$img" >/dev/null
}

# map_and_compare NAME IMG: map IMG with cipher none, check the device is
# current_size bytes long, equals QEMU's view up to QEMU's size and reads
# zeros past it.
map_and_compare() {
	local name=$1 img=$2 raw=$WORK/$1.raw dev qsize min
	local vhd_current_size vhd_chs_sectors vhd_type vhd_creator
	eval "$($IMGTOOL vhd-info "$img")"
	qsize=$(qemu_size -f vpc "$img") || return 1
	echo "$name: $vhd_type, creator '$vhd_creator', current_size $vhd_current_size," \
		"CHS $((vhd_chs_sectors * 512)), qemu-img size $qsize"
	qemu_raw -f vpc "$img" "$raw" || return 1
	loop "$img" || return 1
	map "$name" "0 $((vhd_current_size / 512)) vhdcrypt vhd $LOOP none - 0" || return 1
	dev=$(dev "$name")
	[ "$(dev_size "$dev")" -eq "$vhd_current_size" ] ||
		{ echo "device size $(dev_size "$dev") != $vhd_current_size"; return 1; }
	min=$((qsize < vhd_current_size ? qsize : vhd_current_size))
	cmp_dev_file "$dev" "$raw" "$min" || return 1
	is_zero "$dev" "$min" $((vhd_current_size - min)) || return 1
	rm -f "$raw"
}

# positive NAME SIZE OPTS
positive() {
	local img=$WORK/$1.vhd
	qemu-img create -q -f vpc -o "$3" "$img" "$2" || return 1
	fill "$img" || return 1
	map_and_compare "$1" "$img"
}

# A dynamic image whose footer says current_size = every BAT block (as
# vhd-util makes them) while the CHS geometry, which QEMU uses for a "qemu"
# creator, is smaller: the device must be current_size long and the part QEMU
# cannot see must read as zeros.
current_beyond_chs() {
	local img=$WORK/beyond.vhd vhd_max_table_entries vhd_block_size vhd_current_size new
	qemu-img create -q -f vpc -o subformat=dynamic "$img" 21M || return 1
	fill "$img" || return 1
	eval "$($IMGTOOL vhd-info "$img")"
	new=$((vhd_max_table_entries * vhd_block_size))
	[ "$new" -gt "$vhd_current_size" ] || { echo "BAT covers no more than CHS"; return 1; }
	$IMGTOOL poke "$img" 48 8 "$new" && $IMGTOOL poke "$img" -464 8 "$new" &&
		$IMGTOOL vhd-fix "$img" || return 1
	map_and_compare beyond "$img"
}

# ---------------------------------------------------------------------------
# Broken images: each is a damaged copy of a small good image.

make_bases() {
	qemu-img create -q -f vpc -o subformat=fixed,force_size=on "$WORK/base-fixed.vhd" 4M &&
		qemu-io -f vpc -c "write -P 0x55 512k 64k" "$WORK/base-fixed.vhd" >/dev/null &&
		qemu-img create -q -f vpc -o force_size=on "$WORK/base-dyn.vhd" 8M &&
		qemu-io -f vpc -c "write -P 0x55 0 64k" -c "write -P 0x66 2M 4k" \
			-c "write -P 0x77 6M 4k" "$WORK/base-dyn.vhd" >/dev/null
}

# broken NAME BASE DAMAGE...: copy BASE, run DAMAGE with the copy as last
# argument, the table load must fail.
broken() {
	local name=$1 img=$WORK/$1.vhd size
	cp "$WORK/base-$2.vhd" "$img" || return 1
	shift 2
	"$@" "$img" || { echo "could not damage the image"; return 1; }
	size=$(vhd_current_size "$img")
	loop "$img" || return 1
	expect_load_fail "$name" "0 $((size / 512)) vhdcrypt vhd $LOOP none - 0"
}

xor_at() { $IMGTOOL xor "$3" "$1" "$2"; }
footer_checksums() { xor_at 64 0xff "$1" && xor_at -448 0xff "$1"; }
footer_cookies() { xor_at 7 0x01 "$1" && xor_at -505 0x01 "$1" && $IMGTOOL vhd-fix "$1"; }
fixed_cookie() { xor_at -505 0x01 "$1" && $IMGTOOL vhd-fix "$1"; }
header_checksum() { xor_at $((512 + 36)) 0x01 "$1"; }
header_cookie() { xor_at $((512 + 7)) 0x01 "$1" && $IMGTOOL vhd-fix "$1"; }

# bat_sectors IMG: the allocated BAT entries (512-byte sectors), sorted.
bat_sectors() {
	local img=$1 hdr tab n
	hdr=$(be "$img" 16 8)
	tab=$(be "$img" $((hdr + 16)) 8)
	n=$(be "$img" $((hdr + 28)) 4)
	od --endian=big -An -v -tu4 -j "$tab" -N $((n * 4)) "$img" | tr -s ' ' '\n' |
		grep -v -x -e '' -e 4294967295 | sort -n
}

# truncate_at IMG BYTES: cut the image and put the footer back at the end.
truncate_at() {
	local img=$1 len=$2
	head -c 512 "$img" >"$img.footer" && truncate -s "$len" "$img" &&
		cat "$img.footer" >>"$img" && rm -f "$img.footer"
}

# Only the first allocated block stays inside the file.
blocks_beyond_end() {
	local first
	first=$(bat_sectors "$1" | head -n 1)
	truncate_at "$1" $(((first + 1) * 512 + 2 * 1024 * 1024))
}

# The last allocated block is cut in its middle.
block_partly_beyond_end() {
	local last
	last=$(bat_sectors "$1" | tail -n 1)
	truncate_at "$1" $(((last + 1) * 512 + 1024 * 1024))
}

# Only the footer at the end is damaged: the copy at offset 0 is used (the
# kernel log says so) and the data is intact.
end_footer_only() {
	local img=$WORK/endfooter.vhd log
	cp "$WORK/base-dyn.vhd" "$img" && xor_at -448 0xff "$img" &&
		qemu_raw -f vpc "$WORK/base-dyn.vhd" "$WORK/endfooter.raw" || return 1
	loop "$img" || return 1
	kmsg_mark
	map endfooter "0 16384 vhdcrypt vhd $LOOP none - 0" || return 1
	log=$(kmsg_since)
	printf '%s\n' "$log" | sed 's/^/dmesg: /'
	printf '%s\n' "$log" | grep -q vhdcrypt || { echo "no vhdcrypt message in dmesg"; return 1; }
	cmp_dev_file "$(dev endfooter)" "$WORK/endfooter.raw" 8388608
}

wrong_format() {
	local img=$WORK/q.qcow2
	qemu-img create -q -f qcow2 "$img" 8M || return 1
	loop "$img" || return 1
	expect_load_fail wrongfmt "0 16384 vhdcrypt vhd $LOOP none - 0"
}

tap_plan 15
run_case "fixed, CHS size" positive fixed 24M subformat=fixed
run_case "fixed, force_size" positive fixed-fs 24M subformat=fixed,force_size=on
run_case "dynamic, CHS size" positive dyn 21M subformat=dynamic
run_case "dynamic, force_size" positive dyn-fs 20M subformat=dynamic,force_size=on
run_case "dynamic, footer current_size beyond CHS" current_beyond_chs
if make_bases; then
	run_case "broken: fixed footer checksum" broken fixed-csum fixed xor_at -448 0xff
	run_case "broken: dynamic footer checksums (both copies)" broken dyn-csum dyn footer_checksums
	run_case "broken: dynamic footer cookies (both copies)" broken dyn-cookie dyn footer_cookies
	run_case "broken: fixed footer cookie" broken fixed-cookie fixed fixed_cookie
	run_case "broken: dynamic header checksum" broken hdr-csum dyn header_checksum
	run_case "broken: dynamic header cookie" broken hdr-cookie dyn header_cookie
	run_case "broken: allocated blocks beyond the end of the file" broken trunc dyn blocks_beyond_end
	run_case "broken: allocated block partly beyond the end" broken trunc2 dyn block_partly_beyond_end
	run_case "end footer damaged, copy at offset 0 used" end_footer_only
else
	tap_diag "could not make the base images for the broken cases"
	for i in 1 2 3 4 5 6 7 8 9; do run_case "broken image $i" false; done
fi
run_case "qcow2 image mapped as vhd" wrong_format
tap_done
