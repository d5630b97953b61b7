#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=1200
# check-kernels=6.12
#
# vhdcryptsetup with the OpenXT fixture images (made by the real OpenXT
# tools): every image and chain opened through --key-dir and through
# TAPDISK3_CRYPTO_KEYDIR / TAPDISK2_CRYPTO_KEYDIR, compared with the expected
# plaintext sha256; the 17 key-lookup cases of the fixture README (wrong key,
# missing key, key file for an image without key hash, 512 before 256, list
# order...) with their message and exit code; --key-file with a raw key;
# status and status --json of a chain; no key in "dmsetup table"; close
# leaves no dm or loop device behind.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-cli.sh"

start_cli_test xz sha256sum python3
FX=${VHDCRYPT_FIXTURES:-$(dirname "$0")/fixtures}/openxt
[ -f "$FX/expected.sha256" ] || skip_all "no OpenXT fixtures in $FX"
unset TAPDISK2_CRYPTO_KEYDIR TAPDISK3_CRYPTO_KEYDIR VHDCRYPT_DEBUG

# All images in one directory (children find their parents through the
# relative locators "./parent.vhd", "./child-inherit.vhd").
W=$SELFTEST_TMP/openxt
mkdir -p "$W"
for f in "$FX"/*.vhd.xz; do
	b=$(basename "$f" .xz)
	# shellcheck disable=SC2216 # cp reads /dev/stdin
	xz -dc "$f" | cp --sparse=always /dev/stdin "$W/$b" || skip_all "cannot decompress $f"
done
cp -r "$FX"/keys* "$W/"
cd "$W" || skip_all "no work directory"

P=vcx$$		# device name prefix

# expected IMAGE: sha256 of the whole decrypted disk from expected.sha256.
expected() {
	awk -v i="$1" '$1 == i && $2 == 0 { print $4; exit }' "$FX/expected.sha256"
}

# open_compare TESTNAME IMAGE EXPECTED_LAYERS OPEN-ARGS... (env via "env X=Y" prefix in $ENVPREFIX)
open_compare() {
	local _t=$1 img=$2 layers=$3 name=$P-$RANDOM got want
	shift 3
	at_exit close_quiet "$name"
	if ! cli "$_t: open" 0 "" ${ENVPREFIX:-} "$TOOL" open "$@" "$img" "$name"; then
		return 1
	fi
	tap_check "$_t: /dev/mapper node exists" test -b "/dev/mapper/$name"
	want=$(expected "$img")
	got=$(sha256_dev "/dev/mapper/$name")
	tap_check "$_t: plaintext sha256 ($got)" test "$got" = "$want"
	tap_check "$_t: $layers layer(s)" test "$(dmsetup ls | awk '{ print $1 }' |
		grep -cE "^$name(-L[0-9]+)?$")" -eq "$layers"
	tap_check "$_t: read-only" test "$(blockdev --getro "/dev/mapper/$name")" = 1
	cli "$_t: close" 0 "" "$TOOL" close "$name"
	tap_check "$_t: nothing left behind" nothing_left "$name" "$W/$img"
}

# 1. every image and chain through --key-dir
open_compare "plain.vhd" plain.vhd 1 --key-dir keys
for i in aes256xts aes256xts-nonce aes128xts aes128xts-nonce parent; do
	open_compare "$i.vhd" "$i.vhd" 1 --key-dir keys
done
open_compare "child-own.vhd (own AES-128 key over AES-256 parent)" child-own.vhd 2 --key-dir keys
open_compare "child-inherit.vhd (inherits the parent's key)" child-inherit.vhd 2 --key-dir keys
open_compare "grandchild.vhd (three layers)" grandchild.vhd 3 --key-dir keys

# 2. the environment variables and the key-file
ENVPREFIX="env TAPDISK3_CRYPTO_KEYDIR=keys" open_compare "TAPDISK3_CRYPTO_KEYDIR" child-own.vhd 2
ENVPREFIX="env TAPDISK2_CRYPTO_KEYDIR=keys-noparent,keys" \
	open_compare "TAPDISK2_CRYPTO_KEYDIR list" grandchild.vhd 3
ENVPREFIX="env TAPDISK3_CRYPTO_KEYDIR=keys TAPDISK2_CRYPTO_KEYDIR=keys-wrong" \
	open_compare "TAPDISK3 before TAPDISK2" aes256xts.vhd 1
open_compare "--key-file raw key of the top image" child-own.vhd 2 \
	--key-file keys/child-own,aes-xts-plain,256.key --key-dir keys
open_compare "--disable-keyring" aes128xts.vhd 1 --key-dir keys --disable-keyring

# 3. big.vhd: 2039 GiB, ranges only
name=$P-big
at_exit close_quiet "$name"
if cli "big.vhd: open" 0 "" "$TOOL" open --key-dir keys big.vhd "$name"; then
	tap_check "big.vhd: size 4276092928 sectors" \
		test "$(blockdev --getsz "/dev/mapper/$name")" = 4276092928
	while read -r img first count sum; do
		[ "$img" = big.vhd ] || continue
		got=$(dd if="/dev/mapper/$name" bs=512 skip="$first" count="$count" iflag=direct \
			status=none | sha256sum | cut -d' ' -f1)
		tap_check "big.vhd: sectors $first+$count" test "$got" = "$sum"
	done < <(grep -v '^#' "$FX/expected.sha256")
	cli "big.vhd: close" 0 "" "$TOOL" close "$name"
fi

# 4. the negative cases of the fixture README (legacy list semantics)
# neg NR IMAGE KEYDIR(or -) RC MESSAGE [ENV...]
neg() {
	local nr=$1 img=$2 kd=$3 rc=$4 msg=$5 name=$P-n$1
	shift 5
	at_exit close_quiet "$name"
	if [ "$kd" = - ]; then
		cli "case $nr: $img, ${*:-no key dir}: exit $rc" "$rc" "$msg" \
			env -u TAPDISK2_CRYPTO_KEYDIR -u TAPDISK3_CRYPTO_KEYDIR "$@" \
			"$TOOL" open "$img" "$name"
	else
		cli "case $nr: $img, --key-dir $kd: exit $rc" "$rc" "$msg" \
			"$TOOL" open --key-dir "$kd" "$img" "$name"
	fi
	if [ "$rc" -eq 0 ]; then
		"$TOOL" close "$name" >/dev/null 2>&1
	fi
	tap_check "case $nr: nothing left behind" nothing_left "$name" "$W/$img"
}
neg 1 aes256xts.vhd keys-wrong 2 "does not match the key hash of aes256xts.vhd (wrong key)"
neg 2 plain.vhd keys-unkeyed 2 "found for plain.vhd, but that image has no key hash"
neg 3 aes128xts.vhd keys-prefer512 2 "keys-prefer512/aes128xts,aes-xts-plain,512.key does not match"
neg 4 aes256xts.vhd keys-unkeyed 2 "aes256xts.vhd is encrypted, but no usable key file"
neg 5 child-inherit.vhd keys-inherit-keyfile 2 "child-inherit.vhd, but that image has no key hash"
neg 6 grandchild.vhd keys-inherit-keyfile 2 "child-inherit.vhd, but that image has no key hash"
neg 7 parent.vhd keys-inherit-keyfile 0 ""
neg 8 grandchild.vhd keys-noparent 2 "parent.vhd is encrypted, but no usable key file"
neg 9 child-own.vhd keys-noparent 2 "parent.vhd is encrypted, but no usable key file"
neg 10 aes256xts-nonce.vhd keys-truncated 2 "holds 63 bytes, not 64"
neg 11 aes128xts-nonce.vhd keys-trailing-newline 0 ""
neg 12 aes256xts.vhd - 2 "/config/platform-crypto-keys"
neg 13 plain.vhd - 0 ""
neg 14 aes256xts.vhd keys-wrong,keys 2 "(wrong key)"
neg 15 aes256xts.vhd keys,keys-wrong 0 ""
neg 16 aes256xts.vhd - 2 "(wrong key)" TAPDISK3_CRYPTO_KEYDIR=keys-unkeyed,keys-wrong,keys
neg 17 plain.vhd keys 0 ""
neg 18 aes256xts.vhd - 2 "(wrong key)" TAPDISK2_CRYPTO_KEYDIR=keys-wrong
cli "case 19: --key-file wrong raw key: exit 2" 2 "(wrong key)" \
	"$TOOL" open --key-file keys-wrong/aes256xts,aes-xts-plain,512.key aes256xts.vhd "$P-n19"
cli "case 20: --key-file for an image without key hash: exit 2" 2 "has no key hash" \
	"$TOOL" open --key-file keys-unkeyed/plain,aes-xts-plain,512.key plain.vhd "$P-n20"

# 5. status of a chain, key material
name=$P-st
at_exit close_quiet "$name"
if cli "status: open grandchild" 0 "" "$TOOL" open --key-dir keys grandchild.vhd "$name"; then
	cli "status: text" 0 "chain:        2 lower layers" "$TOOL" status "$name"
	cli "status: key location" 0 "key location: keyring" "$TOOL" status "$name"
	"$TOOL" status --json "$name" >"$SELFTEST_TMP/st.json" 2>&1
	check_json() {
		python3 - "$SELFTEST_TMP/st.json" "$W" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
w = sys.argv[2]
assert s["type"] == "vhd" and s["encryption"] == "openxt", s
assert s["cipher"] == "aes-xts-plain" and s["key_size"] == 256, s
assert s["key_location"] == "keyring" and s["read_only"] is True, s
assert s["image"] == w + "/grandchild.vhd", s["image"]
assert s["loop_device"].startswith("/dev/loop"), s
assert s["format"]["disk_type"] == "differencing" and s["format"]["virtual_size"] == 83886080, s
assert s["dm_uuid"].startswith("VHDCRYPT-VHD-1d06c1bf-a506-40df-9c54-219f8013ca19-"), s
c = s["chain"]
assert len(c) == 2, c
assert c[0]["image"].endswith("child-inherit.vhd") and c[0]["key_size"] == 512, c[0]
assert c[1]["image"].endswith("parent.vhd") and c[1]["format"]["disk_type"] == "dynamic", c[1]
assert c[0]["dm_uuid"].endswith("-L1") and c[1]["dm_uuid"].endswith("-L2"), c
print("json ok")
EOF
	}
	tap_check "status --json: fields and chain" check_json
	no_key_in_table() {
		local k t
		t=$(dmsetup table)
		for k in keys/grandchild,aes-xts-plain,256.key keys/parent,aes-xts-plain,512.key; do
			k=$(od -An -tx1 "$k" | tr -d ' \n')
			if printf '%s' "$t" | grep -qi "${k:0:32}"; then
				echo "key of $k in dmsetup table"
				return 1
			fi
		done
		printf '%s\n' "$t" | grep -q ":32:logon:vhdcrypt:$name " || return 1
		printf '%s\n' "$t"
	}
	tap_check "dmsetup table holds no key material, only keyring references" no_key_in_table
	tap_check "lower layers have /dev/mapper nodes" test -b "/dev/mapper/$name-L2"
	tap_check "logon keys are not left in the keyring" \
		sh -c "! grep -q 'vhdcrypt:$name' /proc/keys"
	cli "opening the same image twice: exit 5" 5 "already in use" \
		"$TOOL" open --key-dir keys grandchild.vhd "$P-twice"
	cli "status of a lower layer name works" 0 "type:         vhd" "$TOOL" status "$name-L1"
	cli "close" 0 "" "$TOOL" close "$name"
	tap_check "close removed every layer and loop device" nothing_left "$name" \
		"$W/grandchild.vhd" "$W/child-inherit.vhd" "$W/parent.vhd"
fi

tap_done
