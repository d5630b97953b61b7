#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=900
# check-kernels=6.1
#
# Faults below the target and hostile sizes (issue 14): image and backing
# devices with 4096-byte logical blocks are refused; a qcow2 whose l1_size
# far exceeds what its size needs, and a VHD with the largest BAT a valid
# image has, load with bounded memory and work (a load behind a slow device
# can be killed); a VHD with a 16 GiB BAT is refused at once; metadata
# reads that fail asynchronously (an error target behind dm-delay, as a
# failing disk, nbd or NFS would) under an L2 table, a VHD sector bitmap,
# the BAT or the L1 table give a failed load or EIO, never an oops, and the
# data is right again once the error is lifted.
#
# The cases from the L2 table on crashed the kernel before the fix (an oops
# in map(), the worker or the table load; the guest does not survive it),
# so they come last.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-img.sh"

start_image_test qemu-img qemu-io timeout blockdev
modprobe dm_delay 2>/dev/null || skip_all "dm-delay is not available"

put() { $IMGTOOL poke "$4" "$1" "$2" "$3"; }

# pattern BYTE LEN FILE: LEN bytes of BYTE (e.g. 0x5a).
pattern() {
	head -c "$2" /dev/zero | tr '\0' "\\$(printf %03o "$(($1))")" >"$3"
}

# range FILE OFFSET LEN: print LEN bytes at byte OFFSET of FILE.
range() {
	dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count="$3" bs=64k status=none
}

# read_ok DEV OFFSET LEN EXPECTED: an O_DIRECT read of the range succeeds
# and matches EXPECTED at the same offset.
read_ok() {
	if ! timeout 120 dd if="$1" of="$WORK/piece" iflag=direct,skip_bytes,count_bytes \
		skip="$2" count="$3" bs=64k status=none 2>"$WORK/dd.err"; then
		echo "read of $3 bytes at byte $2 failed: $(cat "$WORK/dd.err")"
		return 1
	fi
	cmp -s "$WORK/piece" <(range "$4" "$2" "$3") ||
		{ echo "read of $3 bytes at byte $2: wrong data"; return 1; }
}

# read_eio DEV OFFSET LEN: an O_DIRECT read of the range fails with EIO.
read_eio() {
	timeout 120 dd if="$1" of=/dev/null iflag=direct,skip_bytes,count_bytes \
		skip="$2" count="$3" bs=64k status=none 2>"$WORK/dd.err"
	case $? in
	0) echo "read of $3 bytes at byte $2 succeeded, expected EIO"; return 1 ;;
	124) echo "read of $3 bytes at byte $2 still running after 120 s"; return 1 ;;
	esac
	grep -qi 'input/output error' "$WORK/dd.err" ||
		{ echo "read at byte $2 failed, but not with EIO: $(cat "$WORK/dd.err")"; return 1; }
}

# loop_ss FILE SECTOR_SIZE: a read-only loop device with that logical block
# size, in $LOOP.
loop_ss() {
	[ -e /dev/loop-control ] || modprobe loop
	LOOP=$(losetup --find --show --read-only --sector-size "$2" "$1") || return 1
	at_exit losetup -d "$LOOP"
}

majmin() {
	printf '%d:%d\n' "0x$(stat -L -c %t "$1")" "0x$(stat -L -c %T "$1")"
}

# ---------------------------------------------------------------------------
# Images

# Pad a VHD to a multiple of 4096 bytes, footer at the new end (a loop
# device with 4096-byte sectors must see all of it).
pad_vhd() {
	local size
	size=$(stat -c %s "$1")
	tail -c 512 "$1" >"$1.footer" &&
		truncate -s $(((size + 4095) / 4096 * 4096 - 512)) "$1" &&
		cat "$1.footer" >>"$1" && rm -f "$1.footer"
}

make_images() {
	qemu-img create -q -f vpc -o force_size=on "$WORK/v.vhd" 16M &&
		qemu-io -f vpc -c "write -P 0x55 0 64k" -c "write -P 0x66 6M 64k" \
			-c "write -P 0x77 12M 4k" "$WORK/v.vhd" >/dev/null &&
		pad_vhd "$WORK/v.vhd" &&
		qemu_raw -f vpc "$WORK/v.vhd" "$WORK/v.raw" &&
		qemu-img create -q -f qcow2 -o cluster_size=4k "$WORK/q.qcow2" 16M &&
		qemu-io -f qcow2 -c "write -P 0x11 0 1M" -c "write -P 0x22 8M 256k" \
			-c "write -P 0x33 12M 64k" "$WORK/q.qcow2" >/dev/null &&
		qemu_raw -f qcow2 "$WORK/q.qcow2" "$WORK/q.raw" &&
		truncate -s 16M "$WORK/base.raw" &&
		dd if=/dev/urandom of="$WORK/base.raw" bs=64k count=16 seek=32 conv=notrunc status=none &&
		qemu-img create -q -f qcow2 -b "$WORK/base.raw" -F raw "$WORK/over.qcow2" &&
		qemu-io -f qcow2 -c "write -P 0x44 2M 64k" "$WORK/over.qcow2" >/dev/null &&
		qemu_raw -f qcow2 "$WORK/over.qcow2" "$WORK/over.raw"
}

vtable() { echo "0 $(($(vhd_current_size "$WORK/v.vhd") / 512)) vhdcrypt vhd $1 none - 0"; }
qtable() { echo "0 32768 vhdcrypt qcow2 $1 none - 0${2:+ 1 backing:$2}"; }

# ---------------------------------------------------------------------------
# 4096-byte logical blocks

# refused_4k NAME TABLE: the load fails and the kernel log says why in
# words about the logical block size.
refused_4k() {
	expect_load_fail "$1" "$2" || return 1
	kmsg_since | grep -qi 'logical block' ||
		{ echo "the kernel log does not mention the logical block size"; return 1; }
}

vhd_4k() { loop_ss "$WORK/v.vhd" 4096 && refused_4k v4k "$(vtable "$LOOP")"; }
qcow2_4k() { loop_ss "$WORK/q.qcow2" 4096 && refused_4k q4k "$(qtable "$LOOP")"; }

backing_4k() {
	local back
	loop_ss "$WORK/base.raw" 4096 && back=$LOOP &&
		loop "$WORK/over.qcow2" && refused_4k b4k "$(qtable "$LOOP" "$back")"
}

# The same files through 512-byte loop devices load and read right.
same_512() {
	local back
	loop_ss "$WORK/v.vhd" 512 && map v512 "$(vtable "$LOOP")" && same "$(dev v512)" "$WORK/v.raw" &&
		loop_ss "$WORK/q.qcow2" 512 && map q512 "$(qtable "$LOOP")" &&
		same "$(dev q512)" "$WORK/q.raw" &&
		loop_ss "$WORK/base.raw" 512 && back=$LOOP && loop "$WORK/over.qcow2" &&
		map b512 "$(qtable "$LOOP" "$back")" && same "$(dev b512)" "$WORK/over.raw"
}

# ---------------------------------------------------------------------------
# Load-time work and memory

# A qcow2 of 64 MiB (one L1 entry needed) whose header claims the largest
# L1 table, 2^22 entries (32 MiB), moved to the end of the file (sparse).
make_huge_l1() {
	local img=$WORK/hl1.qcow2 l1e end
	qemu-img create -q -f qcow2 "$img" 64M &&
		qemu-io -f qcow2 -c "write -P 0x3c 0 1M" -c "write -P 0x3d 40M 64k" "$img" >/dev/null &&
		qemu_raw -f qcow2 "$img" "$WORK/hl1.raw" || return 1
	eval "$($IMGTOOL qcow2-info "$img")" || return 1
	# shellcheck disable=SC2154 # set by qcow2-info
	l1e=$(be "$img" "$q_l1_table_offset" 8)
	end=$((($(stat -c %s "$img") + 65535) / 65536 * 65536))
	put "$end" 8 "$l1e" "$img" && truncate -s $((end + (32 << 20))) "$img" &&
		put 36 4 $((1 << 22)) "$img" && put 40 8 "$end" "$img" || return 1
	# QEMU reads it as before.
	qemu_raw -f qcow2 "$img" "$WORK/hl1.check" && cmp "$WORK/hl1.raw" "$WORK/hl1.check"
}

status_field() {
	dmsetup status "$CASE_PREFIX-$1" | sed -n "s/.* $2:\([0-9]*\).*/\1/p"
}

bufio_bytes() { cat /sys/module/dm_bufio/parameters/current_allocated_bytes; }

# huge_l1 what: the image loads and reads right; "mem" is below 1 MiB, or
# loading it grew dm-bufio's cache by less than 2 MiB.
huge_l1() {
	local before after mem
	[ -f "$WORK/hl1.raw" ] || make_huge_l1 || return 1
	loop "$WORK/hl1.qcow2" || return 1
	before=$(bufio_bytes)
	map hl1 "0 131072 vhdcrypt qcow2 $LOOP none - 0" || return 1
	after=$(bufio_bytes)
	echo "dm-bufio cache: $before -> $after bytes; $(dmsetup status "$CASE_PREFIX-hl1")"
	if [ "$1" = bufio ]; then
		[ $((after - before)) -lt $((2 << 20)) ] ||
			{ echo "the load added $((after - before)) bytes to dm-bufio's shared cache"; return 1; }
		return 0
	fi
	same "$(dev hl1)" "$WORK/hl1.raw" || return 1
	mem=$(status_field hl1 mem)
	[ -n "$mem" ] && [ "$mem" -lt $((1 << 20)) ] ||
		{ echo "mem:$mem is not below 1 MiB"; return 1; }
}

# gone PID: the process has exited (or is a zombie).
gone() {
	[ ! -r "/proc/$1/stat" ] || [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

# wait_gone PID SECONDS
wait_gone() {
	local end=$((SECONDS + $2))
	while [ "$SECONDS" -lt "$end" ]; do
		gone "$1" && return 0
		sleep 0.5
	done
	gone "$1"
}

# A valid 2040 GiB VHD with 2 MiB blocks has a 4 MiB BAT.  Its loop device
# reads at most 128 KiB and 64 I/Os per second for the loading process
# (blk-throttle, cgroup io.max), so reading the BAT takes half a minute in
# large reads and two minutes in 512-byte ones.  SIGKILL during the load
# must end it within 30 s, leave no live table, and the same table loads
# without the limit.  (Not dm-delay: it delays bios in parallel, so it
# cannot make a load that reads ahead slow.)
killable() {
	local img=$WORK/kill.vhd name=$CASE_PREFIX-kill table pid t0 rc=0 st
	qemu-img create -q -f vpc -o force_size=on "$img" 2040G &&
		qemu-io -f vpc -c "write -P 0x6b 1000G 64k" "$img" >/dev/null &&
		truncate -s 1000G "$WORK/kill.exp" && pattern 0x6b 65536 "$WORK/kill.pat" &&
		cat "$WORK/kill.pat" >>"$WORK/kill.exp" && loop "$img" && cgroup_child io "st34-$$" || return 1
	table="0 $((2040 << 21)) vhdcrypt vhd $LOOP none - 0"
	echo "$(majmin "$LOOP") rbps=131072 riops=64" >"$CGROUP/io.max" || return 1
	t0=$SECONDS
	spawn_in_cgroup "$CGROUP" dmsetup create --noudevsync --readonly "$name" --table "$table" \
		2>"$WORK/create.err"
	pid=$SPAWNED
	sleep 3
	if gone "$pid"; then
		wait "$pid"
		st=$?
		echo "the load ended after $((SECONDS - t0)) s, before the kill (exit $st): nothing to kill"
		dm_track "$name"
		[ "$st" -eq 0 ] || { cat "$WORK/create.err"; return 1; }
	else
		kill -KILL "$pid"
		if wait_gone "$pid" 30; then
			echo "dmsetup create gone $((SECONDS - t0)) s after it started (killed at 3 s)"
		else
			echo "dmsetup create still there 30 s after SIGKILL"
			rc=1
			wait_gone "$pid" 200 || {
				echo "... and after 230 s: leaving $name in place"
				return 1
			}
			echo "gone after $((SECONDS - t0)) s"
		fi
		wait "$pid"
		dm_track "$name"
		if dmsetup info "$name" >"$WORK/info" 2>&1; then
			grep -E '^(State|Tables present)' "$WORK/info"
			grep -q '^Tables present:.*LIVE' "$WORK/info" &&
				{ echo "the killed load left a live table"; rc=1; }
		fi
		dm_remove "$name" || rc=1
	fi
	echo "$(majmin "$LOOP") rbps=max riops=max" >"$CGROUP/io.max" || return 1
	map kill2 "$table" && read_ok "$(dev kill2)" $((1000 << 30)) 65536 "$WORK/kill.exp" || rc=1
	return "$rc"
}

# A dynamic VHD of 2040 GiB with 512-byte blocks: a 16 GiB BAT (2^32 - 2^24
# entries) in a sparse 16 GiB file.  The load must be refused at once, with
# a message about the BAT.  Before the fix the load ran for hours and could
# not be killed, so it runs in the background here and is left behind if it
# does not end.
bat_too_large() {
	local img=$WORK/b512.vhd entries=$(((2040 << 30) / 512)) end pid t0 rc
	qemu-img create -q -f vpc -o force_size=on "$img" 8M || return 1
	end=$((1536 + 4 * entries + 512))
	tail -c 512 "$img" >"$WORK/footer" && truncate -s $((end - 512)) "$img" &&
		cat "$WORK/footer" >>"$img" &&
		put 40 8 $((2040 << 30)) "$img" && put 48 8 $((2040 << 30)) "$img" &&
		put -472 8 $((2040 << 30)) "$img" && put -464 8 $((2040 << 30)) "$img" &&
		put $((512 + 28)) 4 "$entries" "$img" && put $((512 + 32)) 4 512 "$img" &&
		$IMGTOOL vhd-fix "$img" && loop "$img" || return 1
	kmsg_mark
	t0=$SECONDS
	dmsetup create --noudevsync --readonly "$CASE_PREFIX-b512" \
		--table "0 $((entries)) vhdcrypt vhd $LOOP none - 0" >"$WORK/create.err" 2>&1 &
	pid=$!
	if ! wait_gone "$pid" 120; then
		kill -KILL "$pid"
		echo "the load of a VHD with a 16 GiB BAT still runs after 120 s; left behind"
		return 1
	fi
	wait "$pid"
	rc=$?
	dm_track "$CASE_PREFIX-b512"
	echo "the load ended after $((SECONDS - t0)) s (exit $rc)"
	[ "$rc" -ne 0 ] || { echo "the table loaded"; return 1; }
	failure_explained || return 1
	kmsg_since | grep -qi 'bat' || { echo "the kernel log does not name the BAT"; return 1; }
}

# ---------------------------------------------------------------------------
# Metadata reads that fail asynchronously

# faulty NAME IMG FIRST COUNT: IMG through a loop device, an error target
# over its sectors FIRST..FIRST+COUNT-1 (device NAME-bad), and dm-delay on
# top (NAME-slow, in $SLOW): the error completes asynchronously.
faulty() {
	local name=$1 img=$2 first=$3 count=$4 size
	loop "$img" || return 1
	size=$(blockdev --getsz "$LOOP")
	FAULT_LINEAR="0 $size linear $LOOP 0"
	map "$name-bad" "0 $first linear $LOOP 0
$first $count error
$((first + count)) $((size - first - count)) linear $LOOP $((first + count))" &&
		map "$name-slow" "0 $size delay $(dev "$name-bad") 0 1" || return 1
	SLOW=$(dev "$name-slow")
}

# lift NAME: the error target of faulty NAME becomes a plain linear mapping.
lift() {
	local n=$CASE_PREFIX-$1-bad
	dmsetup load "$n" --readonly --table "$FAULT_LINEAR" && dmsetup suspend "$n" &&
		dmsetup resume "$n"
}

# eio_then_lifted NAME DEV BAD_OFF OK_OFF... EXP: reads of BAD_OFF (64 KiB)
# fail with EIO, twice, and under eight concurrent readers (a buffer whose
# read failed is visible to them until its last holder lets go); reads at
# the OK_OFFs are right; once the error is lifted BAD_OFF reads right too.
eio_then_lifted() {
	local name=$1 d=$2 bad=$3 exp=${!#} off i pids=() rc=0
	read_eio "$d" "$bad" 65536 || return 1
	read_eio "$d" "$bad" 65536 || { echo "(second read)"; return 1; }
	for off in "${@:4:$#-4}"; do
		read_ok "$d" "$off" 65536 "$exp" || return 1
	done
	for i in 1 2 3 4 5 6 7 8; do
		(for _ in 1 2 3 4 5 6 7 8; do
			dd if="$d" of=/dev/null iflag=direct,skip_bytes skip="$bad" bs=4k count=16 \
				status=none 2>/dev/null && exit 1
		done
		exit 0) &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i" || { echo "a concurrent read of the failing range succeeded"; rc=1; }
	done
	no_kernel_problems || return 1
	lift "$name" || return 1
	read_ok "$d" "$bad" 65536 "$exp" ||
		{ echo "(after the error was lifted: a failed metadata read stayed cached?)"; rc=1; }
	return "$rc"
}

# Error under the qcow2 L2 table that maps 8M..10M (4k clusters).
l2_error() {
	local img=$WORK/q.qcow2 where l2
	read -r where _ < <($IMGTOOL qcow2-l2-entry "$img" $((8 << 20))) || return 1
	l2=$((where / 4096 * 4096))
	echo "L2 table at byte $l2"
	kmsg_mark
	faulty l2 "$img" $((l2 / 512)) 8 &&
		map l2q "$(qtable "$SLOW")" &&
		eio_then_lifted l2 "$(dev l2q)" $((8 << 20)) 0 $((12 << 20)) "$WORK/q.raw"
}

# Error under the sector bitmap of VHD block 3 (6M..8M).
bitmap_error() {
	local img=$WORK/v.vhd bat
	read -r _ bat < <($IMGTOOL vhd-bat-entry "$img" 3) || return 1
	echo "block 3: bitmap at sector $bat"
	kmsg_mark
	faulty bm "$img" "$bat" 1 &&
		map bmv "$(vtable "$SLOW")" &&
		eio_then_lifted bm "$(dev bmv)" $((6 << 20)) 0 $((12 << 20)) "$WORK/v.raw"
}

# load_or_eio NAME TABLE WHAT: the load fails with a message naming WHAT,
# or it loads and reading the device fails with EIO; no kernel problem.
load_or_eio() {
	local n=$CASE_PREFIX-$1
	dmsetup create --readonly --notable "$n" && dm_track "$n" || return 1
	if ! dmsetup load --readonly "$n" --table "$2" 2>/dev/null; then
		failure_explained || return 1
		kmsg_since | grep -qi "$3" || { echo "the kernel log does not name the $3"; return 1; }
		return 0
	fi
	# The load read ahead asynchronously; let that fail before the first read.
	sleep 1
	dmsetup resume "$n" && udev_settle || return 1
	timeout 120 dd if="/dev/mapper/$n" of=/dev/null bs=1M iflag=direct status=none 2>"$WORK/dd.err"
	case $? in
	0) echo "the device read completely; expected EIO"; return 1 ;;
	124) echo "the read still runs after 120 s"; return 1 ;;
	esac
	cat "$WORK/dd.err"
	grep -qi 'input/output error' "$WORK/dd.err" || { echo "not EIO"; return 1; }
	no_kernel_problems
}

# Error under the second sector of the BAT of a 512 MiB VHD (blocks 128 to
# 255; block 150 is allocated).
bat_error() {
	local img=$WORK/bat.vhd
	qemu-img create -q -f vpc -o force_size=on "$img" 512M &&
		qemu-io -f vpc -c "write -P 0x21 0 64k" -c "write -P 0x22 300M 64k" "$img" >/dev/null || return 1
	eval "$($IMGTOOL vhd-info "$img")" || return 1
	kmsg_mark
	# shellcheck disable=SC2154 # set by vhd-info
	faulty bat "$img" $((vhd_table_offset / 512 + 1)) 1 &&
		load_or_eio batv "0 $((512 << 11)) vhdcrypt vhd $SLOW none - 0" BAT
}

# The review's reproduction: error under the L1 table of a qcow2 made by
# qemu-img (64k clusters, L1 in one cluster).
l1_error() {
	local img=$WORK/l1.qcow2
	qemu-img create -q -f qcow2 "$img" 64M &&
		qemu-io -f qcow2 -c "write -P 0x5a 0 1M" "$img" >/dev/null || return 1
	eval "$($IMGTOOL qcow2-info "$img")" || return 1
	kmsg_mark
	# shellcheck disable=SC2154 # set by qcow2-info
	faulty l1 "$img" $((q_l1_table_offset / 512)) $((1 << (q_cluster_bits - 9))) &&
		load_or_eio l1q "0 131072 vhdcrypt qcow2 $SLOW none - 0" L1
}

# ---------------------------------------------------------------------------

tap_plan 12
if ! make_images; then
	for i in $(seq 12); do run_case "kernel fault case $i (no images)" false; done
	tap_done
fi
run_case "4096-byte logical blocks: VHD image device refused" vhd_4k
run_case "4096-byte logical blocks: qcow2 image device refused" qcow2_4k
run_case "4096-byte logical blocks: backing device refused" backing_4k
run_case "512-byte loop devices over the same files load and read right" same_512
run_case "qcow2 with l1_size 2^22 and 64 MiB: loads, reads right, mem below 1 MiB" huge_l1 mem
run_case "qcow2 with l1_size 2^22 and 64 MiB: the load grows dm-bufio by < 2 MiB" huge_l1 bufio
run_case "VHD 2040 GiB, 4 MiB BAT on a slow device: SIGKILL ends the load" killable
run_case "VHD 2040 GiB with 512-byte blocks (16 GiB BAT): refused at once" bat_too_large
run_case "error under a qcow2 L2 table (async): EIO, EIO again, right after lifting" l2_error
run_case "error under a VHD sector bitmap (async): EIO, EIO again, right after lifting" bitmap_error
run_case "error under the VHD BAT (async): load fails naming the BAT, or EIO" bat_error
run_case "error under the qcow2 L1 table (async): load fails naming L1, or EIO" l1_error
tap_done
