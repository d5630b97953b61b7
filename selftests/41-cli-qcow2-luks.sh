#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=1200
# check-kernels=6.1
#
# vhdcryptsetup with qcow2 images made by qemu-img/qemu-io: built-in LUKS
# (several ciphers and hashes, 512-byte and 64 KiB clusters), the passphrase
# from a key file, from "--key-file -" and from a line on standard input,
# key slots, encrypted backing chains (one passphrase, or one per image),
# plain and raw layers in a chain, legacy AES; every mapping is compared
# with qemu-img convert -O raw.  Also: a wrong passphrase, no key in
# "dmsetup table", status --json, and close leaving nothing behind.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-cli.sh"

start_cli_test qemu-img qemu-io cmp python3
W=$SELFTEST_TMP
cd "$W" || skip_all "no work directory"
P=vcq$$

# mkluks FILE SIZE PASS [-o extras] [qemu-img create args...]: qcow2 with LUKS.
mkluks() {
	local f=$1 size=$2 pass=$3 extra=$4
	shift 4
	qemu_retry qemu-img create -q -f qcow2 --object "secret,id=sec0,data=$pass" \
		-o "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10${extra:+,$extra}" \
		"$@" "$f" "$size"
}

PATTERN=(
	-c "write -P 0x11 0 512"
	-c "write -P 0xab 1M 64k"
	-c "write -P 0x5c 3584512 7680"
	-c "write -P 0x66 9M 256k"
	-c "write -z 9M 64k"
	-c "write -P 0x33 16383k 1k"
)

# fill FILE IMAGE-OPTS [qemu-io -c ...]: write data with qemu-io.
fill() {
	local f=$1 opts=$2
	shift 2
	# shellcheck disable=SC2086
	qemu-io $SECRETS --image-opts "$opts" "$@" >/dev/null
}

# expect_raw OUT IMAGE-OPTS: QEMU's view of the virtual disk.
expect_raw() {
	# shellcheck disable=SC2086
	qemu-img convert $SECRETS --image-opts "$2" -O raw "$1"
}

printf pw-one >pw1
printf pw-two >pw2
printf wrong >wrongpw

# 1. default cipher (aes-256-xts-plain64, sha256), 64 KiB clusters
SECRETS="--object secret,id=sec0,data=pw-one"
mkluks a.qcow2 16M pw-one "" && fill a.qcow2 "driver=qcow2,file.filename=a.qcow2,encrypt.key-secret=sec0" "${PATTERN[@]}" &&
	expect_raw a.raw "driver=qcow2,file.filename=a.qcow2,encrypt.key-secret=sec0" ||
	skip_all "qemu-img/qemu-io cannot make LUKS images"
open_cmp "aes-xts, --key-file" a.qcow2 a.raw --key-file pw1
open_cmp "passphrase line on stdin" a.qcow2 a.raw <<<"pw-one"
name=$P-stdin
at_exit close_quiet "$name"
open_stdin() { printf pw-one | "$TOOL" open --key-file - a.qcow2 "$name"; }
cli "--key-file -: open" 0 "" open_stdin &&
	tap_check "--key-file -: same data" cmp "/dev/mapper/$name" a.raw
cli "--key-file -: close" 0 "" "$TOOL" close "$name"
open_cmp "--readonly, --allow-discards accepted" a.qcow2 a.raw --key-file pw1 --readonly --allow-discards

# 2. ciphers, hashes and cluster sizes
variant() {
	local v=$1 opts=$2 cluster=$3
	mkluks "$v.qcow2" 16M pw-one "$opts" -o "cluster_size=$cluster" || {
		tap_fail "$v: qemu-img create"
		return 1
	}
	fill "$v.qcow2" "driver=qcow2,file.filename=$v.qcow2,encrypt.key-secret=sec0" "${PATTERN[@]}"
	expect_raw "$v.raw" "driver=qcow2,file.filename=$v.qcow2,encrypt.key-secret=sec0"
	open_cmp "$v" "$v.qcow2" "$v.raw" --key-file pw1
	rm -f "$v.qcow2" "$v.raw"
}
variant cbc-essiv "encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,encrypt.ivgen-hash-alg=sha256" 65536
variant serpent-xts "encrypt.cipher-alg=serpent-256,encrypt.cipher-mode=xts" 65536
variant twofish-cbc-plain64 "encrypt.cipher-alg=twofish-256,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=plain64" 65536
variant sha512-512b-clusters "encrypt.hash-alg=sha512" 512

# 3. key slots
if qemu_retry qemu-img amend --object secret,id=sec0,data=pw-one \
	--object secret,id=sec1,data=pw-two \
	--image-opts "driver=qcow2,file.filename=a.qcow2,encrypt.key-secret=sec0" \
	-o encrypt.state=active,encrypt.new-secret=sec1,encrypt.keyslot=3,encrypt.iter-time=10; then
	open_cmp "second passphrase in key slot 3" a.qcow2 a.raw --key-file pw2
	open_cmp "--key-slot 3" a.qcow2 a.raw --key-file pw2 --key-slot 3
	cli "--key-slot 0 with slot 3's passphrase: exit 2" 2 "matches the passphrase" \
		"$TOOL" open --key-file pw2 --key-slot 0 a.qcow2 "$P-ks"
	cli "--key-slot 5 (inactive): exit 1" 1 "key slot 5 of a.qcow2 is not in use" \
		"$TOOL" open --key-file pw2 --key-slot 5 a.qcow2 "$P-ks"
else
	tap_skip "key slots" "qemu-img amend failed"
fi

# 4. wrong passphrase
cli "wrong passphrase: exit 2" 2 "no key slot of a.qcow2 matches the passphrase" \
	"$TOOL" open --key-file wrongpw a.qcow2 "$P-wrong"
tap_check "wrong passphrase: nothing left behind" nothing_left "$P-wrong" "$W/a.qcow2"
cli "no passphrase (stdin empty, not a terminal): exit 1" 1 "needs a passphrase" \
	"$TOOL" open a.qcow2 "$P-wrong"

# 5. the key stays out of the table
name=$P-key
at_exit close_quiet "$name"
if cli "--disable-keyring: open" 0 "" "$TOOL" open --disable-keyring --key-file pw1 a.qcow2 "$name"; then
	hexkey=$(dmsetup table "$name" | awk '{ print $7 }')
	tap_check "--disable-keyring: the 64-byte key is in the table" test ${#hexkey} -eq 128
	cli "--disable-keyring: status says table" 0 "key location: table" "$TOOL" status "$name"
	cli "--disable-keyring: close" 0 "" "$TOOL" close "$name"
	if cli "keyring: open" 0 "" "$TOOL" open --key-file pw1 a.qcow2 "$name"; then
		tap_check "keyring: dmsetup table has no key material" \
			sh -c "! dmsetup table | grep -qi '$hexkey' && dmsetup table $name | grep -q ':64:logon:vhdcrypt:$name 0 1 iv_sector:host'"
		"$TOOL" status --json "$name" >st.json 2>&1
		tap_check "status --json" python3 -c '
import json, sys
s = json.load(open("st.json"))
assert s["type"] == "qcow2" and s["encryption"] == "luks", s
assert s["cipher"] == "aes-xts-plain64" and s["key_size"] == 512, s
assert s["key_location"] == "keyring" and s["iv_sector"] == "host", s
assert s["format"]["version"] == 3 and s["format"]["cluster_size"] == 65536, s
assert s["format"]["virtual_size"] == 16 << 20 and s["sectors"] == 32768, s
assert s["loop_device"].startswith("/dev/loop") and s["read_only"] and not s["discards"], s
assert s["chain"] == [], s
'
		cli "keyring: close" 0 "" "$TOOL" close "$name"
	fi
fi

# 6. encrypted backing chains
SECRETS="--object secret,id=sec0,data=pw-one --object secret,id=sec1,data=pw-two"
mkluks base.qcow2 16M pw-one "" &&
	fill base.qcow2 "driver=qcow2,file.filename=base.qcow2,encrypt.key-secret=sec0" "${PATTERN[@]}"
mkluks top-same.qcow2 16M pw-one "" -b base.qcow2 -F qcow2 &&
	fill top-same.qcow2 "driver=qcow2,file.filename=top-same.qcow2,encrypt.key-secret=sec0,backing.encrypt.key-secret=sec0" \
		-c "write -P 0xee 1056k 8k" -c "write -P 0xdd 0 4k" -c "write -z 9M 4k"
expect_raw top-same.raw "driver=qcow2,file.filename=top-same.qcow2,encrypt.key-secret=sec0,backing.encrypt.key-secret=sec0"
KEEP=1 open_cmp "LUKS over LUKS, one passphrase" top-same.qcow2 top-same.raw --key-file pw1
cli "chain: status shows the lower layer" 0 "layer 1:      $LAST-L1" "$TOOL" status "$LAST"
tap_check "chain: lower layer is hidden but has a node" test -b "/dev/mapper/$LAST-L1"
tap_check "chain: DM UUIDs" sh -c "dmsetup info -c --noheadings -o uuid $LAST-L1 | grep -q '^VHDCRYPT-QCOW2-.*-$LAST-L1\$'"
cli "chain: close" 0 "" "$TOOL" close "$LAST"
tap_check "chain: nothing left behind" nothing_left "$LAST" "$W/top-same.qcow2" "$W/base.qcow2"

mkluks top-diff.qcow2 16M pw-two "" -b base.qcow2 -F qcow2 &&
	fill top-diff.qcow2 "driver=qcow2,file.filename=top-diff.qcow2,encrypt.key-secret=sec1,backing.encrypt.key-secret=sec0" \
		-c "write -P 0xcc 2M 64k"
expect_raw top-diff.raw "driver=qcow2,file.filename=top-diff.qcow2,encrypt.key-secret=sec1,backing.encrypt.key-secret=sec0"
open_cmp "LUKS over LUKS, one passphrase per image on stdin" top-diff.qcow2 top-diff.raw <<<$'pw-two\npw-one'
cli "different passphrases, --key-file: exit 2 naming the base" 2 "no key slot of base.qcow2" \
	"$TOOL" open --key-file pw2 top-diff.qcow2 "$P-diff"
tap_check "failed chain open: nothing left behind" nothing_left "$P-diff" "$W/top-diff.qcow2" "$W/base.qcow2"

qemu-img create -q -f qcow2 plainbase.qcow2 16M
qemu-io -f qcow2 "${PATTERN[@]}" plainbase.qcow2 >/dev/null
mkluks lukstop.qcow2 16M pw-one "" -b plainbase.qcow2 -F qcow2 &&
	fill lukstop.qcow2 "driver=qcow2,file.filename=lukstop.qcow2,encrypt.key-secret=sec0" -c "write -P 0x77 5M 12k"
expect_raw lukstop.raw "driver=qcow2,file.filename=lukstop.qcow2,encrypt.key-secret=sec0"
open_cmp "LUKS over a plain qcow2" lukstop.qcow2 lukstop.raw --key-file pw1

qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 plaintop.qcow2
fill plaintop.qcow2 "driver=qcow2,file.filename=plaintop.qcow2,backing.encrypt.key-secret=sec0" \
	-c "write -P 0x44 3M 8k"
expect_raw plaintop.raw "driver=qcow2,file.filename=plaintop.qcow2,backing.encrypt.key-secret=sec0"
open_cmp "plain qcow2 over LUKS" plaintop.qcow2 plaintop.raw --key-file pw1

qemu-img create -q -f raw base.img 16M
qemu-io -f raw "${PATTERN[@]}" base.img >/dev/null
mkluks overraw.qcow2 16M pw-one "" -b base.img -F raw &&
	fill overraw.qcow2 "driver=qcow2,file.filename=overraw.qcow2,encrypt.key-secret=sec0" -c "write -P 0x99 7M 4k"
expect_raw overraw.raw "driver=qcow2,file.filename=overraw.qcow2,encrypt.key-secret=sec0"
KEEP=1 open_cmp "LUKS over a raw backing file" overraw.qcow2 overraw.raw --key-file pw1
cli "raw backing: status names it" 0 "(raw, /dev/loop" "$TOOL" status "$LAST"
cli "raw backing: close" 0 "" "$TOOL" close "$LAST"
tap_check "raw backing: nothing left behind" nothing_left "$LAST" "$W/overraw.qcow2" "$W/base.img"

# 7. legacy AES (crypt_method 1)
SECRETS="--object secret,id=sec0,data=legacy-pw"
if qemu-img create -q -f qcow2 $SECRETS -o encrypt.format=aes,encrypt.key-secret=sec0 aes.qcow2 16M 2>/dev/null &&
	fill aes.qcow2 "driver=qcow2,file.filename=aes.qcow2,encrypt.key-secret=sec0" "${PATTERN[@]}" &&
	expect_raw aes.raw "driver=qcow2,file.filename=aes.qcow2,encrypt.key-secret=sec0"; then
	printf legacy-pw >lpw
	KEEP=1 open_cmp "legacy AES-CBC qcow2" aes.qcow2 aes.raw --key-file lpw
	cli "legacy AES: status" 0 "encryption:   aes" "$TOOL" status "$LAST"
	cli "legacy AES: close" 0 "" "$TOOL" close "$LAST"
	cli "probe legacy AES" 0 "VHDCRYPT_ENCRYPTION=aes" "$TOOL" probe aes.qcow2
else
	tap_skip "legacy AES-CBC qcow2" "qemu-img cannot create or read encrypt.format=aes"
fi

# 8. probe
cli "probe LUKS qcow2" 0 "VHDCRYPT_ENCRYPTION=luks" "$TOOL" probe a.qcow2
cli "probe LUKS version" 0 "VHDCRYPT_LUKS_VERSION=1" "$TOOL" probe a.qcow2
cli "probe backing" 0 "VHDCRYPT_BACKING=$W/base.qcow2" "$TOOL" probe top-same.qcow2

tap_done
