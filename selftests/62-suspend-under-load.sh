#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=2400
#
# Suspend, table reload and resume of a writable vhdcrypt device under
# write load, over and over: wlog writes with several threads (O_DIRECT,
# or buffered with fsync) while its flush hook, or a loop beside it, loads
# a new table (the new table's ctr runs while the old one still writes),
# suspends (postsuspend commits everything) and resumes; some reloads
# change the table (allow_discards on and off), some suspend with
# --noflush.  No write may fail or be lost: wlog check on the live device
# and, after the table is gone, the image's own tools (qemu-img check,
# vhdcheck, QEMU's or vhdcheck's plaintext, a new read-only mapping) find
# exactly what was written.  For qcow2 with LUKS, qcow2 with extended L2
# entries and OpenXT VHD.
#
# Why: LVM and vhdcryptsetup reload tables of devices in use (resize, key
# change, chain changes), and a commit racing a reload is where written
# data would be lost.
#
# fio with verify=crc32c does the same under reloads beside it: every
# block it wrote reads back as written, live and after the reloads.
#
# VHDCRYPT_RELOAD_KINDS: image kinds (lib-write.sh); VHDCRYPT_RELOAD_WRITES:
# writes per run (default 60, about 6 reloads at flushes; 300 with
# VHDCRYPT_FULL=1).  By default one kind per case, each case once;
# VHDCRYPT_FULL=1 (make check-full): every case on every kind.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-img.sh"
. "$(dirname "$0")/lib-write.sh"

start_image_test qemu-img qemu-io cryptsetup
# shellcheck disable=SC2034 # read by run_case in lib-img.sh
CASE_SPLIT=1	# independent cases: make check spreads them over the kernels
[ -x "$WLOG" ] || skip_all "selftests/tools not built (make selftests-tools)"
KINDS=${VHDCRYPT_RELOAD_KINDS:-qcow2-luks qcow2-extl2 vhd-openxt}
FULL=${VHDCRYPT_FULL:-}
WRITES=${VHDCRYPT_RELOAD_WRITES:-${FULL:+300}}
WRITES=${WRITES:-60}
SIZE=24M
IMG=$WORK/img
VC=$CASE_PREFIX-rl

# The reload script: load a table (every other time with allow_discards),
# suspend (with --noflush every third time), resume; counts in $WORK/n.
write_reloader() {
	cat >"$WORK/reload" <<-EOF
		n=\$((\$(cat $WORK/n 2>/dev/null || echo 0) + 1))
		echo \$n >$WORK/n
		t="$(wtable "$LOOP")"
		[ \$((n % 2)) = 0 ] && t="$(wtable "$LOOP" allow_discards)"
		f=
		[ \$((n % 3)) = 0 ] && f=--noflush
		dmsetup load $VC --table "\$t" && dmsetup suspend \$f $VC && dmsetup resume $VC ||
			{ echo "reload \$n failed" >>$WORK/reload.err; exit 1; }
	EOF
}

# checked: no reload failed, and the image holds exactly what was written.
checked() {
	local args out
	[ ! -s "$WORK/reload.err" ] || { cat "$WORK/reload.err"; return 1; }
	"$WLOG" check "$WORK/journal" "/dev/mapper/$VC" || return 1
	dm_remove "$VC" || return 1
	if [ "$W_FMT" = vhd ]; then
		"$VHDCHECK" check "$IMG" || return 1
	else
		mapfile -t args < <(wimg_qemu_args "$IMG")
		out=$(qemu-img check "${args[@]}" 2>&1) || { echo "$out"; return 1; }
	fi
	wimg_plain "$IMG" "$WORK/plain.raw" && "$WLOG" check "$WORK/journal" "$WORK/plain.raw" ||
		return 1
	map ro "$(wtable "$LOOP")" && "$WLOG" check "$WORK/journal" "$(dev ro)"
}

start() {
	rm -f "$WORK/n" "$WORK/reload.err" "$IMG" "$IMG.key"
	wimg_make "$1" "$IMG" "$SIZE" && wimg_grow "$IMG" || return 1
	LOOP=$(new_loop "$IMG") && dm_create "$VC" "$(wtable "$LOOP")" || return 1
	write_reloader
}

# A reload at every flush: from the flushing thread, others writing.
at_flush() {
	local kind=$1
	shift
	start "$kind" || return 1
	"$WLOG" run "/dev/mapper/$VC" --journal "$WORK/journal" --seed "$RANDOM" \
		--writes "$WRITES" --threads 3 --flush-every 10 --on-flush "sh $WORK/reload" \
		"$@" >/dev/null || { cat "$WORK/reload.err" 2>/dev/null; return 1; }
	echo "$(cat "$WORK/n") reloads"
	checked
}

# Reloads from a loop beside the workload, as fast as they go.
beside() {
	local kind=$1 pid rc
	shift
	start "$kind" || return 1
	# Four times the writes: reloads run back to back, some under load.
	"$WLOG" run "/dev/mapper/$VC" --journal "$WORK/journal" --seed "$RANDOM" \
		--writes $((WRITES * 4)) --threads 2 --flush-every 25 "$@" >/dev/null &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		sh "$WORK/reload" || break
	done
	wait "$pid"
	rc=$?
	echo "$(cat "$WORK/n") reloads"
	[ "$rc" -eq 0 ] || { echo "the workload failed: exit $rc"; return 1; }
	checked
}

# fio writes at random with verify=crc32c (checksum and offset in every
# 4 KiB block) while tables reload beside it, then verifies everything it
# wrote, then the image is checked by its own tools.
fio_verify() {
	local kind=$1 pid rc=0 n
	start "$kind" || return 1
	fio --name=reload --filename="/dev/mapper/$VC" --rw=randwrite --bs=4k --direct=1 \
		--ioengine=libaio --iodepth=8 --size=8M --offset=4M --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --randseed=62 --fsync=32 --verify_state_save=0 \
		--output="$WORK/fio.out" &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		sh "$WORK/reload" || break
	done
	wait "$pid" || rc=$?
	n=$(cat "$WORK/n")
	grep -E 'err=|verify' "$WORK/fio.out" | head -n 5
	[ ! -s "$WORK/reload.err" ] || { cat "$WORK/reload.err"; return 1; }
	[ "$rc" -eq 0 ] || { echo "fio failed: exit $rc"; cat "$WORK/fio.out"; return 1; }
	echo "$n reloads"
	# Verify it all again once the reloads are over, then check the image.
	fio --name=reload --filename="/dev/mapper/$VC" --rw=randwrite --bs=4k --direct=1 \
		--size=8M --offset=4M --verify=crc32c --verify_fatal=1 --verify_only=1 \
		--verify_state_save=0 --randseed=62 --output="$WORK/fio2.out" ||
		{ cat "$WORK/fio2.out"; return 1; }
	dm_remove "$VC" || return 1
	if [ "$W_FMT" = vhd ]; then
		"$VHDCHECK" check "$IMG"
	else
		local args out
		mapfile -t args < <(wimg_qemu_args "$IMG")
		out=$(qemu-img check "${args[@]}" 2>&1) || { echo "$out"; return 1; }
	fi
}

# rcase DESC FN ARGS...: FN KIND ARGS... for every kind (VHDCRYPT_FULL),
# else for the next kind in turn.
NCASE=0
rcase() {
	local desc=$1 fn=$2 k kinds
	shift 2
	read -r -a kinds <<<"$KINDS"
	[ -n "$FULL" ] || kinds=("${kinds[NCASE++ % ${#kinds[@]}]}")
	for k in "${kinds[@]}"; do
		run_case "$k: $desc" "$fn" "$k" "$@"
	done
}

rcase "reload at every flush, O_DIRECT, 3 threads" at_flush --direct
rcase "reload at every flush, buffered + fsync, 3 threads" at_flush --fsync
rcase "reloads beside fio verify, O_DIRECT" fio_verify
if [ -n "$FULL" ]; then
	rcase "reloads beside the workload, buffered + fsync" beside --fsync
	rcase "reloads beside the workload, O_DIRECT" beside --direct
fi
tap_done
