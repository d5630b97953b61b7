# SPDX-License-Identifier: GPL-2.0
# Image helpers for the vhdcrypt selftests 10-32: making VHD/qcow2 images
# with QEMU's tools, getting the LUKS volume key of a qcow2, mapping images
# read-only and comparing the result.  Sourced after lib.sh.

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

# dev_sha DEV: sha256 of the whole device.
dev_sha() {
	sha256sum <"$1" | cut -d' ' -f1
}

# dev_size DEV: size in bytes.
dev_size() {
	blockdev --getsize64 "$1"
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
# built-in LUKS, -o encrypt.* and other options added from OPTS.  QEMU times
# PBKDF2 and fails now and then with "Unable to get accurate CPU usage" on
# coarse clocks: retry.
luks_create() {
	local file=$1 size=$2 pass=$3 opts=$4 i
	shift 3
	[ $# -eq 0 ] || shift
	for i in 1 2 3 4 5 6; do
		qemu-img create -q -f qcow2 --object "secret,id=sec0,data=$pass" \
			-o "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10${opts:+,$opts}" \
			"$@" "$file" "$size" 2>"$file.err" && { rm -f "$file.err"; return 0; }
		grep -q 'accurate CPU usage' "$file.err" || break
	done
	cat "$file.err" >&2
	rm -f "$file.err"
	return 1
}

# luks_key FILE PASS: prints "<dm cipher> <hex volume key>" of a qcow2 with
# built-in LUKS: the LUKS header (header extension 0x0537be77) is copied out
# and read with cryptsetup.
luks_key() {
	local file=$1 pass=$2 fde dir region pw name mode key
	fde=$(qcow2_fde "$file") || { echo "luks_key: $file has no LUKS header" >&2; return 1; }
	dir=$(mktemp -d "$TMPDIR/luks.XXXXXX")
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
# TAP and device bookkeeping (used until lib.sh provides them)

VT_N=0 VT_PASS=0 VT_FAIL=0 VT_SKIP=0
VT_DMS=() VT_LOOPS=()
VT_PREFIX=vst$$
SKIP_REASON=

vt_plan() {
	echo "TAP version 13"
	echo "1..$1"
}

# vt_run NAME CMD...: run one sub-test in this shell; its status 0 is a
# pass, 4 a skip (reason in SKIP_REASON), anything else a failure.  Devices
# it made are removed afterwards.
vt_run() {
	local name=$1 rc t0=${EPOCHREALTIME/[.,]/}
	shift
	SKIP_REASON=
	echo "# --- $name"
	"$@"
	rc=$?
	vt_cleanup
	echo "# time: $(((${EPOCHREALTIME/[.,]/} - t0) / 1000)) ms"
	VT_N=$((VT_N + 1))
	case $rc in
	0) echo "ok $VT_N $name"; VT_PASS=$((VT_PASS + 1)) ;;
	4) echo "ok $VT_N $name # SKIP ${SKIP_REASON:-no reason given}"; VT_SKIP=$((VT_SKIP + 1)) ;;
	*) echo "not ok $VT_N $name"; VT_FAIL=$((VT_FAIL + 1)) ;;
	esac
}

vt_done() {
	echo "# Totals: pass:$VT_PASS fail:$VT_FAIL xfail:0 xpass:0 skip:$VT_SKIP error:0"
	echo "$VT_PASS passed, $VT_FAIL failed, $VT_SKIP skipped"
	[ "$VT_FAIL" -eq 0 ] || exit 1
	[ "$VT_PASS" -gt 0 ] || [ "$VT_SKIP" -eq 0 ] || exit 4
	exit 0
}

vt_skip_all() {
	echo "TAP version 13"
	echo "1..0 # SKIP $*"
	exit 4
}

vt_require_target() {
	[ "$(id -u)" = 0 ] || vt_skip_all "must run as root"
	command -v dmsetup >/dev/null || vt_skip_all "dmsetup missing"
	modprobe loop 2>/dev/null
	if ! dmsetup targets 2>/dev/null | grep -q '^vhdcrypt '; then
		modprobe dm_mod 2>/dev/null
		modprobe dm_bufio 2>/dev/null
		[ -n "${VHDCRYPT_KO:-}" ] || vt_skip_all "vhdcrypt target not loaded and VHDCRYPT_KO unset"
		insmod "$VHDCRYPT_KO" || vt_skip_all "insmod $VHDCRYPT_KO failed"
	fi
	dmsetup targets | grep -q '^vhdcrypt ' || vt_skip_all "no vhdcrypt target"
}

# vt_need TOOL...: skip this sub-test if a tool is missing.
vt_need() {
	local t
	for t; do
		command -v "$t" >/dev/null || { SKIP_REASON="$t not installed"; return 4; }
	done
}

vt_cleanup() {
	local i
	for ((i = ${#VT_DMS[@]} - 1; i >= 0; i--)); do
		dmsetup remove --retry "${VT_DMS[i]}" >/dev/null 2>&1
	done
	for i in "${VT_LOOPS[@]}"; do
		losetup -d "$i" 2>/dev/null
	done
	VT_DMS=() VT_LOOPS=()
}
trap vt_cleanup EXIT

# vt_loop FILE: read-only loop device for FILE, in $LOOP.
vt_loop() {
	LOOP=$(losetup -r -f --show "$1") || return 1
	VT_LOOPS+=("$LOOP")
}

# vt_map NAME TABLE: dmsetup create --readonly; the device is /dev/mapper/$VT_PREFIX-NAME.
vt_map() {
	VT_DMS+=("$VT_PREFIX-$1")
	dmsetup create --readonly "$VT_PREFIX-$1" --table "$2"
	udevadm settle 2>/dev/null
	[ -b "/dev/mapper/$VT_PREFIX-$1" ]
}

vt_dev() {
	echo "/dev/mapper/$VT_PREFIX-$1"
}

# Kernel log since a marker line.
kmsg_mark() {
	KMSG_MARK="selftest-mark-$$-$RANDOM$RANDOM"
	echo "$KMSG_MARK" >/dev/kmsg
}

# kmsg_since [MARK]: the kernel log after MARK (default: the last kmsg_mark).
kmsg_since() {
	dmesg | sed -n "/${1:-$KMSG_MARK}/,\$p" | tail -n +2
}

KERNEL_PROBLEMS='WARNING:|BUG:|kernel BUG|Oops|general protection fault|Call Trace|KASAN|UBSAN|refcount_t:|list_(add|del) corruption|blocked for more than|soft lockup'

# vt_expect_load_fail NAME TABLE: the table load must fail, the kernel log
# must explain it in a line naming vhdcrypt, and show no kernel problem.
vt_expect_load_fail() {
	local log
	kmsg_mark
	if vt_map "$1" "$2" 2>/dev/null; then
		echo "# table loaded but should have failed: $2"
		return 1
	fi
	log=$(kmsg_since)
	printf '%s\n' "$log" | sed 's/^/# dmesg: /'
	if printf '%s\n' "$log" | grep -Eq "$KERNEL_PROBLEMS"; then
		echo "# kernel problem in dmesg"
		return 1
	fi
	printf '%s\n' "$log" | grep -q vhdcrypt || { echo "# no vhdcrypt message in dmesg"; return 1; }
}

# vt_no_kernel_problem [MARK]: nothing alarming in the log since MARK
# (default: the last kmsg_mark).
vt_no_kernel_problem() {
	local bad
	bad=$(kmsg_since "$@" | grep -E "$KERNEL_PROBLEMS")
	[ -z "$bad" ] && return 0
	printf '%s\n' "$bad" | sed 's/^/# dmesg: /'
	return 1
}
