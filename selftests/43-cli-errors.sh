#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=600
# check-kernels=6.1
#
# vhdcryptsetup error paths: each must fail with one clear line and the
# documented exit code, as cryptsetup's (1 wrong parameters, not an image or
# damaged, 2 bad key, 4 no such image or device, 5 exists or busy) and leave
# no dm or loop device behind.  Usage errors,
# non-images, damaged images, a missing parent or backing file, a replaced
# parent, a name that exists, an image already in use, close while open,
# close/status of unknown or foreign devices, a missing kernel target; and
# the block-device image path (a loop device the caller owns is left alone).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-cli.sh"

start_cli_test qemu-img qemu-io xz python3
FX=${VHDCRYPT_FIXTURES:-$(dirname "$0")/fixtures}/openxt
IMGTOOL="python3 $(dirname "$0")/imgtool.py"
W=$SELFTEST_TMP
cd "$W" || skip_all "no work directory"
P=vce$$
unset TAPDISK2_CRYPTO_KEYDIR TAPDISK3_CRYPTO_KEYDIR VHDCRYPT_DEBUG

# cli, stricter than lib-cli.sh's: a failure must be one line on stderr.
cli() {
	local _n=$1 _want=$2 _msg=$3 _rc _lines
	shift 3
	"$@" >"$SELFTEST_TMP/.cli" 2>"$SELFTEST_TMP/.err"
	_rc=$?
	_lines=$(wc -l <"$SELFTEST_TMP/.err")
	if [ "$_rc" -eq "$_want" ] && { [ -z "$_msg" ] || grep -qF -- "$_msg" "$SELFTEST_TMP/.err" "$SELFTEST_TMP/.cli"; } &&
		{ [ "$_rc" -eq 0 ] || [ "$_want" -eq 1 ] || [ "$_lines" -eq 1 ]; }; then
		tap_ok "$_n"
		return 0
	fi
	tap_fail "$_n" "command: $*" "exit status $_rc, wanted $_want${_msg:+ and \"$_msg\"}" \
		"stderr ($_lines lines): $(cat "$SELFTEST_TMP/.err")" "stdout: $(head -c 2000 "$SELFTEST_TMP/.cli")"
	return 1
}

for f in parent child-own aes256xts; do
	# shellcheck disable=SC2216 # cp reads /dev/stdin
	xz -dc "$FX/$f.vhd.xz" | cp --sparse=always /dev/stdin "$W/$f.vhd"
done
cp -r "$FX/keys" "$W/"
qemu-img create -q -f qcow2 plain.qcow2 8M
qemu-io -f qcow2 -c "write -P 0x5a 0 64k" plain.qcow2 >/dev/null

# 1. usage: exit 1
cli "no command: exit 1" 1 "Usage:" "$TOOL"
cli "unknown command: exit 1" 1 "unknown command" "$TOOL" frob x
cli "unknown option: exit 1" 1 "unknown option" "$TOOL" open --frob plain.qcow2 x
cli "open without a name: exit 1" 1 "needs <image> <name>" "$TOOL" open plain.qcow2
cli "bad --type: exit 1" 1 "unknown --type" "$TOOL" open --type vmdk plain.qcow2 x
cli "name too long: exit 1" 1 "longer than 64" "$TOOL" open plain.qcow2 "$(printf 'n%.0s' $(seq 65))"
cli "name with a slash: exit 1" 1 "contains '/'" "$TOOL" open plain.qcow2 a/b

# 2. not an image, or damaged: exit 1 (cryptsetup: "not a valid LUKS device")
head -c 1M /dev/urandom >random.bin
cli "not an image: exit 1" 1 "random.bin is not a VHD or qcow2 image" "$TOOL" open random.bin "$P-x"
cli "probe not an image: exit 1" 1 "is not a VHD or qcow2 image" "$TOOL" probe random.bin
tap_check "probe not an image: nothing on stdout" test ! -s "$SELFTEST_TMP/.cli"
cli "--type mismatch: exit 1" 1 "is not a vhd image" "$TOOL" open --type vhd plain.qcow2 "$P-x"
cp --sparse=always aes256xts.vhd broken.vhd
$IMGTOOL xor broken.vhd -412 0x40 >/dev/null && $IMGTOOL xor broken.vhd 100 0x40 >/dev/null
cli "damaged VHD footers: exit 1" 1 "bad VHD footer checksum" "$TOOL" open --key-dir keys broken.vhd "$P-x"
cp plain.qcow2 broken.qcow2
$IMGTOOL poke broken.qcow2 20 4 30 >/dev/null
cli "damaged qcow2 header: exit 1" 1 "cluster size out of range" "$TOOL" open broken.qcow2 "$P-x"
mkdir -p replaced
cp --sparse=always child-own.vhd replaced/
cp --sparse=always aes256xts.vhd replaced/parent.vhd
cli "replaced parent: exit 1" 1 "(the parent was replaced)" \
	"$TOOL" open --key-dir keys replaced/child-own.vhd "$P-x"

# 3. no such image or device: exit 4
cli "image does not exist: exit 4" 4 "cannot open image nonexistent" "$TOOL" open nonexistent "$P-x"
mkdir -p lonely
cp --sparse=always child-own.vhd lonely/
cli "missing parent: exit 4, naming the path tried" 4 \
	"parent image of lonely/child-own.vhd not found: tried lonely/parent.vhd; restore" \
	"$TOOL" open --key-dir keys lonely/child-own.vhd "$P-x"
qemu-img create -q -f qcow2 -b gone.qcow2 -F qcow2 -u orphan.qcow2 8M
cli "missing backing file: exit 4, naming the path tried" 4 \
	"backing file of orphan.qcow2 not found: tried gone.qcow2" "$TOOL" open orphan.qcow2 "$P-x"
cli "status of an unknown device: exit 4" 4 "is not active" "$TOOL" status "$P-none"
cli "close of an unknown device: exit 4" 4 "is not active" "$TOOL" close "$P-none"
dm_create "$P-lin" "0 8 zero"
cli "close of a foreign device: exit 4" 4 "is not a vhdcrypt device" "$TOOL" close "$P-lin"
cli "status of a foreign device: exit 4" 4 "is not a vhdcrypt device" "$TOOL" status "$P-lin"
tap_check "the foreign device is still there" dmsetup info "$P-lin"

# 4. bad key: exit 2
cli "OpenXT wrong key: exit 2" 2 "(wrong key)" \
	"$TOOL" open --key-file keys/parent,aes-xts-plain,512.key aes256xts.vhd "$P-x"
tap_check "after the failures: nothing left behind" nothing_left "$P-x" \
	"$W/broken.vhd" "$W/aes256xts.vhd" "$W/lonely/child-own.vhd" "$W/orphan.qcow2" "$W/plain.qcow2"

# 5. exists or busy: exit 5
name=$P-busy
at_exit close_quiet "$name"
if cli "open a chain" 0 "" "$TOOL" open --key-dir keys child-own.vhd "$name"; then
	cli "same name again: exit 5" 5 "device $name already exists" \
		"$TOOL" open --key-dir keys aes256xts.vhd "$name"
	cli "same image again: exit 5" 5 "child-own.vhd is already in use" \
		"$TOOL" open --key-dir keys child-own.vhd "$P-other"
	# the parent may be shared: another child over the same parent
	cp --sparse=always child-own.vhd child-own2.vhd
	cli "a chain sharing the lower image opens" 0 "" \
		"$TOOL" open --key-file keys/child-own,aes-xts-plain,256.key --key-dir keys child-own2.vhd "$P-other"
	cli "close the second chain" 0 "" "$TOOL" close "$P-other"
	exec 3<"/dev/mapper/$name"
	cli "close while open: exit 5" 5 "still in use" "$TOOL" close "$name"
	tap_check "close while open: the device stays" test -b "/dev/mapper/$name"
	exec 3<&-
	cli "close after release" 0 "" "$TOOL" close "$name"
	tap_check "close: nothing left behind" nothing_left "$name" "$W/child-own.vhd" "$W/parent.vhd"
fi
dm_create "$P-L-L1" "0 8 zero"
cli "a lower-layer name that exists: exit 5" 5 "$P-L-L1 (a lower layer name) already exists" \
	"$TOOL" open --key-dir keys child-own.vhd "$P-L"
tap_check "lower-layer clash: nothing left behind" \
	sh -c "! dmsetup info $P-L >/dev/null 2>&1 && [ -z \"\$(losetup -j $W/child-own.vhd)\" ]"

# 6. an image on a block device the caller owns
loop=$(new_loop "$W/plain.qcow2" --ro)
name=$P-blk
at_exit close_quiet "$name"
if cli "open a block device" 0 "" "$TOOL" open "$loop" "$name"; then
	qemu-img convert -f qcow2 -O raw plain.qcow2 plain.raw
	tap_check "block device: same data as qemu-img" cmp "/dev/mapper/$name" plain.raw
	cli "probe a block device" 0 "VHDCRYPT_TYPE=qcow2" "$TOOL" probe "$loop"
	cli "block device: close" 0 "" "$TOOL" close "$name"
	tap_check "block device: the caller's loop device is left alone" test -n "$(losetup -j "$W/plain.qcow2")"
fi

# 7. no kernel target: found before any passphrase, key derivation or loop device
qemu_retry qemu-img create -q -f qcow2 --object secret,id=s,data=pw \
	-o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 luks.qcow2 8M
if [ -z "$(dmsetup table --target vhdcrypt 2>/dev/null | grep -v '^No devices')" ] &&
	rmmod dm_vhdcrypt 2>/dev/null; then
	cp plain.qcow2 plain2.qcow2
	cli "no vhdcrypt target: exit 1" 1 \
		"vhdcrypt kernel target is not available; load the dm-vhdcrypt module (modprobe dm-vhdcrypt)" \
		"$TOOL" open plain2.qcow2 "$P-nomod"
	tap_check "no vhdcrypt target: nothing left behind" nothing_left "$P-nomod" "$W/plain2.qcow2"
	# stdin is empty: a passphrase asked for first would fail with "standard input is empty"
	cli "no vhdcrypt target: said before the passphrase" 1 "load the dm-vhdcrypt module" \
		"$TOOL" open luks.qcow2 "$P-nomod" </dev/null
	tap_check "no vhdcrypt target: no loop device attached" nothing_left "$P-nomod" "$W/luks.qcow2"
	load_vhdcrypt
	tap_check "module reloaded" test -d /sys/module/dm_vhdcrypt
else
	tap_skip "no vhdcrypt target" "the module is in use"
fi

# 8. not root: the exit codes of cryptsetup's binary (open and status 1, close 4)
if command -v setpriv >/dev/null; then
	nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
	cli "not root: open exits 1" 1 "running as a non-root user; run as root" \
		nobody "$TOOL" open plain.qcow2 "$P-nr"
	cli "not root: status exits 1" 1 "running as a non-root user" nobody "$TOOL" status "$P-nr"
	cli "not root: close exits 4" 4 "running as a non-root user" nobody "$TOOL" close "$P-nr"
else
	tap_skip "not root" "no setpriv"
fi

tap_done
