# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Faults under a vhdcrypt device (selftests 61-63).  Sourced after lib.sh,
# lib-img.sh and lib-write.sh.  The stack:
#
#   /dev/mapper/$F_VC    vhdcrypt (wtable of the image)
#   /dev/mapper/$F_DEV   the image device: its table is swapped to inject
#                        faults (fault_set) and back (fault_clear)
#   $F_LOOP              loop device of the image file
#
#   fault_stack FILE [OPT...]  set up $F_DEV over FILE (current image, W_*)
#   fault_map [--readonly] [OPT...]   map $F_VC over $F_DEV
#   fault_set [START LEN KIND]...     $F_DEV linear except the ranges
#                                     (512-byte sectors, sorted, disjoint):
#       error    the error target: the I/O fails when it is submitted
#       aerror   an error device behind dm-delay: fails at completion
#       rerror   reads fail, writes go through (dm-delay read/write split)
#       werror   writes fail, reads go through
#       drop     dm-flakey drop_writes: writes vanish but succeed
#       ferror   dm-flakey error_writes
#       freads   dm-flakey error_reads (6.12; fault_has_error_reads)
#       slow     dm-delay, reads 3 ms, writes 7 ms (completions reorder)
#   fault_clear                 $F_DEV linear again
#   fault_mode                  the vhdcrypt status field mode: (rw, ro, failed)
#   fault_flush DEV             send a flush (fsync of the block device)
#   qcow2_host FILE VOFF        host byte offset of the cluster at VOFF
#   vhd_block FILE BLOCK        host sector of a VHD block's bitmap

F_DEV=vfd$$ F_VC=vfc$$ F_ERR=vfe$$
F_LOOP='' F_SECTORS=0

fault_stack() {
	F_LOOP=$(new_loop "$1") || return 1
	F_SECTORS=$(blockdev --getsz "$F_LOOP")
	dm_create "$F_ERR" "0 $F_SECTORS error" &&
		dm_create "$F_DEV" "0 $F_SECTORS linear $F_LOOP 0"
}

fault_map() {
	local ro=()
	if [ "${1:-}" = --readonly ]; then
		ro=(--readonly)
		shift
	fi
	dm_create "$F_VC" "$(wtable "/dev/mapper/$F_DEV" "$@")" "${ro[@]}"
}

# The table line of one range.
_fault_range() {
	local s=$1 n=$2 kind=$3 err=/dev/mapper/$F_ERR
	case $kind in
	linear) echo "$s $n linear $F_LOOP $s" ;;
	error) echo "$s $n error" ;;
	aerror) echo "$s $n delay $err $s 1" ;;
	rerror) echo "$s $n delay $err $s 0 $F_LOOP $s 0" ;;
	werror) echo "$s $n delay $F_LOOP $s 0 $err $s 0" ;;
	drop) echo "$s $n flakey $F_LOOP $s 0 1 1 drop_writes" ;;
	ferror) echo "$s $n flakey $F_LOOP $s 0 1 1 error_writes" ;;
	freads) echo "$s $n flakey $F_LOOP $s 0 1 1 error_reads" ;;
	slow) echo "$s $n delay $F_LOOP $s 3 $F_LOOP $s 7" ;;
	*) echo "fault_set: unknown kind $kind" >&2; return 1 ;;
	esac
}

fault_set() {
	local at=0 table='' s n k
	while [ $# -ge 3 ]; do
		s=$1 n=$2 k=$3
		shift 3
		[ "$s" -le "$at" ] || table+="$(_fault_range "$at" $((s - at)) linear)"$'\n'
		table+="$(_fault_range "$s" "$n" "$k")"$'\n' || return 1
		at=$((s + n))
	done
	[ "$at" -ge "$F_SECTORS" ] || table+="$(_fault_range "$at" $((F_SECTORS - at)) linear)"
	modprobe -a dm_delay dm_flakey 2>/dev/null
	dmsetup suspend "$F_DEV" && dmsetup load "$F_DEV" --table "$table" &&
		dmsetup resume "$F_DEV"
}

fault_clear() {
	dmsetup suspend "$F_DEV" && dmsetup load "$F_DEV" --table "0 $F_SECTORS linear $F_LOOP 0" &&
		dmsetup resume "$F_DEV"
}

fault_has_error_reads() {
	modprobe dm_flakey 2>/dev/null
	dmsetup create "$F_DEV-probe" --table "0 8 flakey $F_LOOP 0 0 1 1 error_reads" \
		>/dev/null 2>&1 || return 1
	dmsetup remove "$F_DEV-probe"
}

fault_mode() {
	dmsetup status "$F_VC" | sed -n 's/.* mode:\([a-z]*\).*/\1/p'
}

fault_flush() {
	python3 -c 'import os, sys; os.fsync(os.open(sys.argv[1], os.O_RDWR))' "$1"
}

qcow2_host() {
	local v
	read -r _ v < <($IMGTOOL qcow2-l2-entry "$1" "$2") || return 1
	echo $((v & 0x00fffffffffffe00))
}

vhd_block() {
	local v
	read -r _ v < <($IMGTOOL vhd-bat-entry "$1" "$2") || return 1
	echo $((v))
}
