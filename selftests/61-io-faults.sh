#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=2400
#
# I/O faults under the image: the image device is a dm device whose table
# is swapped (suspend, load, resume) to inject faults: dm-error ranges
# (failing at submission, or behind dm-delay at completion), dm-delay
# read/write splits (only reads or only writes fail), dm-flakey
# (drop_writes, error_writes; error_reads where the kernel has it: 6.12,
# not 6.1) and dm-delay alone (completions out of order).  For qcow2 with
# LUKS and OpenXT VHD:
#
#   - a failed data or metadata read reaches the caller as EIO, is counted
#     in io_errors, and is not remembered: once the fault is gone the same
#     read returns the data;
#   - a write whose allocation fails (its data write fails, or vanishes)
#     fails or is lost, and the image stays consistent: after the fault is
#     lifted qemu-img check (vhdcheck) finds no damage (leaks are fine) and
#     everything flushed before is intact;
#   - a failed metadata write at commit stops writing (fail-stop): the flush
#     fails, status says mode:failed, later writes fail even after the
#     fault is lifted, the kernel log says so, reads go on; a table reload
#     writes again; the image is consistent;
#   - the whole device failing in the middle of a write + flush workload
#     (at a flush, from wlog's --on-flush hook) leaves a consistent image
#     holding everything acknowledged before that flush;
#   - dm-delay under a write + flush workload changes nothing.
#
# Why: a failing disk, a network block device or a loop file on NFS must
# never turn into a corrupt image or a kernel problem.
#
# VHDCRYPT_FAULT_KINDS: image kinds (lib-write.sh; default qcow2-luks
# vhd-openxt).  By default (make check) the main fault classes (error
# target, error behind dm-delay, dm-flakey error_reads, error_writes and
# drop_writes, fail-stop, failure under load) run on one kind each in turn,
# fail-stop on every kind; VHDCRYPT_FULL=1 (make check-full): every case,
# also the dm-delay read/write splits and reordered completions, on every
# kind.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-img.sh"
. "$(dirname "$0")/lib-write.sh"
. "$(dirname "$0")/lib-fault.sh"

start_image_test qemu-img qemu-io cryptsetup
# shellcheck disable=SC2034 # read by run_case in lib-img.sh
CASE_SPLIT=1	# independent cases: make check spreads them over the kernels
[ -x "$WLOG" ] || skip_all "selftests/tools not built (make selftests-tools)"
modprobe -a dm_delay dm_flakey || skip_all "no dm-delay or dm-flakey module"
KINDS=${VHDCRYPT_FAULT_KINDS:-qcow2-luks vhd-openxt}
SIZE=16M
IMG=$WORK/img

# setup KIND: a grown image of KIND holding data in its first 4 MiB
# (written through vhdcrypt, journal $WORK/j0), on the fault stack.
setup() {
	wimg_make "$1" "$IMG" "$SIZE" && wimg_grow "$IMG" && fault_stack "$IMG" &&
		fault_map || return 1
	"$WLOG" run "/dev/mapper/$F_VC" --journal "$WORK/j0" --seed 1 --writes 60 \
		--sectors 8192 --direct --flush-every 8 >/dev/null || return 1
	dm_remove "$F_VC"
}

# intact: structure clean (leaks allowed) and the data of j0 there, read
# through a new read-only mapping.
intact() {
	wimg_check "$IMG" || return 1
	fault_map --readonly && "$WLOG" check "$WORK/j0" "/dev/mapper/$F_VC" || return 1
	dm_remove "$F_VC"
}

# eio DEV BYTE-OFFSET: a 64 KiB direct read there fails with EIO.
eio() {
	if dd if="$1" of=/dev/null bs=64k count=1 skip="$(($2 / 65536))" iflag=direct \
		status=none 2>"$WORK/dd.err"; then
		echo "read at $2 succeeded, expected EIO"
		return 1
	fi
	grep -q 'Input/output error' "$WORK/dd.err" || { cat "$WORK/dd.err"; return 1; }
}

io_errors() {
	dmsetup status "$F_VC" | sed -n 's/.* io_errors:\([0-9]*\).*/\1/p'
}

# A virtual byte offset (64 KiB aligned) that j0 wrote.
written() {
	awk '$1 == "submit" { print int($3 * 512 / 65536) * 65536; exit }' "$WORK/j0"
}

# where WHAT VOFF: where the image keeps virtual byte VOFF: its data
# (data) or the table that maps it (meta), as 512-byte sectors "START LEN".
where() {
	local s
	if [ "$W_FMT" = vhd ]; then
		# 2 MiB blocks: one bitmap sector in front of the data
		s=$(vhd_block "$IMG" $(($2 >> 21))) || return 1
		case $1 in
		data) echo "$((s + 1 + ($2 & ((1 << 21) - 1)) / 512)) 128" ;;
		meta) echo "$s 1" ;;
		esac
	else
		case $1 in
		data) s=$(qcow2_host "$IMG" "$2") && echo "$((s / 512)) 128" ;;
		meta) s=$(($(be "$IMG" "$(be "$IMG" 40 8)" 8) & 0x00fffffffffffe00)) &&
			echo "$((s / 512)) 128" ;;
		esac
	fi
}

# Read errors: a failed read of KIND's data (or metadata) reaches the
# caller as EIO, is counted, and is retried once the fault is gone.
read_fault() {
	local kind=$1 what=$2 fault=$3 range errs voff
	setup "$kind" || return 1
	voff=$(written)
	read -r -a range < <(where "$what" "$voff") || return 1
	fault_set "${range[@]}" "$fault" && fault_map || return 1
	kmsg_mark
	eio "/dev/mapper/$F_VC" "$voff" || return 1
	errs=$(io_errors)
	# Sectors the damage does not touch read fine (a VHD's next block).
	if [ "$W_FMT" = vhd ] && [ "$what" = data ]; then
		dd if="/dev/mapper/$F_VC" of=/dev/null bs=64k skip=64 count=32 iflag=direct \
			status=none || { echo "a read outside the failing range failed"; return 1; }
	fi
	fault_clear || return 1
	"$WLOG" check "$WORK/j0" "/dev/mapper/$F_VC" ||
		{ echo "the failed read was remembered after the fault was lifted"; return 1; }
	no_kernel_problems || return 1
	[ "${errs:-0}" -gt 0 ] ||
		{ echo "the EIO is not counted: $(dmsetup status "$F_VC")"; return 1; }
}

# Allocating writes into the unwritten half while FAULT covers the whole
# device: they fail (or vanish); lifted, the image is consistent and holds
# what was flushed before.
write_fault() {
	local kind=$1 fault=$2 rc
	setup "$kind" && fault_map && fault_set 0 "$F_SECTORS" "$fault" || return 1
	kmsg_mark
	dd if=/dev/urandom of="/dev/mapper/$F_VC" bs=64k seek=128 count=64 oflag=direct \
		status=none 2>"$WORK/dd.err"
	rc=$?
	fault_flush "/dev/mapper/$F_VC" 2>>"$WORK/dd.err"
	echo "writes: exit $rc: $(head -n 3 "$WORK/dd.err"); mode:$(fault_mode)"
	if [ "$fault" != drop ] && [ "$rc" -eq 0 ]; then
		echo "the writes succeeded on a device that fails them"
		return 1
	fi
	fault_clear && dm_remove "$F_VC" && intact && no_kernel_problems
}

# metadata_ranges: the tables a commit writes, as fault_set ranges of
# KIND: qcow2 refcount table, first refcount block, L1 table; VHD BAT.
metadata_ranges() {
	local cs rt rb l1 list
	if [ "$W_FMT" = vhd ]; then
		# The BAT sector (block 0 is allocated, so the BAT is in use).
		echo "$(($($IMGTOOL vhd-bat-entry "$IMG" 0 | cut -d' ' -f1) / 512)) 1 $1"
		return
	fi
	cs=$((1 << $(be "$IMG" 20 4)))
	rt=$(be "$IMG" 48 8)
	rb=$(($(be "$IMG" "$rt" 8) & ~511))
	l1=$(be "$IMG" 40 8)
	list=$(printf '%s\n' "$rt" "$rb" "$l1" | sort -n -u)
	for s in $list; do
		echo "$((s / 512)) $((cs / 512)) $1"
	done
}

# A commit whose metadata write fails stops all writing until a reload
# (werror: writes with data fail; flushes pass, as the error target takes
# none).
commit_fault() {
	local kind=$1 ranges
	setup "$kind" || return 1
	mapfile -t ranges < <(metadata_ranges werror)
	# shellcheck disable=SC2068 # each line is "START LEN KIND"
	fault_map && fault_set ${ranges[@]} || return 1
	kmsg_mark
	# Allocating writes, then a flush: the commit must fail (the commit
	# timer may get there first; then the writes after it fail).
	dd if=/dev/urandom of="/dev/mapper/$F_VC" bs=64k seek=128 count=32 oflag=direct \
		status=none 2>/dev/null
	if fault_flush "/dev/mapper/$F_VC" 2>/dev/null; then
		echo "the flush succeeded, but its commit cannot have"
		return 1
	fi
	[ "$(fault_mode)" = failed ] ||
		{ echo "status does not say mode:failed: $(dmsetup status "$F_VC")"; return 1; }
	kmsg_since | grep -q 'vhdcrypt.*writes stop' ||
		{ echo "the kernel log does not say writes stop"; kmsg_since; return 1; }
	# Fail-stop: no write, even in place and with the fault lifted...
	fault_clear || return 1
	if dd if=/dev/zero of="/dev/mapper/$F_VC" bs=4k count=1 oflag=direct status=none \
		2>/dev/null; then
		echo "a write after the failed commit succeeded"
		return 1
	fi
	# ...but reads go on, and a reload writes again.
	"$WLOG" check "$WORK/j0" "/dev/mapper/$F_VC" || return 1
	dmsetup suspend "$F_VC" && dmsetup load "$F_VC" --table "$(wtable "/dev/mapper/$F_DEV")" &&
		dmsetup resume "$F_VC" || return 1
	[ "$(fault_mode)" = rw ] || { echo "mode after the reload: $(fault_mode)"; return 1; }
	dd if=/dev/urandom of="/dev/mapper/$F_VC" bs=64k seek=200 count=8 oflag=direct \
		status=none && fault_flush "/dev/mapper/$F_VC" || return 1
	dm_remove "$F_VC" && intact && no_kernel_problems
}

# The whole image device fails at flush 4 of a write + flush workload.
midrun_fault() {
	local kind=$1
	setup "$kind" && fault_map || return 1
	# wlog runs the hook after each flush, in its flushing thread, while
	# the other thread goes on writing.
	cat >"$WORK/hook" <<-EOF
		[ "\$1" = wlog-flush-4 ] || exit 0
		dmsetup suspend $F_DEV && dmsetup load $F_DEV --table "0 $F_SECTORS error" &&
			dmsetup resume $F_DEV
	EOF
	kmsg_mark
	if "$WLOG" run "/dev/mapper/$F_VC" --journal "$WORK/j1" --seed 2 --writes 300 \
		--first 8192 --sectors 16384 --threads 2 --direct --flush-every 10 \
		--on-flush "sh $WORK/hook \"\$1\"" >"$WORK/wlog.out" 2>&1; then
		echo "the workload did not notice the failing device"
		return 1
	fi
	grep -q 'flush-done 4' "$WORK/j1" || { echo "the fault came before flush 4"; return 1; }
	echo "mode after the fault: $(fault_mode)"
	fault_clear && dm_remove "$F_VC" || return 1
	intact || return 1
	fault_map --readonly &&
		"$WLOG" check "$WORK/j1" "/dev/mapper/$F_VC" --after flush:4 || return 1
	dm_remove "$F_VC" && no_kernel_problems
}

# Delayed and reordered completions under writes, flushes and reads.
delay_case() {
	local kind=$1
	setup "$kind" && fault_set 0 "$F_SECTORS" slow && fault_map || return 1
	"$WLOG" run "/dev/mapper/$F_VC" --journal "$WORK/j1" --seed 3 --writes 200 \
		--first 8192 --sectors 16384 --threads 3 --direct --flush-every 12 \
		>/dev/null || return 1
	"$WLOG" check "$WORK/j1" "/dev/mapper/$F_VC" || return 1
	dm_remove "$F_VC" && fault_clear || return 1
	intact && fault_map --readonly && "$WLOG" check "$WORK/j1" "/dev/mapper/$F_VC"
}

ERROR_READS=no
fault_case() {
	"$@"
	local rc=$?
	dm_remove_all
	rm -f "$IMG" "$IMG.key"
	return $rc
}

# fcase [--every-kind] DESC FN ARGS...: FN KIND ARGS... as a test case
# for every kind (with VHDCRYPT_FULL or --every-kind), else for the next
# kind in turn: each fault class once.
NCASE=0
fcase() {
	local every=${VHDCRYPT_FULL:-} desc fn k kinds
	[ "$1" != --every-kind ] || { every=1; shift; }
	desc=$1 fn=$2
	shift 2
	read -r -a kinds <<<"$KINDS"
	[ -n "$every" ] || kinds=("${kinds[NCASE++ % ${#kinds[@]}]}")
	for k in "${kinds[@]}"; do
		run_case "$k: $desc" fault_case "$fn" "$k" "$@"
	done
}

# error_reads, where dm-flakey has it (6.12, not 6.1).
truncate -s 1M "$WORK/p" && fault_stack "$WORK/p" && fault_has_error_reads && ERROR_READS=yes
dm_remove_all
flakey_read_fault() {
	if [ "$ERROR_READS" != yes ]; then
		# shellcheck disable=SC2034 # read by run_case
		SKIP_REASON="this kernel's dm-flakey has no error_reads (6.1)"
		return 4
	fi
	read_fault "$@"
}

# make check spreads the cases over the kernels (CASE_SPLIT): 6.1 runs the
# odd ones, 6.12 the even ones (error_reads among them).
fcase "data read fails (error target)" read_fault data error
fcase "data read fails (dm-flakey error_reads)" flakey_read_fault data freads
fcase "metadata read fails at completion (error behind dm-delay)" read_fault meta aerror
[ -z "${VHDCRYPT_FULL:-}" ] ||
	fcase "data read fails at completion (error behind dm-delay)" read_fault data aerror
[ -z "${VHDCRYPT_FULL:-}" ] ||
	fcase "data read fails, writes pass (dm-delay split)" read_fault data rerror
[ -z "${VHDCRYPT_FULL:-}" ] || fcase "metadata read fails (error target)" read_fault meta error
[ -z "${VHDCRYPT_FULL:-}" ] || fcase "allocating writes fail (dm-delay split)" write_fault werror
fcase "allocating writes fail (dm-flakey error_writes)" write_fault ferror
fcase "allocating writes vanish (dm-flakey drop_writes)" write_fault drop
# Fail-stop on every kind: each format commits its own way.
fcase --every-kind "metadata write fails at commit: fail-stop, reload" commit_fault
fcase "the device fails at a flush under load" midrun_fault
[ -z "${VHDCRYPT_FULL:-}" ] || fcase "writes and flushes over dm-delay" delay_case
tap_done
