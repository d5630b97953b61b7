#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=2400
#
# Reads and writes with the guest's memory squeezed: while they run, a
# memory hog takes all but about 160 MiB of the guest (anonymous memory, no
# swap, first in line for the OOM killer), and the test's I/O runs in a
# memory cgroup (v2) with memory.max 32 MiB, so its page cache is reclaimed
# (and written back through vhdcrypt) all the time.  Under that: random writes (O_DIRECT and
# buffered) into qcow2 with LUKS and OpenXT VHD, copy-on-write of
# compressed and zero clusters, reads of compressed clusters and of the
# OpenXT fixtures; each checked as in 51 (qemu-img check, plaintext, wlog)
# and against the fixtures' hashes.  Nothing may fail, hang or make the
# kernel complain (a hung task is a failure: scripts/dmesg-check).
#
# Why: vhdcrypt sits under swap and filesystems; what it needs to make
# progress must come from mempools and biosets, not from the allocator.
#
# VHDCRYPT_SQUEEZE_FREE: MiB the hog leaves (default 160);
# VHDCRYPT_SQUEEZE_MAX: the cgroup's memory.max in MiB (default 32).
# By default one pass: 150 buffered writes into qcow2 with LUKS, 150
# O_DIRECT writes into OpenXT VHD, the OpenXT chain read; VHDCRYPT_FULL=1
# (make check-full): every case, 300 writes each.

# shellcheck disable=SC2034 # W_* are read by lib-write.sh
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-img.sh"
. "$(dirname "$0")/lib-write.sh"

start_image_test qemu-img qemu-io cryptsetup xz sha256sum
CASE_SPLIT=1	# independent cases: make check spreads them over the kernels
[ -x "$WLOG" ] || skip_all "selftests/tools not built (make selftests-tools)"
FREE=${VHDCRYPT_SQUEEZE_FREE:-160}
MAX=${VHDCRYPT_SQUEEZE_MAX:-32}
OX=$FIXTURES/openxt
SIZE=24M
CG=
FULL=${VHDCRYPT_FULL:-}
WRITES=${FULL:+300}
WRITES=${WRITES:-150}

# --- the squeeze -----------------------------------------------------------

cgroup_setup() {
	local root=/sys/fs/cgroup
	if [ ! -e "$root/cgroup.controllers" ]; then
		mount -t cgroup2 none "$root" 2>/dev/null || return 1
		at_exit umount "$root"
	fi
	grep -qw memory "$root/cgroup.controllers" || return 1
	echo +memory >"$root/cgroup.subtree_control" 2>/dev/null
	CG=$root/vhdcrypt-squeeze-$$
	mkdir "$CG" || return 1
	at_exit rmdir "$CG"
	echo $((MAX << 20)) >"$CG/memory.max"
}

# in_cg CMD...: run CMD inside the squeezed cgroup.
in_cg() {
	(echo "$BASHPID" >"$CG/cgroup.procs" && exec "$@")
}

# hog_start, hog_stop: the squeeze is on only while the I/O under test
# runs. Making and checking images with QEMU's tools is not under test:
# with all memory taken, a debug kernel spins in reclaim for them long
# enough for the soft-lockup watchdog.
HOG=
hog_start() {
	local avail
	avail=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
	HOG_MB=$((avail - FREE))
	[ "$HOG_MB" -gt 0 ] || return 0
	python3 -c '
import os, sys, time
n = int(sys.argv[1]) << 20
with open("/proc/self/oom_score_adj", "w") as f:
    f.write("1000")
b = bytearray(n)
b[::4096] = b"x" * len(range(0, n, 4096))   # touch every page
print("ready", flush=True)
time.sleep(1 << 30)
' "$HOG_MB" >"$WORK/hog.out" &
	HOG=$!
	for _ in $(seq 600); do
		grep -q ready "$WORK/hog.out" 2>/dev/null && return 0
		kill -0 "$HOG" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

hog_stop() {
	[ -n "$HOG" ] || return 0
	kill "$HOG" 2>/dev/null
	wait "$HOG" 2>/dev/null
	HOG=
}

# squeeze CMD...: CMD with the hog running; fails if the hog did not start
# or the OOM killer took it.
squeeze() {
	local rc
	hog_start || { echo "the memory hog did not start"; return 1; }
	"$@"
	rc=$?
	if [ -n "$HOG" ] && ! kill -0 "$HOG" 2>/dev/null; then
		echo "the hog is gone (OOM killer?)"
		rc=1
	fi
	hog_stop
	return "$rc"
}

squeezed() {
	awk '/^(MemFree|MemAvailable):/ { printf "%s %d MiB ", $1, $2 / 1024 }' /proc/meminfo
	echo "cgroup memory.max ${MAX} MiB, peak $(cat "$CG/memory.peak" 2>/dev/null || echo ?) bytes," \
		"events: $(tr '\n' ' ' <"$CG/memory.events")"
}

# --- the workloads ---------------------------------------------------------

writes_case() {
	local kind=$1 img=$WORK/w.img
	shift
	wimg_make "$kind" "$img" "$SIZE" && wimg_grow "$img" || return 1
	loop=$(new_loop "$img") && dm_create "$CASE_PREFIX-rw" "$(wtable "$loop")" || return 1
	squeeze writes_io "$@" || return 1
	dm_remove "$CASE_PREFIX-rw" && verified "$img"
}

writes_io() {
	in_cg "$WLOG" run "$(dev rw)" --journal "$WORK/journal" --seed "$RANDOM" --writes "$WRITES" \
		--threads 3 --flush-every 20 "$@" >/dev/null &&
		in_cg "$WLOG" check "$WORK/journal" "$(dev rw)"
}

# Compressed and zero clusters: written over (copy on write), then read.
cow_case() {
	local img=$WORK/c.img src=$WORK/src.raw
	W_KIND=qcow2 W_FMT=qcow2 W_CIPHER=none W_KEY=- W_OPTS=''
	truncate -s "$SIZE" "$src"
	dd if=/dev/urandom of="$src" bs=64k count=96 seek=16 conv=notrunc status=none
	qemu-img convert -c -O qcow2 "$src" "$img" &&
		qemu-io -f qcow2 -c "write -z 2M 256k" "$img" >/dev/null || return 1
	W_SECTORS=$(($(qemu_size -f qcow2 "$img") / 512))
	wimg_plain "$img" "$WORK/initial.raw" && wimg_grow "$img" || return 1
	loop=$(new_loop "$img") && dm_create "$CASE_PREFIX-rw" "$(wtable "$loop")" || return 1
	squeeze cow_io || return 1
	dm_remove "$CASE_PREFIX-rw" && verified "$img" --initial "$WORK/initial.raw"
}

cow_io() {
	in_cg cmp "$(dev rw)" "$WORK/initial.raw" || { echo "compressed clusters read wrong"; return 1; }
	in_cg "$WLOG" run "$(dev rw)" --journal "$WORK/journal" --seed "$RANDOM" --writes 200 \
		--first 0 --sectors 16384 --max-size 65536 --direct --threads 2 >/dev/null
}

# The OpenXT fixtures read back as their hashes say, through the chain.
fixture_case() {
	local d=$WORK/ox n sum want lo lp
	mkdir -p "$d" && for n in aes256xts parent child-own; do
		xz -dc "$OX/$n.vhd.xz" >"$d/$n.vhd" || return 1
	done
	lo=$(new_loop "$d/aes256xts.vhd" --ro) || return 1
	map a "0 $(($(vhd_current_size "$d/aes256xts.vhd") / 512)) vhdcrypt vhd $lo aes-xts-plain $(od -An -v -tx1 "$OX/keys/aes256xts,aes-xts-plain,512.key" | tr -d ' \n') 0" ||
		return 1
	sum=$(squeeze in_cg sh -c "dd if=$(dev a) bs=1M iflag=direct status=none | sha256sum")
	want=$(awk '$1 == "aes256xts.vhd" { print $4 }' "$OX/expected.sha256")
	[ "${sum%% *}" = "$want" ] || { echo "aes256xts: $sum, want $want"; return 1; }
	lp=$(new_loop "$d/parent.vhd" --ro) && lo=$(new_loop "$d/child-own.vhd" --ro) || return 1
	map p "0 163840 vhdcrypt vhd $lp aes-xts-plain $(od -An -v -tx1 "$OX/keys/parent,aes-xts-plain,512.key" | tr -d ' \n') 0" &&
		map c "0 163840 vhdcrypt vhd $lo aes-xts-plain $(od -An -v -tx1 "$OX/keys/child-own,aes-xts-plain,256.key" | tr -d ' \n') 0 1 backing:$(dev p)" ||
		return 1
	sum=$(squeeze in_cg sh -c "dd if=$(dev c) bs=1M status=none | sha256sum")
	want=$(awk '$1 == "child-own.vhd" { print $4 }' "$OX/expected.sha256")
	[ "${sum%% *}" = "$want" ] || { echo "child-own (buffered): $sum, want $want"; return 1; }
}

kmsg_mark
cgroup_setup || skip_all "no memory cgroup (cgroup v2 with the memory controller)"
hog_start || skip_all "the memory hog did not start"
tap_diag "hog: ${HOG_MB} MiB; $(squeezed)"
hog_stop
at_exit hog_stop

[ -z "$FULL" ] ||
	run_case "qcow2-luks: random writes, O_DIRECT, squeezed" writes_case qcow2-luks --direct
run_case "qcow2-luks: random writes, buffered + fsync, squeezed" writes_case qcow2-luks --fsync
run_case "vhd-openxt: random writes, O_DIRECT, squeezed" writes_case vhd-openxt --direct
if [ -n "$FULL" ]; then
	run_case "vhd-openxt: random writes, buffered, squeezed" writes_case vhd-openxt
	run_case "qcow2-extl2: random writes, O_DIRECT, squeezed" writes_case qcow2-extl2 --direct
	run_case "compressed and zero clusters: read, copy on write, squeezed" cow_case
fi
run_case "OpenXT fixtures: reads through a chain, squeezed" fixture_case
tap_diag "$(squeezed)"
tap_check "no kernel problem (hung task, warning) under the squeeze" no_kernel_problems
tap_done
