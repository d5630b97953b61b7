#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=900
# check-kernels=6.1
#
# vhdcryptsetup defects that need a kernel (issue 15; the others are host
# tests in userspace/tests): status --json of an image whose path is not
# UTF-8 is valid JSON; a dynamic VHD without its trailing footer opens with
# a warning and reads as QEMU reads it, one truncated through its blocks is
# refused; legacy qcow2 AES warns that it cannot check the passphrase; the
# DM UUID names the key scheme, and status reads it from there.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-cli.sh"

start_cli_test qemu-img qemu-io cmp python3 xz
W=$SELFTEST_TMP
cd "$W" || skip_all "no work directory"
P=vcd$$
unset VHDCRYPT_DEBUG

# 1. status --json: a path with a byte that is not UTF-8
bad=$'caf\xe9.qcow2'
qemu-img create -q -f qcow2 "$bad" 8M
qemu-io -f qcow2 -c "write -P 0x5a 0 64k" "$bad" >/dev/null
name=$P-json
at_exit close_quiet "$name"
if cli "non-UTF-8 path: open" 0 "" "$TOOL" open "$bad" "$name"; then
	"$TOOL" status --json "$name" >st.json 2>&1
	tap_check "non-UTF-8 path: status --json is valid JSON, the byte as U+FFFD" python3 -c '
import json
s = json.loads(open("st.json", "rb").read().decode("utf-8"))
assert s["image"].endswith("caf\ufffd.qcow2"), s["image"]
assert s["encryption"] == "none" and s["chain"] == [], s
'
	cli "non-UTF-8 path: close" 0 "" "$TOOL" close "$name"
fi

# 2. damaged VHDs
qemu-img create -q -f vpc -o subformat=dynamic,force_size=on full.vhd 8M
qemu-io -f vpc -c "write -P 0x11 0 64k" -c "write -P 0x22 5M 512" full.vhd >/dev/null
qemu-img convert -f vpc -O raw full.vhd full.raw
size=$(stat -c %s full.vhd)
head -c $((size - 512)) full.vhd >nofooter.vhd
qemu-img convert -f vpc -O raw nofooter.vhd nofooter.raw
tap_check "no trailing footer: QEMU still reads it" cmp nofooter.raw full.raw
cli "no trailing footer: probe says damaged" 0 "VHDCRYPT_DAMAGED=1" "$TOOL" probe nofooter.vhd
name=$P-nof
at_exit close_quiet "$name"
"$TOOL" open nofooter.vhd "$name" 2>open.err
rc=$?
tap_check "no trailing footer: open warns and succeeds" \
	sh -c "[ $rc -eq 0 ] && grep -q 'nofooter.vhd is damaged: the footer at the end of the file is unusable' open.err"
if [ $rc -eq 0 ]; then
	tap_check "no trailing footer: same data as qemu-img convert" cmp "/dev/mapper/$name" full.raw
	cli "no trailing footer: close" 0 "" "$TOOL" close "$name"
fi
head -c 2097152 full.vhd >cut.vhd
cli "truncated through a block: refused, exit 1" 1 "cut.vhd is damaged: VHD block" \
	"$TOOL" open cut.vhd "$P-cut"
tap_check "truncated: nothing left behind" nothing_left "$P-cut" "$W/cut.vhd"

# 3. legacy AES: any passphrase opens it, and a warning says so
S="--object secret,id=sec0,data=legacy-pw"
# shellcheck disable=SC2086
if qemu-img create -q -f qcow2 $S -o encrypt.format=aes,encrypt.key-secret=sec0 aes.qcow2 8M \
	2>/dev/null &&
	qemu-io $S --image-opts "driver=qcow2,file.filename=aes.qcow2,encrypt.key-secret=sec0" \
		-c "write -P 0x77 0 64k" >/dev/null &&
	qemu-img convert $S --image-opts "driver=qcow2,file.filename=aes.qcow2,encrypt.key-secret=sec0" \
		-O raw aes.raw; then
	printf wrong >wrong
	name=$P-aes
	at_exit close_quiet "$name"
	"$TOOL" open --key-file wrong aes.qcow2 "$name" 2>open.err
	rc=$?
	tap_check "legacy AES, wrong passphrase: opens with a warning" \
		sh -c "[ $rc -eq 0 ] && grep -q 'cannot check the passphrase: a wrong one maps garbage' open.err"
	if [ $rc -eq 0 ]; then
		expect_fail "legacy AES, wrong passphrase: garbage, as the warning says" \
			cmp "/dev/mapper/$name" aes.raw
		cli "legacy AES: close" 0 "" "$TOOL" close "$name"
	fi
else
	tap_skip "legacy AES" "qemu-img cannot make encrypt.format=aes images"
fi

# 4. the DM UUID names the key scheme; status reads it from there
FX=${VHDCRYPT_FIXTURES:-$(dirname "$0")/fixtures}/openxt
for f in parent child-own; do
	# shellcheck disable=SC2216 # cp reads /dev/stdin
	xz -dc "$FX/$f.vhd.xz" | cp --sparse=always /dev/stdin "$W/$f.vhd"
done
cp -r "$FX/keys" "$W/"
name=$P-uuid
at_exit close_quiet "$name"
if cli "scheme in the DM UUID: open an OpenXT chain" 0 "" \
	"$TOOL" open --key-dir keys child-own.vhd "$name"; then
	tap_check "scheme in the DM UUID: OPENXT, top and lower layer" sh -c "
		dmsetup info -c --noheadings -o uuid $name | grep -qE '^VHDCRYPT-VHD-[0-9a-f-]{36}-OPENXT-$name\$' &&
		dmsetup info -c --noheadings -o uuid $name-L1 | grep -qE '^VHDCRYPT-VHD-[0-9a-f-]{36}-OPENXT-$name-L1\$'"
	cli "scheme in the DM UUID: status" 0 "encryption:   openxt" "$TOOL" status "$name"
	cli "scheme in the DM UUID: close" 0 "" "$TOOL" close "$name"
fi

tap_done
