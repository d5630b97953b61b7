#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=1800
#
# tests/vm.sh: the tools on real devices, as root in a VM on a stock Debian
# kernel (no dm-vhdcrypt needed):
#
#	make -C selftests/tools && scripts/vm-run --cpus 1 6.12 -- selftests/tools/tests/vm.sh
#
# wlog on dm-log-writes over loop devices, replayed to every mark (and, in
# one run, to every entry) and checked; ext4 on dm-log-writes, checked with
# e2fsck at every flush; wlog on dm-linear; a 4 KiB-sector log; replay onto a
# block device; the README's power-cut loop with a fixed VHD and dm-linear
# standing in for vhdcrypt; and the speed of replaying a 32 MiB log.

VHDCRYPT_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd -P)
export VHDCRYPT_SRC
# shellcheck source=../../lib.sh
. "$VHDCRYPT_SRC/selftests/lib.sh"
# shellcheck source=../lib-logwrites.sh
. "$VHDCRYPT_SRC/selftests/tools/lib-logwrites.sh"

need_root
need_cmd dmsetup losetup blockdev mkfs.ext4 e2fsck qemu-img python3
[ -x "$RL" ] && [ -x "$WLOG" ] || skip_all "tools not built: make -C selftests/tools"
modprobe -a dm_mod dm_log_writes loop || skip_all "dm-log-writes or loop not available"
T=$SELFTEST_TMP

# walk_marks LOG JOURNAL START TARGET: copy START to TARGET, replay it to
# each wlog mark in turn and check it there.  Prints the number of points;
# fails at the first point that does not pass.
walk_marks() {
	local log=$1 j=$2 start=$3 target=$4 idx name prev=0 n=0
	cp --sparse=always "$start" "$target"
	while read -r idx name; do
		"$RL" replay "$log" "$target" --from "$prev" --to "mark:$name" || return 1
		"$WLOG" check "$j" "$target" --at "mark:$name" >"$T/check.out" ||
			{ cat "$T/check.out"; return 1; }
		prev=$((idx + 1)) n=$((n + 1))
	done < <(lw_marks "$log")
	echo "$n points"
	[ "$n" -gt 0 ]
}

# every_entry LOG JOURNAL START TARGET: replay entry by entry; between marks
# K and K+1 the image must pass --after mark:K --before mark:K+1.
every_entry() {
	local log=$1 j=$2 target=$4 n i after=start before idx name
	n=$("$RL" info "$log" | awk '$1 == "entries:" { print $2 }')
	cp --sparse=always "$3" "$target"
	lw_marks "$log" >"$T/marks"
	for ((i = 0; i < n; i++)); do
		if read -r idx name < <(awk -v i="$i" '$1 >= i { print; exit }' "$T/marks"); then
			before=mark:$name
		else
			before=end
		fi
		"$RL" replay "$log" "$target" --from "$i" --to $((i + 1)) || return 1
		"$WLOG" check "$j" "$target" --after "$after" --before "$before" >"$T/check.out" ||
			{ echo "after entry $i:"; cat "$T/check.out"; return 1; }
		[ "${idx:-}" = "$i" ] && after=mark:$name
	done
	echo "$n entries"
}

test_raw_direct() {
	local d l
	truncate -s 64M "$T/data.img"
	truncate -s 128M "$T/log.img"
	cp --sparse=always "$T/data.img" "$T/start.img"
	d=$(new_loop "$T/data.img") && l=$(new_loop "$T/log.img") || return 1
	tap_check "log-writes over loop" lw_create lw1 "$d" "$l"
	tap_check "wlog run: O_DIRECT, 2 threads, marks" "$WLOG" run /dev/mapper/lw1 \
		--journal "$T/j1" --writes 300 --threads 2 --direct --flush-every 12 \
		--sectors 16384 --mark lw1
	tap_check "wlog check on the live device" "$WLOG" check "$T/j1" /dev/mapper/lw1
	tap_check "log-writes removed, log complete" lw_remove lw1
	tap_diag "$("$RL" info "$T/log.img")"
	tap_check "replay to each mark, wlog check --at mark" \
		walk_marks "$T/log.img" "$T/j1" "$T/start.img" "$T/walk.img"
	tap_diag "$(cat "$SELFTEST_TMP/.out")"
	tap_check "replay to every entry, check between its marks" \
		every_entry "$T/log.img" "$T/j1" "$T/start.img" "$T/walk.img"
	tap_diag "$(cat "$SELFTEST_TMP/.out")"
	tap_check "replay to end equals the device" cmp "$T/walk.img" "$T/data.img"

	# A point checked against the next mark misses that flush's writes.
	cp --sparse=always "$T/start.img" "$T/neg.img"
	"$RL" replay "$T/log.img" "$T/neg.img" --to mark:wlog-flush-3
	expect_fail "replay to mark 3 fails --at mark 4" \
		"$WLOG" check "$T/j1" "$T/neg.img" --at mark:wlog-flush-4
	expect_fail "replay to mark 4 fails --at mark 3 (too new)" \
		"$WLOG" check "$T/j1" "$T/walk.img" --at mark:wlog-flush-3
}

test_raw_buffered() {
	local d l
	truncate -s 0 "$T/data.img"
	truncate -s 32M "$T/data.img"
	d=$(new_loop "$T/data.img") && l=$(new_loop "$T/log.img") || return 1
	lw_create lw2 "$d" "$l" || return 1
	tap_check "wlog run: buffered, fsync, marks" "$WLOG" run /dev/mapper/lw2 \
		--journal "$T/j2" --writes 300 --flush-every 10 --fsync --mark lw2 --seed 2
	tap_check "log complete" lw_remove lw2
	tap_check "buffered: replay to each mark and check" \
		walk_marks "$T/log.img" "$T/j2" "$T/start.img" "$T/walk.img"
	tap_diag "$(cat "$SELFTEST_TMP/.out")"
}

# fsck_points LOG TARGET: replay flush by flush; at each FLUSH entry, a copy
# of the image recovers its journal (e2fsck -fy) and must then be clean.
fsck_points() {
	local log=$1 target=$2 idx prev=0 n=0 mkfs
	mkfs=$("$RL" marks "$log" | awk '$2 == "mkfs" { print $1; exit }')
	truncate -s 0 "$target"
	truncate -s 64M "$target"
	for idx in $("$RL" flushes "$log"); do
		"$RL" replay "$log" "$target" --from "$prev" --to $((idx + 1)) || return 1
		prev=$((idx + 1))
		[ "$idx" -gt "$mkfs" ] || continue	# not a file system yet
		cp --sparse=always "$target" "$T/fsck.img"
		e2fsck -fy "$T/fsck.img" >/dev/null 2>&1
		e2fsck -fn "$T/fsck.img" >"$T/fsck.out" 2>&1 ||
			{ echo "entry $idx:"; cat "$T/fsck.out"; return 1; }
		n=$((n + 1))
	done
	echo "$n flush points clean"
	[ "$n" -gt 0 ]
}

test_ext4() {
	local d l i
	truncate -s 0 "$T/data.img"
	truncate -s 64M "$T/data.img"
	d=$(new_loop "$T/data.img") && l=$(new_loop "$T/log.img") || return 1
	lw_create lw3 "$d" "$l" || return 1
	mkfs.ext4 -q -E discard /dev/mapper/lw3 && dmsetup message lw3 0 mark mkfs &&
		mkdir -p "$T/mnt" && mount /dev/mapper/lw3 "$T/mnt" || { tap_fail "mkfs, mount"; return 1; }
	for ((i = 0; i < 6; i++)); do
		dd if=/dev/urandom of="$T/mnt/f$i" bs=64k count=$((i * 5 + 1)) status=none
		sync
		dmsetup message lw3 0 mark "sync-$i"
	done
	rm "$T/mnt/f2"
	fstrim "$T/mnt" 2>/dev/null
	umount "$T/mnt"
	dmsetup message lw3 0 mark umount
	tap_check "ext4 on log-writes: log complete" lw_remove lw3
	tap_diag "$("$RL" info "$T/log.img" | grep -E 'entries|flushes|fua|discards|metadata')"
	tap_check "ext4: discards, FUA, METADATA entries logged" \
		sh -c "'$RL' info '$T/log.img' | awk '\$2 > 0 { n[\$1] = 1 } END { exit !(n[\"discards:\"] && n[\"fua:\"] && n[\"metadata:\"]) }'"
	tap_check "ext4: e2fsck clean at every flush" fsck_points "$T/log.img" "$T/walk.img"
	tap_diag "$(cat "$SELFTEST_TMP/.out")"
	"$RL" replay "$T/log.img" "$T/walk.img" --from 0 --to end
	tap_check "ext4: replay to end equals the device" cmp "$T/walk.img" "$T/data.img"
	truncate -s 0 "$T/walk.img"
	truncate -s 64M "$T/walk.img"
	"$RL" replay "$T/log.img" "$T/walk.img" --to mark:sync-3
	tap_check "ext4: clean at mark sync-3" e2fsck -fn "$T/walk.img"
}

test_linear() {
	local d
	truncate -s 0 "$T/data.img"
	truncate -s 48M "$T/data.img"
	d=$(new_loop "$T/data.img") || return 1
	dm_create lin0 "0 65536 linear $d 8192" || return 1
	tap_check "dm-linear: wlog run O_DIRECT, 4 threads" "$WLOG" run /dev/mapper/lin0 \
		--journal "$T/j4" --writes 500 --threads 4 --direct --flush-every 20
	tap_check "dm-linear: wlog check on the device" "$WLOG" check "$T/j4" /dev/mapper/lin0
	dm_remove lin0
	dd if="$T/data.img" of="$T/lin.img" bs=512 skip=8192 count=65536 status=none
	tap_check "dm-linear: wlog check on the backing file's range" "$WLOG" check "$T/j4" "$T/lin.img"
}

test_4k() {
	local d l
	truncate -s 0 "$T/data.img"
	truncate -s 32M "$T/data.img"
	d=$(losetup -f --show -b 4096 "$T/data.img") && at_exit losetup -d "$d" || return 1
	l=$(new_loop "$T/log.img") || return 1
	lw_create lw5 "$d" "$l" || return 1
	tap_check "4 KiB sectors: wlog run" "$WLOG" run /dev/mapper/lw5 --journal "$T/j5" \
		--writes 200 --threads 2 --direct --mark lw5 --seed 5
	tap_check "4 KiB sectors: log complete" lw_remove lw5
	tap_check "4 KiB sectors: log sector size 4096" \
		sh -c "'$RL' info '$T/log.img' | grep -qx 'sector size: 4096'"
	truncate -s 0 "$T/start4k.img"
	truncate -s 32M "$T/start4k.img"
	tap_check "4 KiB sectors: replay to each mark and check" \
		walk_marks "$T/log.img" "$T/j5" "$T/start4k.img" "$T/walk.img"

	# The same log replayed onto a block device.
	truncate -s 0 "$T/bdev.img"
	truncate -s 32M "$T/bdev.img"
	d=$(new_loop "$T/bdev.img") || return 1
	tap_check "replay onto a block device" "$RL" replay "$T/log.img" "$d" --to end
	tap_check "block device target equals the device" cmp "$d" "$T/data.img"
	tap_check "wlog check on the block device" "$WLOG" check "$T/j5" "$d"
}

# The README's power-cut loop, with a fixed VHD and dm-linear in place of
# an image mapped by vhdcrypt.
test_vhd_loop() {
	local d l sectors idx name prev=0 bad=0 n=0
	qemu-img create -q -f vpc -o subformat=fixed "$T/disk.vhd" 32M || return 1
	cp --sparse=always "$T/disk.vhd" "$T/disk-start.vhd"
	sectors=$((($(stat -c %s "$T/disk.vhd") - 512) / 512))
	d=$(new_loop "$T/disk.vhd") && l=$(new_loop "$T/log.img") || return 1
	lw_create lw6 "$d" "$l" || return 1
	dm_create top6 "0 $sectors linear /dev/mapper/lw6 0" || return 1
	tap_check "VHD loop: wlog run on the mapped disk" "$WLOG" run /dev/mapper/top6 \
		--journal "$T/j6" --writes 200 --threads 2 --direct --mark lw6 --seed 6
	dm_remove top6
	tap_check "VHD loop: log complete" lw_remove lw6
	cp --sparse=always "$T/disk-start.vhd" "$T/disk-replay.vhd"
	while read -r idx name; do
		"$RL" replay "$T/log.img" "$T/disk-replay.vhd" --from "$prev" --to "mark:$name" || bad=1
		prev=$((idx + 1)) n=$((n + 1))
		"$VHDCHECK" check --clean "$T/disk-replay.vhd" >"$T/vc.out" ||
			{ bad=1; tap_diag "$name: $(cat "$T/vc.out")"; }
		"$VHDCHECK" decode "$T/disk-replay.vhd" -o "$T/plain.raw" || bad=1
		"$WLOG" check "$T/j6" "$T/plain.raw" --at "mark:$name" >"$T/vc.out" ||
			{ bad=1; tap_diag "$name: $(cat "$T/vc.out")"; }
	done < <(lw_marks "$T/log.img")
	tap_check "VHD loop: vhdcheck and wlog check at $n marks" test "$bad" = 0 -a "$n" -gt 0
}

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# Replay speed: a 32 MiB log, 100 points.
test_speed() {
	local d l t0 t1 t2 idx name prev=0 n=0 cps=0 bytes
	truncate -s 0 "$T/data.img"
	truncate -s 64M "$T/data.img"
	truncate -s 0 "$T/log.img"
	truncate -s 64M "$T/log.img"
	d=$(new_loop "$T/data.img") && l=$(new_loop "$T/log.img") || return 1
	lw_create lw7 "$d" "$l" || return 1
	tap_check "speed: wlog run, about 32 MiB in 100 flushes" "$WLOG" run /dev/mapper/lw7 \
		--journal "$T/j7" --writes 1300 --flush-every 13 --threads 2 --direct --mark lw7 --seed 7
	lw_remove lw7 || return 1
	bytes=$("$RL" info "$T/log.img" | awk '$1 == "bytes" { print $3 }')
	lw_marks "$T/log.img" >"$T/marks"
	cp --sparse=always "$T/start.img" "$T/walk.img"
	t0=$(now)
	while read -r idx name; do
		"$RL" replay "$T/log.img" "$T/walk.img" --from "$prev" --to "mark:$name" || return 1
		prev=$((idx + 1)) n=$((n + 1))
	done <"$T/marks"
	t1=$(now)
	prev=0
	cp --sparse=always "$T/start.img" "$T/walk.img"
	while read -r idx name; do
		"$RL" replay "$T/log.img" "$T/walk.img" --from "$prev" --to "mark:$name" || return 1
		"$WLOG" check "$T/j7" "$T/walk.img" --at "mark:$name" >/dev/null || cps=$((cps + 1))
		prev=$((idx + 1))
	done <"$T/marks"
	t2=$(now)
	tap_check "speed: all $n points pass" test "$cps" = 0
	tap_diag "log: $((bytes / 1048576)) MiB, $("$RL" info "$T/log.img" | grep -E '^(entries|flushes)' | tr '\n' ' ')"
	tap_diag "incremental replay to $n marks: $(secs "$t0" "$t1") s"
	tap_diag "incremental replay + wlog check (64 MiB device) at $n marks: $(secs "$t1" "$t2") s"
	t0=$(now)
	for ((idx = 0; idx < 10; idx++)); do
		cp --sparse=always "$T/walk.img" "$T/copy.img"
	done
	t1=$(now)
	tap_diag "cp --sparse=always of the final 64 MiB image: $(secs "$t0" "$t1") s for 10 copies"
}

test_raw_direct
test_raw_buffered
test_ext4
test_linear
test_4k
test_vhd_loop
test_speed
tap_done
