#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=1800 (make check-full: VHDCRYPT_FULL=1 runs for hours)
#
# Power cuts during allocating writes. dm-log-writes under the image device
# logs every write the target issues, with every flush; the workload (wlog)
# writes through the target with flushes, marking the log after each one.
# Then the starting image is rebuilt at many points of the log (every
# flush, and random entries between them), as a power cut there would
# leave it, and each must
#   - pass a structural check (qemu-img check: no corruption, leaks are
#     allowed; vhdcheck for VHD), and
#   - hold every write acknowledged before the last completed flush (read
#     through a read-only vhdcrypt mapping of the rebuilt image).
#
# VHDCRYPT_FULL=1 (make check-full): every kind, over 100 flushes each.
# VHDCRYPT_POWERCUT_KINDS: image kinds (lib-write.sh; default: a sample)
# VHDCRYPT_POWERCUT_WRITES: writes per run (default 80: about 13 flushes;
# make check-full uses 700, over 100 flushes per kind)
# VHDCRYPT_POWERCUT_RANDOM: random points between flushes (default 4)

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-img.sh"
. "$(dirname "$0")/lib-write.sh"

start_image_test qemu-img cryptsetup
[ -x "$WLOG" ] && [ -x "$RL" ] || skip_all "selftests/tools not built (make selftests-tools)"
modprobe dm_log_writes 2>/dev/null || skip_all "no dm-log-writes module"

if [ -n "${VHDCRYPT_FULL:-}" ]; then
	KINDS=${VHDCRYPT_POWERCUT_KINDS:-qcow2 qcow2-512 qcow2-extl2 qcow2-v2 qcow2-luks vhd vhd-openxt}
	WRITES=${VHDCRYPT_POWERCUT_WRITES:-700}
	RANDOM_POINTS=${VHDCRYPT_POWERCUT_RANDOM:-40}
else
	KINDS=${VHDCRYPT_POWERCUT_KINDS:-qcow2-luks vhd-openxt}
	WRITES=${VHDCRYPT_POWERCUT_WRITES:-80}
	RANDOM_POINTS=${VHDCRYPT_POWERCUT_RANDOM:-4}
fi
SIZE=16M

# check_point NAME AT...: the rebuilt image's structure and data.
check_point() {
	local name=$1 lo
	shift
	wimg_check "$WORK/replay.img" || { echo "$name: structure"; return 1; }
	lo=$(losetup -f --show -r "$WORK/replay.img") || return 1
	if ! dmsetup create --readonly chk --table "$(wtable "$lo")"; then
		losetup -d "$lo"
		echo "$name: the rebuilt image does not map"
		return 1
	fi
	"$WLOG" check "$WORK/journal" /dev/mapper/chk "$@" --max-errors 5
	local rc=$?
	dmsetup remove chk
	losetup -d "$lo"
	return $rc
}

powercut() {
	local kind=$1 img=$WORK/$1.img log=$WORK/$1.log lo ll prev=0 i n
	local points=0 idx name entries

	wimg_make "$kind" "$img" "$SIZE" || return 1
	wimg_grow "$img"
	cp --sparse=always "$img" "$WORK/start.img"
	truncate -s 192M "$log"
	lo=$(new_loop "$img") && ll=$(new_loop "$log") || return 1
	lw_create lw "$lo" "$ll" || return 1
	dm_create vc "$(wtable /dev/mapper/lw)" || return 1
	"$WLOG" run /dev/mapper/vc --journal "$WORK/journal" --seed "$RANDOM" \
		--writes "$WRITES" --threads 2 --direct --flush-every 6 \
		--max-size 131072 --mark lw >/dev/null || return 1
	dm_remove vc && lw_remove lw || return 1

	# Every flush mark, in order, plus random entries between them.
	"$RL" marks "$log" >"$WORK/marks"
	entries=$("$RL" info "$log" | sed -n 's/^entries:[[:space:]]*//p')
	{
		awk '$2 ~ /^wlog-flush-/ { print $1, "mark", $2 }' "$WORK/marks"
		for ((i = 0; i < RANDOM_POINTS; i++)); do
			echo "$((RANDOM * 32768 % entries + RANDOM % entries)) entry"
		done | awk -v n="$entries" '{ print $1 % n, $2 }'
	} | sort -n -k1,1 -u >"$WORK/points"

	cp --sparse=always "$WORK/start.img" "$WORK/replay.img"
	while read -r idx what name; do
		"$RL" replay "$log" "$WORK/replay.img" --from "$prev" --to $((idx + 1)) \
			>/dev/null || return 1
		prev=$((idx + 1))
		if [ "$what" = mark ]; then
			check_point "$name" --at "mark:$name" || return 1
		else
			# Between two flushes: what the one before guaranteed.
			n=$(awk -v i="$idx" '$1 <= i && $2 ~ /^wlog-flush-/ { m = "mark:" $2 }
				END { print m ? m : "start" }' "$WORK/marks")
			check_point "entry $idx" --after "$n" || return 1
		fi
		points=$((points + 1))
	done <"$WORK/points"
	echo "$kind: $points points of $entries log entries checked"
}

for kind in $KINDS; do
	run_case "power cuts: $kind" powercut "$kind"
done
tap_done
