#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=300
#
# Key hygiene: an OpenXT fixture VHD (key directory) and a qcow2 with LUKS
# (passphrase) opened with vhdcryptsetup, with keyring keys and with
# --disable-keyring; the key (raw, either XTS half, hex) is in none of
# dmesg, "dmsetup status", "vhdcryptsetup status" (text, --json, --debug) or
# the open's --debug/--verbose output, nor in "dmsetup table" with a keyring
# key, which shows :<size>:logon:<desc>; with a hex key the table shows it
# in the key field only, as dm-crypt's does. "key wipe" (while suspended,
# as in dm-crypt): a read waits while suspended; resumed without a key, that
# read, new reads and writes fail; "key set" (only while suspended) with
# the keyring form or the hex form, then resume, and reads return the data
# as before. The core dumps of the tool are checked on the host
# (userspace/tests/test-keys.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-cli.sh"
. "$(dirname "$0")/lib-img.sh"

start_cli_test xz python3 qemu-img cryptsetup sha256sum
FX=${VHDCRYPT_FIXTURES:-$(dirname "$0")/fixtures}/openxt
[ -f "$FX/aes256xts.vhd.xz" ] || skip_all "no OpenXT fixtures in $FX"
unset TAPDISK2_CRYPTO_KEYDIR TAPDISK3_CRYPTO_KEYDIR VHDCRYPT_DEBUG
W=$SELFTEST_TMP/keys
mkdir -p "$W" && cd "$W" || skip_all "no work directory"
P=vck$$

# leaks FILE: what of the key $HEX (and the passphrase file $PASS) FILE holds.
leaks() {
	python3 - "$1" "$HEX" ${PASS:+"$PASS"} <<'EOF'
import sys
data = open(sys.argv[1], 'rb').read()
key = bytes.fromhex(sys.argv[2])
half = len(key) // 2
needles = {'raw key': key, 'key, first half': key[:half], 'key, second half': key[half:],
	   'hex key': key.hex().encode(), 'hex key, upper case': key.hex().upper().encode(),
	   'hex of a half': key[:half].hex().encode()}
if len(sys.argv) > 3:
	needles['passphrase'] = open(sys.argv[3], 'rb').read()
for what, b in needles.items():
	if b in data:
		print(f'{what} in {sys.argv[1]}: {data[max(0, data.index(b) - 80):][:240]!r}')
EOF
}

# no_key NAME CMD...: CMD's output (stdout and stderr) holds no key.
no_key() {
	local _n=$1 _found
	shift
	"$@" >"$W/out" 2>&1
	_found=$(leaks "$W/out")
	if [ -z "$_found" ]; then
		tap_ok "$_n"
	else
		tap_fail "$_n" "command: $*" "$_found"
	fi
}

# The key field of DEV's table.
table_key() {
	dmsetup table "$1" | awk '{ print $7 }'
}

# sha256 of the first MiB of DEV, read past the page cache.
head_sum() {
	dd if="$1" bs=64k count=16 iflag=direct status=none | sha256sum | cut -d' ' -f1
}

# hygiene TAG OPEN-ARGS...: open with and without the keyring, check every
# output, then key wipe and key set on the keyring-mode device.
hygiene() {
	local tag=$1 name=$P-$1 ref got before reader
	shift
	kmsg_mark
	at_exit close_quiet "$name"
	cli "$tag: open --debug --verbose" 0 "" "$TOOL" open --debug --verbose "$@" "$name" || return
	no_key "$tag: the open's --debug/--verbose output has no key" cat "$SELFTEST_TMP/.cli"
	ref=":$((${#HEX} / 2)):logon:vhdcrypt:$name"
	tap_check "$tag: dmsetup table shows the keyring reference $ref" \
		test "$(table_key "$name")" = "$ref"
	no_key "$tag: dmsetup table has no key" dmsetup table "$name"
	no_key "$tag: dmsetup status has no key" dmsetup status "$name"
	no_key "$tag: vhdcryptsetup status has no key" "$TOOL" status "$name"
	no_key "$tag: status --json has no key" "$TOOL" status --json "$name"
	no_key "$tag: --debug status has no key" "$TOOL" --debug status "$name"
	before=$(head_sum "/dev/mapper/$name")

	# key wipe: a read waits while suspended; resumed without a key, it
	# fails, as do new reads and writes; key set (keyring form) while
	# suspended, resume: the data as before
	tap_check "$tag: suspend" dmsetup suspend "$name"
	tap_check "$tag: key wipe" dmsetup message "$name" 0 key wipe
	no_key "$tag: dmsetup table after key wipe has no key" dmsetup table "$name"
	dd if="/dev/mapper/$name" of=/dev/null bs=64k count=16 iflag=direct status=none &
	reader=$!
	sleep 1
	tap_check "$tag: a read waits while suspended" kill -0 "$reader"
	tap_check "$tag: resume without a key" dmsetup resume "$name"
	tap_check "$tag: dmesg says the key is not set" \
		grep -q "vhdcrypt key is not set" <(kmsg_since)
	expect_fail "$tag: the waiting read fails without a key" wait "$reader"
	expect_fail "$tag: a read fails without a key" \
		dd if="/dev/mapper/$name" of=/dev/null bs=4k count=1 iflag=direct status=none
	expect_fail "$tag: a write fails without a key" \
		dd if=/dev/zero of="/dev/mapper/$name" bs=4k count=1 oflag=direct status=none
	expect_fail "$tag: key set refused while live" \
		dmsetup message "$name" 0 key set "$HEX"
	tap_check "$tag: suspend again" dmsetup suspend "$name"
	expect_fail "$tag: key set with a key of another size refused" \
		dmsetup message "$name" 0 key set "${HEX:0:32}"
	tap_check "$tag: key set $ref" \
		with_logon_key "vhdcrypt:$name" "$HEX" dmsetup message "$name" 0 key set "$ref"
	tap_check "$tag: resume" dmsetup resume "$name"
	tap_check "$tag: the data as before" test "$(head_sum "/dev/mapper/$name")" = "$before"

	# key wipe, key set in hex: the same data
	dmsetup suspend "$name" && dmsetup message "$name" 0 key wipe
	tap_check "$tag: key set in hex" dmsetup message "$name" 0 key set "$HEX"
	tap_check "$tag: resume after key set in hex" dmsetup resume "$name"
	got=$(head_sum "/dev/mapper/$name")
	tap_check "$tag: the data as before" test "$got" = "$before"
	cli "$tag: close" 0 "" "$TOOL" close "$name"

	# --disable-keyring: the hex key in the table, as dm-crypt's, nowhere else
	cli "$tag: open --disable-keyring --debug" 0 "" \
		"$TOOL" open --disable-keyring --debug "$@" "$name" || return
	no_key "$tag: --disable-keyring: the open's --debug output has no key" \
		cat "$SELFTEST_TMP/.cli"
	tap_check "$tag: --disable-keyring: dmsetup table shows the hex key" \
		test "$(table_key "$name")" = "$HEX"
	no_key "$tag: --disable-keyring: dmsetup table has no key outside its key field" \
		bash -c 'dmsetup table "$1" | awk "{ \$7 = \"-\"; print }"' - "$name"
	no_key "$tag: --disable-keyring: dmsetup status has no key" dmsetup status "$name"
	no_key "$tag: --disable-keyring: vhdcryptsetup status has no key" "$TOOL" status "$name"
	no_key "$tag: --disable-keyring: status --json has no key" \
		"$TOOL" status --json "$name"
	no_key "$tag: --disable-keyring: --debug status has no key" \
		"$TOOL" --debug status "$name"
	cli "$tag: --disable-keyring: close" 0 "" "$TOOL" close "$name"
	kmsg_since >"$W/dmesg"
	no_key "$tag: dmesg has no key" cat "$W/dmesg"
	tap_check "$tag: no kernel problems" no_kernel_problems "$(cat "$W/dmesg")"
}

# OpenXT: the fixture's AES-256-XTS image and its key directory
# shellcheck disable=SC2216 # cp reads /dev/stdin
xz -dc "$FX/aes256xts.vhd.xz" | cp --sparse=always /dev/stdin aes256xts.vhd ||
	skip_all "cannot decompress the fixture"
cp -r "$FX/keys" .
HEX=$(od -An -tx1 -v "keys/aes256xts,aes-xts-plain,512.key" | tr -d ' \n') PASS=
hygiene openxt --readonly --key-dir keys aes256xts.vhd

# qcow2 with LUKS and a passphrase; some data written by QEMU
printf 'correct horse battery' >pass
luks_create luks.qcow2 16M "$(cat pass)" || skip_all "cannot make a qcow2 with LUKS"
qemu-io --object secret,id=s0,file=pass -c 'write -P 0x5a 0 1M' \
	--image-opts driver=qcow2,file.filename=luks.qcow2,encrypt.key-secret=s0 >/dev/null ||
	skip_all "qemu-io cannot write the qcow2"
HEX=$(luks_key luks.qcow2 "$(cat pass)" | cut -d' ' -f2) PASS=$PWD/pass
tap_check "qcow2-luks: volume key read back" test "${#HEX}" = 128
hygiene qcow2-luks --key-file pass luks.qcow2
tap_done
