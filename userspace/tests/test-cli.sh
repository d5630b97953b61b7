#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# vhdcryptsetup command line: usage errors, messages and exit codes, probe
# output, and the tables "open --dry-run" generates (no device-mapper needed;
# the qcow2 LUKS cases need root for a loop device and are skipped otherwise).
cd "$(dirname "$0")/tmp" || { echo "Bail out! tests/tmp missing"; exit 1; }
U=../../vhdcryptsetup
n=0 fail=0

check() {	# check NAME WANT_RC MSG_SUBSTRING CMD...
	local name=$1 want=$2 msg=$3 out rc
	shift 3
	out=$("$@" 2>&1)
	rc=$?
	n=$((n + 1))
	if [ "$rc" = "$want" ] && { [ -z "$msg" ] || printf '%s' "$out" | grep -qF -- "$msg"; }; then
		echo "ok $n - $name"
	else
		echo "not ok $n - $name"
		echo "#   rc=$rc (want $want), output:"
		printf '%s\n' "$out" | sed 's/^/#     /'
		fail=$((fail + 1))
	fi
}

# output of "$@" must equal $want
same() {	# same NAME WANT CMD...
	local name=$1 want=$2 out
	shift 2
	out=$("$@" 2>&1)
	n=$((n + 1))
	if [ "$out" = "$want" ]; then
		echo "ok $n - $name"
	else
		echo "not ok $n - $name"
		printf '%s\n' "#   got:" "$out" "#   want:" "$want" | sed 's/^/#     /'
		fail=$((fail + 1))
	fi
}

unset TAPDISK2_CRYPTO_KEYDIR TAPDISK3_CRYPTO_KEYDIR VHDCRYPT_DEBUG

# usage errors: exit 1
check "no arguments" 1 "Usage:" $U
check "--help" 0 "Usage:" $U --help
check "--version" 0 "vhdcryptsetup" $U --version
check "unknown command" 1 "unknown command" $U frobnicate
check "unknown option" 1 "unknown option" $U open --frob plain.vhd x
check "open without name" 1 "needs <image> <name>" $U open plain.vhd
check "bad --type" 1 "unknown --type" $U open --type vmdk plain.vhd x
check "bad --key-slot" 1 "invalid --key-slot" $U open --key-slot x plain.vhd x
check "bad --tries" 1 "invalid --tries" $U open --tries 0 plain.vhd x
check "name with a slash" 1 "contains '/'" $U open --dry-run plain.vhd a/b
check "name with a space" 1 "contains '/'" $U open --dry-run plain.vhd "a b"
check "missing --key-file" 1 "cannot open key file" $U open --dry-run --key-file nonexistent aes256xts.vhd x

# wrong device: exit 4
check "image missing" 4 "cannot open image" $U open --dry-run nonexistent.vhd x
check "--type mismatch" 4 "is not a qcow2 image" $U open --dry-run --type qcow2 plain.vhd x
echo "not an image" >notimage.bin
truncate -s 1M notimage.bin
check "open non-image" 4 "is not a VHD or qcow2 image" $U open --dry-run notimage.bin x
check "probe non-image" 4 "is not a VHD or qcow2 image" $U probe notimage.bin
check "probe directory" 4 "neither a regular file nor a block device" $U probe .
mkdir -p lonely && cp --sparse=always child-own.vhd lonely/
check "missing parent" 4 "parent image of lonely/child-own.vhd not found: tried lonely/./parent.vhd" \
	$U open --dry-run --key-dir keys lonely/child-own.vhd x

# OpenXT negative cases: exit 2
check "wrong key" 2 "does not match the key hash of aes256xts.vhd (wrong key)" \
	$U open --dry-run --key-dir keys-wrong aes256xts.vhd x
check "missing key" 2 "aes256xts.vhd is encrypted, but no usable key file aes256xts,aes-xts-plain,{512,256}.key was found in keys-unkeyed" \
	$U open --dry-run --key-dir keys-unkeyed aes256xts.vhd x
check "key for an image without key hash" 2 "but that image has no key hash" \
	$U open --dry-run --key-dir keys-unkeyed plain.vhd x
check "512 before 256, no fallback" 2 "keys-prefer512/aes128xts,aes-xts-plain,512.key does not match" \
	$U open --dry-run --key-dir keys-prefer512 aes128xts.vhd x
check "missing parent key" 2 "parent.vhd is encrypted" \
	$U open --dry-run --key-dir keys-noparent child-own.vhd x
check "default key dir" 2 "/config/platform-crypto-keys (the default key directory)" \
	$U open --dry-run aes256xts.vhd x
check "TAPDISK3_CRYPTO_KEYDIR" 2 "(TAPDISK3_CRYPTO_KEYDIR)" \
	env TAPDISK3_CRYPTO_KEYDIR=keys-unkeyed $U open --dry-run aes256xts.vhd x
check "TAPDISK2_CRYPTO_KEYDIR" 0 "" env TAPDISK2_CRYPTO_KEYDIR=nothing,keys $U open --dry-run aes256xts.vhd x
check "--key-file raw key, wrong" 2 "(wrong key)" \
	$U open --dry-run --key-file keys-wrong/aes256xts,aes-xts-plain,512.key aes256xts.vhd x
check "--key-file raw key, short" 1 "holds 63 bytes" \
	$U open --dry-run --key-file keys-truncated/aes256xts-nonce,aes-xts-plain,512.key aes256xts-nonce.vhd x

# tables
same "table: plain VHD" "x: 0 196608 vhdcrypt vhd plain.vhd none - 0" \
	$U open --dry-run --key-dir keys plain.vhd x
same "table: OpenXT AES-256" "x: 0 204800 vhdcrypt vhd aes256xts.vhd aes-xts-plain :64:logon:vhdcrypt:x 0" \
	$U open --dry-run --key-dir keys aes256xts.vhd x
same "table: --disable-keyring masks the key" "x: 0 147456 vhdcrypt vhd aes128xts.vhd aes-xts-plain <hex-key-32-bytes> 0" \
	$U open --dry-run --disable-keyring --key-dir keys aes128xts.vhd x
same "table: --key-file raw key" "x: 0 204800 vhdcrypt vhd aes256xts.vhd aes-xts-plain :64:logon:vhdcrypt:x 0" \
	$U open --dry-run --key-file keys/aes256xts,aes-xts-plain,512.key aes256xts.vhd x
same "table: chain" "g-L2: 0 163840 vhdcrypt vhd ./././parent.vhd aes-xts-plain :64:logon:vhdcrypt:g-L2 0
g-L1: 0 163840 vhdcrypt vhd ././child-inherit.vhd aes-xts-plain :64:logon:vhdcrypt:g-L1 0 1 backing:g-L2
g: 0 163840 vhdcrypt vhd grandchild.vhd aes-xts-plain :32:logon:vhdcrypt:g 0 1 backing:g-L1" \
	env TAPDISK3_CRYPTO_KEYDIR=keys $U open --dry-run grandchild.vhd g
out=$(VHDCRYPT_DEBUG=1 $U open --dry-run --disable-keyring --key-dir keys aes256xts.vhd x 2>&1)
n=$((n + 1))
key=$(od -An -tx1 keys/aes256xts,aes-xts-plain,512.key | tr -d ' \n')
if printf '%s' "$out" | grep -q "^# table x: " && ! printf '%s' "$out" | grep -q "${key:0:16}"; then
	echo "ok $n - VHDCRYPT_DEBUG prints the table without key bytes"
else
	echo "not ok $n - VHDCRYPT_DEBUG prints the table without key bytes"
	fail=$((fail + 1))
fi

# probe
same "probe plain.vhd" "VHDCRYPT_TYPE=vhd
VHDCRYPT_VERSION=1.0
VHDCRYPT_VHD_TYPE=dynamic
VHDCRYPT_ENCRYPTION=none
VHDCRYPT_UUID=fd0b0132-0103-4083-986b-b5b145d0583b
VHDCRYPT_VIRTUAL_SIZE=100663296
VHDCRYPT_BLOCK_SIZE=2097152
VHDCRYPT_KEYHASH=0" $U probe plain.vhd
check "probe child-inherit: inherited key" 0 "VHDCRYPT_KEY_INHERITED=1" $U probe child-inherit.vhd
check "probe child-own: backing" 0 "VHDCRYPT_BACKING=$PWD/parent.vhd" $U probe child-own.vhd
check "probe missing parent" 0 "VHDCRYPT_BACKING_FOUND=0" $U probe lonely/child-own.vhd

if command -v qemu-img >/dev/null; then
	mkdir -p cli
	qemu-img create -q -f qcow2 cli/base.qcow2 8M
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 cli/top.qcow2
	qemu-img create -q -f qcow2 -b gone.qcow2 -F qcow2 -u cli/orphan2.qcow2 8M
	check "probe qcow2" 0 "VHDCRYPT_TYPE=qcow2" $U probe cli/top.qcow2
	check "probe qcow2 backing" 0 "VHDCRYPT_BACKING=$PWD/cli/base.qcow2" $U probe cli/top.qcow2
	check "missing backing file" 4 "backing file of cli/orphan2.qcow2 not found: tried cli/gone.qcow2" \
		$U open --dry-run cli/orphan2.qcow2 x
	same "table: plain qcow2 chain" "t-L1: 0 16384 vhdcrypt qcow2 cli/base.qcow2 none - 0
t: 0 16384 vhdcrypt qcow2 cli/top.qcow2 none - 0 1 backing:t-L1" $U open --dry-run cli/top.qcow2 t
	# detached LUKS header: the top layer covers the whole disk, lower layers are plain
	if command -v cryptsetup >/dev/null && printf pw >cli/hpw && truncate -s 8M cli/payload.raw &&
		rm -f cli/hdr cli/hdr-off &&
		cryptsetup luksFormat -q --type luks2 --sector-size 512 --pbkdf pbkdf2 \
			--pbkdf-force-iterations 1000 --header cli/hdr --key-file cli/hpw \
			cli/payload.raw >/dev/null 2>&1 &&
		cryptsetup luksFormat -q --type luks2 --sector-size 512 --pbkdf pbkdf2 \
			--pbkdf-force-iterations 1000 --offset 2048 --header cli/hdr-off \
			--key-file cli/hpw cli/payload.raw >/dev/null 2>&1; then
		same "table: --header" "h: 0 16384 vhdcrypt qcow2 cli/base.qcow2 aes-xts-plain64 :64:logon:vhdcrypt:h 0 1 whole_disk" \
			$U open --dry-run --header cli/hdr --key-file cli/hpw cli/base.qcow2 h
		same "table: --header, payload offset" "h: 0 14336 vhdcrypt qcow2 cli/base.qcow2 aes-xts-plain64 :64:logon:vhdcrypt:h 0 2 whole_disk data_offset:2048" \
			$U open --dry-run --header cli/hdr-off --key-file cli/hpw cli/base.qcow2 h
		same "table: --header over a chain" "h-L1: 0 16384 vhdcrypt qcow2 cli/base.qcow2 none - 0
h: 0 16384 vhdcrypt qcow2 cli/top.qcow2 aes-xts-plain64 :64:logon:vhdcrypt:h 0 2 backing:h-L1 whole_disk" \
			$U open --dry-run --header cli/hdr --key-file cli/hpw cli/top.qcow2 h
		same "table: --header over a chain, payload offset" "h-L1: 0 16384 vhdcrypt qcow2 cli/base.qcow2 none - 0
h: 0 14336 vhdcrypt qcow2 cli/top.qcow2 aes-xts-plain64 <hex-key-64-bytes> 0 3 backing:h-L1 whole_disk data_offset:2048" \
			$U open --dry-run --disable-keyring --header cli/hdr-off --key-file cli/hpw cli/top.qcow2 h
		check "--header over an OpenXT key hash" 1 "child-own.vhd has its own encryption" \
			$U open --dry-run --header cli/hdr --key-file cli/hpw child-own.vhd h
		check "--header over a keyed parent: two encryption layers" 1 \
			"parent.vhd, in the backing chain of child-inherit.vhd, has its own encryption; a detached LUKS header over an encrypted backing image (two encryption layers) is not supported" \
			$U open --dry-run --header cli/hdr --key-file cli/hpw child-inherit.vhd h
		for i in 1 2 3 4 5; do	# QEMU's PBKDF2 timing fails now and then: retry
			qemu-img create -q -f qcow2 --object secret,id=s,data=pw \
				-o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 \
				cli/lbase.qcow2 8M 2>/dev/null && break
		done
		qemu-img create -q -f qcow2 -b lbase.qcow2 -F qcow2 -u cli/ltop.qcow2 8M
		check "--header over a LUKS qcow2 backing file: two encryption layers" 1 \
			"lbase.qcow2, in the backing chain of cli/ltop.qcow2, has its own encryption" \
			$U open --dry-run --header cli/hdr --key-file cli/hpw cli/ltop.qcow2 h
	else
		n=$((n + 1)); echo "ok $n - # SKIP cryptsetup luksFormat --header on a file failed"
	fi
	if [ "$(id -u)" = 0 ] && [ -e /dev/loop-control ]; then
		for i in 1 2 3 4 5; do	# QEMU's PBKDF2 timing fails now and then: retry
			qemu-img create -q -f qcow2 --object secret,id=s,data=pw \
				-o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 \
				cli/luks.qcow2 8M 2>/dev/null && break
		done
		printf pw >cli/pw
		same "table: qcow2 LUKS" "l: 0 16384 vhdcrypt qcow2 cli/luks.qcow2 aes-xts-plain64 :64:logon:vhdcrypt:l 0 1 iv_sector:host" \
			$U open --dry-run --key-file cli/pw cli/luks.qcow2 l
		check "passphrase on stdin" 0 "iv_sector:host" sh -c "echo pw | $U open --dry-run cli/luks.qcow2 l"
		check "one passphrase per stdin line" 0 "iv_sector:host" \
			sh -c "printf 'wrong\\npw\\n' | $U open --dry-run cli/luks.qcow2 l"
		check "empty stdin" 1 "standard input is empty" sh -c "$U open --dry-run cli/luks.qcow2 l </dev/null"
		check "--key-file -" 0 "iv_sector:host" sh -c "printf pw | $U open --dry-run --key-file - cli/luks.qcow2 l"
		check "wrong passphrase" 2 "no key slot of cli/luks.qcow2 matches the passphrase" \
			sh -c "printf nope | $U open --dry-run --key-file - cli/luks.qcow2 l"
		check "wrong key slot" 1 "key slot 3 of cli/luks.qcow2 is not in use" \
			$U open --dry-run --key-file cli/pw --key-slot 3 cli/luks.qcow2 l
		check "no loop device left" 0 "" sh -c "! losetup -j cli/luks.qcow2 | grep -q ."
	else
		n=$((n + 1)); echo "ok $n - # SKIP qcow2 LUKS needs root and loop devices"
	fi
else
	n=$((n + 1)); echo "ok $n - # SKIP qemu-img not installed"
fi

echo "1..$n"
[ $fail -eq 0 ]
