#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=1800
#
# Writes through writable vhdcrypt tables, checked by the image's own tools
# afterwards: random writes of odd sizes (O_DIRECT and buffered, several
# threads, flushes) into every kind of image; after the table is removed
# the image passes qemu-img check (or vhdcheck) clean, QEMU (or the
# independent VHD decoder) reads exactly what was written, and so does a
# new mapping. Then what must stay unchanged: internal snapshots, backing
# files, read-only mappings; and zero and compressed clusters, the OpenXT
# fixtures with their key hash, discard, write-zeroes, fio's verify, the
# whole disk filled and a device too small to grow in.

# shellcheck disable=SC2034 # W_* are read by lib-write.sh
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-img.sh"
# shellcheck disable=SC2034 # read by run_case in lib-img.sh
CASE_SPLIT=1	# independent cases: make check spreads them over the kernels
. "$(dirname "$0")/lib-write.sh"

start_image_test qemu-img qemu-io cryptsetup xz
[ -x "$WLOG" ] || skip_all "selftests/tools not built (make selftests-tools)"
OX=$FIXTURES/openxt
SIZE=24M

# map_rw FILE [OPT...]: a writable mapping of FILE as the current image.
map_rw() {
	local file=$1
	shift
	LOOP=$(new_loop "$file") || return 1
	dm_create "$CASE_PREFIX-rw" "$(wtable "$LOOP" "$@")"
}

# run_writes FILE ARGS...: wlog writes through a writable mapping, then the
# table goes away (its postsuspend commits everything).
run_writes() {
	local file=$1
	shift
	map_rw "$file" || return 1
	"$WLOG" run "$(dev rw)" --journal "$WORK/journal" --seed "$RANDOM" "$@" >/dev/null ||
		return 1
	dm_remove "$CASE_PREFIX-rw"
}

# Random writes into an empty image of each kind.
kind_case() {
	local kind=$1 img=$WORK/$1.img
	shift
	wimg_make "$kind" "$img" "$SIZE" && wimg_grow "$img" || return 1
	run_writes "$img" --writes 300 --flush-every 20 "$@" && verified "$img"
}

for kind in qcow2 qcow2-512 qcow2-2m qcow2-extl2 qcow2-v2 qcow2-luks vhd vhd-openxt; do
	run_case "random writes, $kind, O_DIRECT, 3 threads" kind_case "$kind" --direct --threads 3
done
run_case "random writes, qcow2-luks, buffered" kind_case qcow2-luks
run_case "random writes, qcow2-luks-aes128, O_DIRECT, 2 threads" kind_case qcow2-luks-aes128 \
	--direct --threads 2
run_case "random writes, qcow2-luks-cbc-essiv, O_DIRECT, 2 threads" kind_case qcow2-luks-cbc \
	--direct --threads 2
run_case "random writes, vhd-openxt, buffered" kind_case vhd-openxt

# Writes over data QEMU wrote: in place, partly allocated, and around it.
over_qemu_case() {
	local kind=$1 img=$WORK/over.img args
	wimg_make "$kind" "$img" "$SIZE" || return 1
	mapfile -t args < <(wimg_qemu_args "$img")
	qemu-io "${args[@]}" -c "write -P 0x5a 1M 3M" -c "write -P 0x66 9M 130k" \
		-c "write -P 0x17 20M 1k" >/dev/null || return 1
	wimg_plain "$img" "$WORK/initial.raw" && wimg_grow "$img" || return 1
	run_writes "$img" --writes 200 --direct --threads 2 &&
		verified "$img" --initial "$WORK/initial.raw"
}
run_case "over QEMU's data, qcow2-luks" over_qemu_case qcow2-luks
run_case "over QEMU's data, qcow2-extl2" over_qemu_case qcow2-extl2
run_case "over QEMU's data, vhd" over_qemu_case vhd

# Zero clusters (v3) and compressed clusters are copied on write.
special_case() {
	local img=$WORK/special.img src=$WORK/src.raw
	W_KIND=qcow2 W_FMT=qcow2 W_CIPHER=none W_KEY=- W_OPTS=''
	truncate -s "$SIZE" "$src"
	dd if=/dev/urandom of="$src" bs=64k count=64 seek=16 conv=notrunc status=none
	qemu-img convert -c -O qcow2 "$src" "$img" || return 1
	qemu-io -f qcow2 -c "write -z 2M 256k" -c "write -z -u 6M 64k" "$img" >/dev/null ||
		return 1
	W_SECTORS=$(($(qemu_size -f qcow2 "$img") / 512))
	wimg_plain "$img" "$WORK/initial.raw" && wimg_grow "$img" || return 1
	run_writes "$img" --writes 200 --first 0 --sectors 16384 --max-size 65536 \
		--direct --threads 2 && verified "$img" --initial "$WORK/initial.raw"
}
run_case "into compressed and zero clusters" special_case

# An internal snapshot reads unchanged after writes to the active layer.
snapshot_case() {
	local img=$WORK/snap.img
	wimg_make qcow2 "$img" "$SIZE" || return 1
	qemu-io -f qcow2 -c "write -P 0x33 0 8M" "$img" >/dev/null &&
		qemu-img snapshot -c before "$img" &&
		qemu-img convert -f qcow2 -O raw "$img" "$WORK/before.raw" &&
		wimg_grow "$img" || return 1
	run_writes "$img" --writes 200 --first 0 --sectors 20000 --direct &&
		verified "$img" --initial "$WORK/before.raw" || return 1
	qemu-img convert -f qcow2 -l snapshot.name=before -O raw "$img" "$WORK/snap.raw" &&
		cmp "$WORK/before.raw" "$WORK/snap.raw"
}
run_case "internal snapshot unchanged by writes" snapshot_case

# A backing file is read, never written; COW copies its data up.
backing_case() {
	local base=$WORK/base.qcow2 top=$WORK/top.qcow2 sum lb
	qemu-img create -q -f qcow2 "$base" "$SIZE" &&
		qemu-io -f qcow2 -c "write -P 0x44 0 12M" "$base" >/dev/null &&
		luks_create "$top" "$SIZE" "$W_PASS" "" -b "$base" -F qcow2 || return 1
	W_KIND=qcow2-luks W_FMT=qcow2
	local ck
	ck=$(luks_key "$top" "$W_PASS") || return 1
	W_CIPHER=${ck% *} W_KEY=${ck#* } W_SECTORS=$(($(qemu_size -f qcow2 "$top") / 512))
	sum=$(sha256sum <"$base")
	qemu-img convert --object "secret,id=sec0,data=$W_PASS" \
		--image-opts "driver=qcow2,file.filename=$top,encrypt.key-secret=sec0" \
		-O raw "$WORK/initial.raw" || return 1
	wimg_grow "$top"
	lb=$(new_loop "$base" --ro) &&
		dm_create "$CASE_PREFIX-base" "0 $W_SECTORS vhdcrypt qcow2 $lb none - 0" --readonly ||
		return 1
	W_OPTS="iv_sector:host backing:/dev/mapper/$CASE_PREFIX-base"
	run_writes "$top" --writes 200 --direct --threads 2 || return 1
	[ "$(sha256sum <"$base")" = "$sum" ] || { echo "the backing file changed"; return 1; }
	verified "$top" --initial "$WORK/initial.raw"
}
run_case "backing file unchanged, data copied up" backing_case

# OpenXT fixtures: writes keep the key hash valid; tapdisk's rules decode.
openxt_case() {
	local name=$1 keybits=$2 img=$WORK/$1.vhd
	xz -dc "$OX/$name.vhd.xz" >"$img" &&
		"$VHDCHECK" decode "$img" --key-dir "$OX/keys" -o "$WORK/initial.raw" || return 1
	W_KIND=vhd-openxt W_FMT=vhd W_CIPHER=aes-xts-plain W_OPTS=''
	W_KEYFILE="$OX/keys/$name,aes-xts-plain,$keybits.key"
	W_KEY=$(od -An -v -tx1 "$W_KEYFILE" | tr -d ' \n')
	W_SECTORS=$(($(vhd_current_size "$img") / 512))
	wimg_grow "$img"
	run_writes "$img" --writes 200 --direct --threads 2 || return 1
	# The key hash must still match: decode through the key directory.
	"$VHDCHECK" decode "$img" --key-dir "$OX/keys" -o "$WORK/plain.raw" &&
		"$WLOG" check "$WORK/journal" "$WORK/plain.raw" --initial "$WORK/initial.raw" &&
		verified "$img" --initial "$WORK/initial.raw"
}
run_case "OpenXT fixture aes256xts-nonce, key hash kept" openxt_case aes256xts-nonce 512
run_case "OpenXT fixture aes128xts, key hash kept" openxt_case aes128xts 256

# A read-only table never writes a byte.
readonly_case() {
	local img=$WORK/ro.img sum
	wimg_make qcow2-luks "$img" "$SIZE" || return 1
	sum=$(sha256sum <"$img")
	loop "$img" && map ro "$(wtable "$LOOP")" &&
		dd if="$(dev ro)" of=/dev/null bs=1M status=none || return 1
	dm_remove "$CASE_PREFIX-ro"
	[ "$(sha256sum <"$img")" = "$sum" ]
}
run_case "read-only table leaves the image untouched" readonly_case

# Discard frees clusters (they are reused); write-zeroes reads zeros.
discard_case() {
	local kind=$1 img=$WORK/d.img end1 end2
	wimg_make "$kind" "$img" "$SIZE" && wimg_grow "$img" || return 1
	map_rw "$img" allow_discards || return 1
	dd if=/dev/urandom of="$(dev rw)" bs=1M count=8 oflag=direct status=none &&
		blkdiscard -o 1M -l 4M "$(dev rw)" &&
		blkdiscard -z -o 6M -l 1M "$(dev rw)" || return 1
	# A suspend commits and waits until the freed clusters are released.
	dmsetup suspend "$CASE_PREFIX-rw" && dmsetup resume "$CASE_PREFIX-rw" || return 1
	end1=$(dmsetup status "$CASE_PREFIX-rw" | sed -n 's/.*data_end:\([0-9]*\).*/\1/p')
	dd if=/dev/urandom of="$(dev rw)" bs=1M count=2 seek=1 oflag=direct status=none || return 1
	end2=$(dmsetup status "$CASE_PREFIX-rw" | sed -n 's/.*data_end:\([0-9]*\).*/\1/p')
	cmp -n 1M -i 3M:0 "$(dev rw)" /dev/zero && cmp -n 1M -i 6M:0 "$(dev rw)" /dev/zero ||
		return 1
	dm_remove "$CASE_PREFIX-rw"
	wimg_check "$img" || return 1
	if [ "$W_FMT" = qcow2 ]; then
		# Freed clusters were reused: the image did not grow.
		[ "$end2" -le "$end1" ] || { echo "data_end grew from $end1 to $end2"; return 1; }
		wimg_plain "$img" "$WORK/p.raw" && cmp -n 1M -i 3M:0 "$WORK/p.raw" /dev/zero
	fi
}
run_case "discard and write-zeroes, qcow2" discard_case qcow2
run_case "discard and write-zeroes, vhd" discard_case vhd

# Fill the whole virtual disk, then check it all.
fill_case() {
	local kind=$1 img=$WORK/fill.img
	wimg_make "$kind" "$img" 16M && wimg_grow "$img" || return 1
	run_writes "$img" --writes 64 --min-size 262144 --max-size 262144 --direct &&
		map_rw "$img" || return 1
	# Every sector once more, in 1 MiB writes, then the whole disk verified.
	dd if="$WORK/fill.pattern" of="$(dev rw)" bs=1M oflag=direct status=none 2>/dev/null
	dm_remove "$CASE_PREFIX-rw"
	wimg_check "$img" && wimg_plain "$img" "$WORK/plain.raw" &&
		cmp "$WORK/plain.raw" "$WORK/fill.pattern"
}
head -c 16M /dev/urandom >"$WORK/fill.pattern"
run_case "fill the whole disk, qcow2-luks" fill_case qcow2-luks
run_case "fill the whole disk, vhd-openxt" fill_case vhd-openxt

# fio with verify, several jobs on disjoint ranges: what each job wrote
# reads back at once, and again from the image through a new mapping.
fio_case() {
	local kind=$1 img=$WORK/fio.img args
	wimg_make "$kind" "$img" "$SIZE" && wimg_grow "$img" && map_rw "$img" || return 1
	args=(--filename="$(dev rw)" --direct=1 --ioengine=psync --rw=randwrite
		--bsrange=4k-64k --numjobs=3 --size=6M --offset_increment=8M
		--verify=crc32c --verify_state_save=0 --randseed="$RANDOM" --group_reporting)
	fio --name=w "${args[@]}" --fsync=16 >"$WORK/fio.out" 2>&1 ||
		{ tail -20 "$WORK/fio.out"; return 1; }
	dm_remove "$CASE_PREFIX-rw"
	wimg_check "$img" && loop "$img" && map ro "$(wtable "$LOOP")" || return 1
	args[0]=--filename="$(dev ro)"
	fio --name=w "${args[@]}" --verify_only >"$WORK/fio.out" 2>&1 ||
		{ tail -20 "$WORK/fio.out"; return 1; }
}
if command -v fio >/dev/null; then
	run_case "fio verify, 3 jobs, qcow2-luks" fio_case qcow2-luks
	run_case "fio verify, 3 jobs, vhd-openxt" fio_case vhd-openxt
else
	tap_skip "fio verify" "no fio"
fi

# A device without room: ENOSPC, and the image stays consistent.
enospc_case() {
	local img=$WORK/small.img
	wimg_make qcow2 "$img" 64M || return 1
	truncate -s 4M "$img"
	map_rw "$img" || return 1
	if dd if=/dev/urandom of="$(dev rw)" bs=1M count=16 oflag=direct status=none 2>"$WORK/dd.err"; then
		echo "writing 16 MiB into a 4 MiB device succeeded"
		return 1
	fi
	grep -q "No space left" "$WORK/dd.err" || { cat "$WORK/dd.err"; return 1; }
	dm_remove "$CASE_PREFIX-rw"
	wimg_check "$img"
}
run_case "no room on the device: ENOSPC, image consistent" enospc_case

tap_done
