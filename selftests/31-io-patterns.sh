#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=600
#
# I/O patterns on two encrypted mappings, an OpenXT VHD fixture (AES-256-XTS,
# virtual-sector IVs) and a qcow2+LUKS image with random data (host-sector
# IVs, 4k clusters): O_DIRECT and buffered reads at odd offsets and sizes,
# concurrent random O_DIRECT readers checked against the expected plaintext
# while fio loads the device, dmsetup table/status round trips, and the key
# wipe/set lifecycle.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-img.sh"

start_image_test qemu-img qemu-io cryptsetup xz dd
OX=$FIXTURES/openxt

# Where data is: sectors near which random reads are aimed.
VHD_HOT="0 4096 8190 30001 30330 61440 65535 109517 204798"
QCOW_HOT="0 2048 4096 7000 8184 12288 16384 20000 24576 32767"

# The VHD fixture and its expected plaintext.
setup_vhd() {
	local k
	xz -dc "$OX/aes256xts.vhd.xz" >"$WORK/aes256xts.vhd" &&
		python3 "$OX/expected.py" aes256xts.vhd --out "$WORK/vhd.exp" || return 1
	k=$(od -An -v -tx1 "$OX/keys/aes256xts,aes-xts-plain,512.key" | tr -d ' \n')
	loop "$WORK/aes256xts.vhd" || return 1
	VHD_TABLE="0 $(($(vhd_current_size "$WORK/aes256xts.vhd") / 512)) vhdcrypt vhd $LOOP aes-xts-plain $k 0"
	VHD_KEY=$k
}

# A 16M qcow2+LUKS image with 4k clusters holding random data (converted
# from a raw file, so host and guest offsets differ), holes, and overwrites.
setup_qcow2() {
	local src=$WORK/src.raw img=$WORK/luks.qcow2 ck q_size
	truncate -s 16M "$src" &&
		dd if=/dev/urandom of="$src" bs=64k count=48 seek=16 conv=notrunc status=none &&
		dd if=/dev/urandom of="$src" bs=4k count=300 seek=3000 conv=notrunc status=none &&
		dd if=/dev/urandom of="$src" bs=512 count=7 seek=32760 conv=notrunc status=none &&
		qemu_retry qemu-img convert -O qcow2 --object secret,id=sec0,data=pw-io \
			-o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10,cluster_size=4k \
			"$src" "$img" &&
		qemu-io --object secret,id=sec0,data=pw-io \
			--image-opts "driver=qcow2,file.filename=$img,encrypt.key-secret=sec0" \
			-c "write -P 0x5a 1536k 3k" -c "write -z 2M 64k" -c "write -P 0x11 7000k 4k" >/dev/null &&
		qemu-img convert --object secret,id=sec0,data=pw-io \
			--image-opts "driver=qcow2,file.filename=$img,encrypt.key-secret=sec0" -O raw "$WORK/qcow2.exp" ||
		return 1
	ck=$(luks_key "$img" pw-io) || return 1
	q_size=$(qcow2_size "$img")
	loop "$img" || return 1
	QCOW_TABLE="0 $((q_size / 512)) vhdcrypt qcow2 $LOOP $ck 0 1 iv_sector:host"
	QCOW_KEY=${ck#* }
}

# odd_direct NAME EXP: O_DIRECT reads, "bs skip-sectors count" triples.
odd_direct() {
	local dev exp=$2 bs skip count off len bad=0
	local size=$(($(stat -c %s "$exp") / 512))
	dev=$(dev "$1")
	while read -r bs skip count; do
		# the list is made for 100M; a smaller device gets the same sectors modulo
		if [ "$skip" = end ]; then
			skip=$((size - count * bs / 512))
		else
			skip=$((skip % (size - count * bs / 512)))
		fi
		off=$((skip * 512)) len=$((bs * count))
		if ! dd if="$dev" of="$WORK/piece" iflag=direct,skip_bytes bs="$bs" skip="$off" \
			count="$count" status=none; then
			echo "O_DIRECT read bs=$bs at sector $skip failed"
			bad=1
			continue
		fi
		cmp -s "$WORK/piece" <(dd if="$exp" iflag=skip_bytes,count_bytes skip="$off" count="$len" \
			status=none) || { echo "O_DIRECT bs=$bs at sector $skip, $count blocks: wrong data"; bad=1; }
	done <<-EOF
		512 1 1
		512 7 3
		1536 4095 2
		3584 8189 5
		4096 8191 1
		65536 30001 3
		66048 61439 4
		1048576 1 5
		512 end 1
		4096 end 3
	EOF
	return "$bad"
}

# buffered NAME EXP: unaligned reads through the page cache, then the whole
# device.
buffered() {
	local dev exp=$2 off len bad=0
	dev=$(dev "$1")
	for off in 1 511 4196352 15359000 30001; do
		for len in 1 100 4097 70000; do
			cmp -s <(dd if="$dev" iflag=skip_bytes,count_bytes bs=1000 skip="$off" count="$len" status=none) \
				<(dd if="$exp" iflag=skip_bytes,count_bytes bs=1000 skip="$off" count="$len" status=none) ||
				{ echo "buffered read of $len bytes at byte $off: wrong data"; bad=1; }
		done
	done
	same "$dev" "$exp" || bad=1
	return "$bad"
}

# concurrent NAME EXP HOT...: 4 random O_DIRECT checkers and 2 whole-device
# hashes run while fio reads at random with 4 jobs of queue depth 8.
concurrent() {
	local dev exp=$2 pids=() i bad=0 want fio_out=$WORK/fio.out
	dev=$(dev "$1")
	shift 2
	want=$(sha256sum <"$exp" | cut -d' ' -f1)
	if command -v fio >/dev/null; then
		fio --name=randread --filename="$dev" --readonly --rw=randread --direct=1 \
			--ioengine=libaio --numjobs=4 --iodepth=8 --bsrange=512-64k \
			--runtime=10 --time_based --group_reporting >"$fio_out" 2>&1 &
		pids+=($!)
	else
		echo "fio not installed: checkers run without it"
	fi
	for i in 1 2 3 4; do
		python3 "$SELFTEST_DIR/randread.py" "$dev" "$exp" 150 "$i" "$@" &
		pids+=($!)
	done
	for i in 1 2; do
		[ "$(sha256_dev "$dev")" = "$want" ] || { echo "whole-device sha256 $i differs under load"; bad=1; }
	done
	for i in "${pids[@]}"; do
		wait "$i" || bad=1
	done
	if [ -f "$fio_out" ]; then
		grep -E 'err=|READ:' "$fio_out"
		grep -q 'err= *0' "$fio_out" || { echo "fio reported errors"; bad=1; }
	fi
	return "$bad"
}

# roundtrip NAME EXP FORMAT: "dmsetup table" loads back unchanged, data
# unchanged; "dmsetup status" is "<format> <sectors> name:value..." with the
# documented fields.
roundtrip() {
	local name=$CASE_PREFIX-$1 exp=$2 fmt=$3 t1 t2 st f
	t1=$(dmsetup table "$name") || return 1
	echo "table: ${t1:0:80}..."
	dmsetup load --readonly "$name" --table "$t1" && dmsetup suspend "$name" &&
		dmsetup resume "$name" || return 1
	t2=$(dmsetup table "$name")
	[ "$t1" = "$t2" ] || { echo "table changed after reload: $t2"; return 1; }
	same "$(dev "$1")" "$exp" || return 1
	st=$(dmsetup status "$name") || return 1
	echo "status: $st"
	read -r -a f <<<"$st"
	# f: start length target format sectors fields...
	if [ "${f[2]}" != vhdcrypt ] || [ "${f[3]}" != "$fmt" ] || [ "${f[4]}" != "${f[1]}" ]; then
		echo "status does not start with <format> <virtual sectors>"
		return 1
	fi
	status_fields "${f[@]:5}" || return 1
	for k in cache_hits cache_misses io_errors mem; do
		[[ $st =~ \ $k:[0-9]+( |$) ]] || { echo "status has no numeric $k"; return 1; }
	done
	case $fmt in
	vhd) [[ $st =~ \ vhd_type:(fixed|dynamic|differencing)( |$) ]] ;;
	qcow2) [[ $st =~ \ qcow2_version:[23]\ .*cluster_size:[0-9]+ ]] ;;
	esac || { echo "status lacks the $fmt fields"; return 1; }
}

status_fields() {
	local f
	for f; do
		[[ $f =~ ^[a-z0-9_]+:[^:[:space:]]+$ ]] || { echo "status field '$f' is not name:value"; return 1; }
	done
}

# lifecycle NAME EXP KEY: key wipe/set as in dm-crypt.
lifecycle() {
	local name=$CASE_PREFIX-$1 exp=$2 key=$3 short
	short=${key:0:$((${#key} / 2))}
	dmsetup message "$name" 0 key wipe 2>/dev/null &&
		{ echo "key wipe accepted on an active device"; return 1; }
	dmsetup suspend "$name" && dmsetup message "$name" 0 key wipe || return 1
	dmsetup resume "$name" || return 1
	dd if="$(dev "$1")" of=/dev/null bs=4k count=1 iflag=direct status=none 2>/dev/null &&
		{ echo "a read without a key succeeded"; return 1; }
	dmsetup suspend "$name" || return 1
	dmsetup message "$name" 0 key set "$short" 2>/dev/null &&
		{ echo "key set with half the key size accepted"; return 1; }
	dmsetup message "$name" 0 key set "$key" && dmsetup resume "$name" || return 1
	same "$(dev "$1")" "$exp"
}

# on NAME TABLE FUNC ARGS...: map TABLE as NAME, then FUNC NAME EXPECTED ARGS...
on() {
	local name=$1 table=$2 fn=$3
	shift 3
	map "$name" "$table" && "$fn" "$name" "$WORK/$name.exp" "$@"
}

# device_cases NAME TABLE FORMAT KEY HOT...: the checks of one mapping.
device_cases() {
	local name=$1 table=$2 fmt=$3 key=$4
	shift 4
	run_case "$name: O_DIRECT reads at odd offsets and sizes" on "$name" "$table" odd_direct
	run_case "$name: buffered unaligned reads" on "$name" "$table" buffered
	run_case "$name: concurrent random O_DIRECT readers under fio" on "$name" "$table" concurrent "$@"
	run_case "$name: table reload round trip, status" on "$name" "$table" roundtrip "$fmt"
	run_case "$name: key wipe / key set" on "$name" "$table" lifecycle "$key"
}

tap_plan 12
run_case "OpenXT fixture and its expected plaintext" setup_vhd
if [ -n "${VHD_TABLE:-}" ]; then
	# shellcheck disable=SC2086 # a list of sectors
	device_cases vhd "$VHD_TABLE" vhd "$VHD_KEY" $VHD_HOT
else
	for i in 1 2 3 4 5; do run_case "vhd case $i (setup failed)" false; done
fi
run_case "qcow2+LUKS image made" setup_qcow2
if [ -n "${QCOW_TABLE:-}" ]; then
	# shellcheck disable=SC2086 # a list of sectors
	device_cases qcow2 "$QCOW_TABLE" qcow2 "$QCOW_KEY" $QCOW_HOT
else
	for i in 1 2 3 4 5; do run_case "qcow2 case $i (no image)" false; done
fi
tap_done
