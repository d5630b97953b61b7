# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2034
# (SC2034: IMGTOOL, FIXTURES, WORK, LOOP... are used by the test files)
# Image helpers for the vhdcrypt selftests 10-32: making VHD/qcow2 images
# with QEMU's tools, getting the LUKS volume key of a qcow2, mapping images
# read-only, comparing the result, one TAP result per case.  Sourced after
# lib.sh.

SELFTEST_DIR=$(cd "$(dirname "$0")" && pwd)
IMGTOOL="python3 $SELFTEST_DIR/imgtool.py"
FIXTURES=${VHDCRYPT_FIXTURES:-$SELFTEST_DIR/fixtures}

# ---------------------------------------------------------------------------
# Generic checks

# cmp_dev_file DEV FILE LEN: the first LEN bytes of DEV and FILE are equal.
cmp_dev_file() {
	cmp -n "$3" "$1" "$2" >&2
}

# is_zero DEV OFFSET LEN: LEN bytes of DEV from byte OFFSET are zero.
is_zero() {
	[ "$3" -eq 0 ] && return 0
	cmp -i "$2:0" -n "$3" "$1" /dev/zero >&2
}

# dev_size DEV: size in bytes.
dev_size() {
	blockdev --getsize64 "$1"
}

# same DEV FILE: the device has the file's size and bytes.
same() {
	local size
	size=$(stat -c %s "$2")
	[ "$(dev_size "$1")" -eq "$size" ] || { echo "device size $(dev_size "$1") != $size"; return 1; }
	cmp_dev_file "$1" "$2" "$size"
}

# ---------------------------------------------------------------------------
# Header fields (od is much cheaper than python3 in an emulated guest)

# be FILE OFFSET SIZE: the big-endian unsigned integer (SIZE 1, 2, 4 or 8
# bytes) at byte OFFSET.
be() {
	od --endian=big -An -tu"$3" -j "$2" -N "$3" "$1" | tr -d ' '
}

# vhd_current_size FILE: the footer's current_size (the disk size in bytes).
vhd_current_size() {
	be "$1" $(($(stat -c %s "$1") - 512 + 48)) 8
}

# qcow2_size FILE: the virtual disk size in bytes.
qcow2_size() {
	be "$1" 24 8
}

# qcow2_fde FILE: "<offset> <length>" of the LUKS header that header
# extension 0x0537be77 points to; fails if there is none.  Extensions follow
# the header (72 bytes in v2, header_length in v3): u32 type, u32 length,
# data padded to 8 bytes, type 0 ends the list.
qcow2_fde() {
	local f=$1 off=72 end type len
	[ "$(be "$f" 4 4)" -lt 3 ] || off=$(be "$f" 100 4)
	end=$((1 << $(be "$f" 20 4)))
	while [ $((off + 8)) -le "$end" ]; do
		type=$(be "$f" "$off" 4)
		len=$(be "$f" $((off + 4)) 4)
		case $type in
		0) return 1 ;;
		$((0x0537be77))) echo "$(be "$f" $((off + 8)) 8) $(be "$f" $((off + 16)) 8)"; return 0 ;;
		esac
		off=$((off + 8 + (len + 7) / 8 * 8))
	done
	return 1
}

# ---------------------------------------------------------------------------
# QEMU images

# qemu_raw ARGS... OUT: qemu-img convert -O raw of an image (ARGS give
# the format or --image-opts); the expected plaintext.
qemu_raw() {
	local out=${*: -1}
	qemu-img convert "${@:1:$#-1}" -O raw "$out"
}

# qemu_size ARGS...: virtual size in bytes as qemu-img info reports it.
qemu_size() {
	qemu-img info --output=json "$@" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'
}

# luks_create FILE SIZE PASS [OPTS [qemu-img create args...]]: a qcow2 with
# built-in LUKS (PBKDF2 tuned to 10 ms), -o options added from OPTS.
luks_create() {
	local file=$1 size=$2 pass=$3 opts=$4
	shift 3
	[ $# -eq 0 ] || shift
	qemu_retry qemu-img create -q -f qcow2 --object "secret,id=sec0,data=$pass" \
		-o "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10${opts:+,$opts}" \
		"$@" "$file" "$size"
}

# luks_key FILE PASS: prints "<dm cipher> <hex volume key>" of a qcow2 with
# built-in LUKS: the LUKS header (header extension 0x0537be77) is copied out
# and read with cryptsetup.
luks_key() {
	local file=$1 pass=$2 fde dir region pw name mode key
	fde=$(qcow2_fde "$file") || { echo "luks_key: $file has no LUKS header" >&2; return 1; }
	dir=$(mktemp -d "$SELFTEST_TMP/luks.XXXXXX")
	region=$dir/region.bin pw=$dir/pass
	dd if="$file" of="$region" iflag=skip_bytes,count_bytes \
		skip="${fde% *}" count="${fde#* }" status=none
	printf %s "$pass" >"$pw"
	# The dump names the cipher, then "MK dump:" and the key over several lines.
	cryptsetup luksDump --dump-master-key --batch-mode --key-file "$pw" "$region" >"$dir/dump"
	name=$(sed -n 's/^Cipher name:[[:space:]]*//p' "$dir/dump")
	mode=$(sed -n 's/^Cipher mode:[[:space:]]*//p' "$dir/dump")
	key=$(sed -n '/^MK dump:/,/^[^[:space:]]/{s/^MK dump://;/^[^[:space:]]/d;p}' "$dir/dump" | tr -d ' \t\n')
	rm -rf "$dir"
	[ -n "$name" ] && [ -n "$mode" ] && [ -n "$key" ] || return 1
	echo "$name-$mode $key"
}

# with_logon_key DESC HEXKEY CMD...: run CMD in a new session keyring holding
# a "logon" key DESC whose payload is the bytes HEXKEY (as "keyctl session"
# and "keyctl padd logon DESC @s" would; keyutils' library is enough).
with_logon_key() {
	python3 -c '
import ctypes, os, sys
ku = ctypes.CDLL("libkeyutils.so.1", use_errno=True)
ku.add_key.restype = ctypes.c_int32
desc, key, cmd = sys.argv[1].encode(), bytes.fromhex(sys.argv[2]), sys.argv[3:]
if ku.keyctl_join_session_keyring(None) < 0:
    sys.exit("join_session_keyring: " + os.strerror(ctypes.get_errno()))
if ku.add_key(b"logon", desc, key, len(key), -3) < 0:
    sys.exit("add_key: " + os.strerror(ctypes.get_errno()))
os.execvp(cmd[0], cmd)
' "$@"
}

# ---------------------------------------------------------------------------
# Test cases, on top of lib.sh

CASE_PREFIX=vst$$
SKIP_REASON=

# start_image_test [TOOL...]: skip the file without root, the tools or the
# vhdcrypt module; $WORK is the scratch directory.
start_image_test() {
	need_root
	need_cmd dmsetup losetup od cmp python3 "$@"
	load_vhdcrypt || skip_all "cannot load the vhdcrypt module"
	WORK=$SELFTEST_TMP
}

# run_case NAME CMD...: one TAP result for CMD, run in this shell; its output
# becomes diagnostics.  Status 0 passes, 4 skips (reason in SKIP_REASON),
# anything else fails.  The dm devices it made are removed afterwards.
# With CASE_SPLIT=1 (a file of independent cases) in make check
# (VHDCRYPT_CHECK_SPLIT=1, set by run_tests.sh), 6.1 runs the odd cases and
# other kernels the even ones; make check-full runs all on every kernel.
run_case() {
	local _case_name=$1 _case_rc _case_t0=${EPOCHREALTIME/[.,]/} _half=0
	shift
	if [ "${CASE_SPLIT:-0}" = 1 ] && [ "${VHDCRYPT_CHECK_SPLIT:-0}" = 1 ]; then
		CASE_SEQ=$((${CASE_SEQ:-0} + 1))
		case $(uname -r) in 6.1.*) _half=1 ;; esac
		if [ $((CASE_SEQ % 2)) != "$_half" ]; then
			tap_skip "$_case_name" "make check runs it on the other kernel"
			return 0
		fi
	fi
	SKIP_REASON=
	"$@" >"$SELFTEST_TMP/.case" 2>&1
	_case_rc=$?
	dm_remove_all >>"$SELFTEST_TMP/.case" 2>&1
	case $_case_rc in
	0) tap_ok "$_case_name" ;;
	4) tap_skip "$_case_name" "${SKIP_REASON:-no reason given}" ;;
	*) tap_fail "$_case_name" "exit status $_case_rc" ;;
	esac
	[ -s "$SELFTEST_TMP/.case" ] && tap_diag "$(cat "$SELFTEST_TMP/.case")"
	tap_diag "time: $(((${EPOCHREALTIME/[.,]/} - _case_t0) / 1000)) ms"
}

# loop FILE: a read-only loop device for FILE, in $LOOP (detached at exit).
loop() {
	LOOP=$(new_loop "$1" --ro)
}

# map NAME TABLE: a read-only dm device, named $(dev NAME).
map() {
	dm_create "$CASE_PREFIX-$1" "$2" --readonly && [ -b "$(dev "$1")" ]
}

dev() {
	echo "/dev/mapper/$CASE_PREFIX-$1"
}

# Kernel log since a mark.
kmsg_mark() {
	KMSG_MARK="selftest-mark-$$-$RANDOM$RANDOM"
	echo "$KMSG_MARK" >/dev/kmsg
}

kmsg_since() {
	dmesg | sed -n "/$KMSG_MARK/,\$p" | tail -n +2
}

# no_kernel_problems [LOG]: scripts/dmesg-check finds nothing in LOG, by
# default the kernel log since the last mark (else it prints the lines and
# this fails).
no_kernel_problems() {
	if [ $# -gt 0 ]; then printf '%s\n' "$1"; else kmsg_since; fi |
		"$VHDCRYPT_SRC/scripts/dmesg-check"
}

# failure_explained: after a failed table load, the kernel log since the
# mark explains it in a line naming vhdcrypt and shows no kernel problem.
failure_explained() {
	local log
	log=$(kmsg_since)
	printf '%s\n' "$log" | sed 's/^/dmesg: /'
	no_kernel_problems "$log" || return 1
	printf '%s\n' "$log" | grep -q vhdcrypt || { echo "no vhdcrypt message in dmesg"; return 1; }
}

# expect_load_fail NAME TABLE: loading the table must fail, explained.
expect_load_fail() {
	kmsg_mark
	if map "$1" "$2" 2>/dev/null; then
		echo "table loaded but should have failed: $2"
		return 1
	fi
	failure_explained
}

# ---------------------------------------------------------------------------
# cgroup v2

# cgroup_child CONTROLLER NAME: a new group NAME under the cgroup v2 root
# with CONTROLLER (io, memory...) enabled for it, its path in $CGROUP,
# removed at exit.  cgroup2 is mounted on /sys/fs/cgroup first if nothing
# is (the selftest VM mounts none).
cgroup_child() {
	local root=/sys/fs/cgroup
	if ! grep -q "^[^ ]* $root cgroup2 " /proc/mounts; then
		mount -t cgroup2 none "$root" || return 1
		at_exit umount "$root"
	fi
	grep -qw "$1" "$root/cgroup.controllers" || { echo "cgroup v2 has no $1 controller"; return 1; }
	echo "+$1" >"$root/cgroup.subtree_control" || return 1
	CGROUP=$root/$2
	mkdir "$CGROUP" && at_exit rmdir "$CGROUP"
}

# spawn_in_cgroup DIR CMD...: start CMD in the background inside the cgroup
# DIR; its pid (CMD's own, for kill and wait) in $SPAWNED.
spawn_in_cgroup() {
	# shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
	sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$@" &
	SPAWNED=$!
}
