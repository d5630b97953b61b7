#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# vhdcryptsetup command line: usage errors, messages and exit codes, probe
# output, and the tables "open --dry-run" generates (no device-mapper needed;
# the qcow2 LUKS cases need root for a loop device and are skipped otherwise).
cd "$(dirname "$0")/tmp" || { echo "Bail out! tests/tmp missing"; exit 1; }
U=${VHDCRYPT_TOOL:-../../vhdcryptsetup}	# another build: VHDCRYPT_TOOL=/path
n=0 fail=0
QEMU_RETRY=../../../scripts/qemu-retry	# QEMU's PBKDF2 timing fails now and then

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

# options: one message that says what is wrong, exit 1
check "missing argument, short option" 1 "option -S needs an argument" $U open plain.vhd x -S
check "missing argument, long option" 1 "option --key-dir needs an argument" $U open plain.vhd x --key-dir
check "unknown long option" 1 "unknown option --frob" $U open --frob plain.vhd x
check "unknown short option" 1 "unknown option -Z" $U open -Z plain.vhd x
check "--json does not apply to open" 1 "option --json does not apply to open" \
	$U open --json --dry-run plain.vhd x
check "--dry-run does not apply to status" 1 "option --dry-run does not apply to status" \
	$U status --dry-run x
check "--key-file does not apply to status" 1 "option --key-file does not apply to status" \
	$U status --key-file x y
check "--key-file does not apply to close" 1 "option --key-file does not apply to close" \
	$U close --key-file x y
check "--key-slot on an image without LUKS" 1 "--key-slot selects a LUKS key slot, but plain.vhd has no LUKS header" \
	$U open --dry-run -S 1 plain.vhd x
check "--keyfile-size without --key-file" 1 "apply to --key-file" \
	$U open --dry-run --keyfile-size 32 plain.vhd x
check "--key-file with --volume-key-file" 1 "either --key-file or --volume-key-file" \
	$U open --dry-run --key-file a --volume-key-file b plain.vhd x
check "--volume-key-file for a VHD without key hash" 2 "found for plain.vhd, but that image has no key hash" \
	$U open --dry-run --volume-key-file keys/aes256xts,aes-xts-plain,512.key plain.vhd x
check "--type raw needs --header" 1 "give --header" $U open --dry-run --type raw plain.vhd x
out=$($U open --dry-run --readonly --allow-discards --key-dir keys plain.vhd x 2>&1 >/dev/null)
n=$((n + 1))
if printf '%s' "$out" | grep -q "^vhdcryptsetup: --allow-discards has no effect"; then
	echo "ok $n - --allow-discards: a warning says it has no effect read-only"
else
	echo "not ok $n - --allow-discards: a warning says it has no effect read-only"
	fail=$((fail + 1))
fi
same "--type vpc is QEMU's name for vhd" "x: 0 196608 vhdcrypt vhd plain.vhd none - 0" \
	$U open --dry-run --type vpc --key-dir keys plain.vhd x

# not an image or damaged: exit 1, as cryptsetup for "not a valid LUKS device"
check "--type mismatch" 1 "is not a qcow2 image" $U open --dry-run --type qcow2 plain.vhd x
echo "not an image" >notimage.bin
truncate -s 1M notimage.bin
check "open non-image" 1 "is not a VHD or qcow2 image" $U open --dry-run notimage.bin x
check "probe non-image" 1 "is not a VHD or qcow2 image" $U probe notimage.bin
head -c 5242880 aes256xts.vhd >trunc5m.vhd
check "probe truncated OpenXT VHD: damaged" 1 "trunc5m.vhd is damaged: VHD block 2 lies outside the file" \
	$U probe trunc5m.vhd
check "open truncated OpenXT VHD: damaged" 1 "trunc5m.vhd is damaged" \
	$U open --dry-run --key-dir keys trunc5m.vhd x

# wrong device: exit 4
check "image missing" 4 "cannot open image" $U open --dry-run nonexistent.vhd x
check "probe directory" 4 "neither a regular file nor a block device" $U probe .
mkdir -p lonely && cp --sparse=always child-own.vhd lonely/
check "missing parent, each path tried once" 4 \
	"parent image of lonely/child-own.vhd not found: tried lonely/parent.vhd; restore" \
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
check "--key-dir that does not exist: said, no advice to use --key-dir" 2 \
	"found in /nonexistent (--key-dir); /nonexistent does not exist; check the --key-dir list" \
	$U open --dry-run --key-dir /nonexistent aes256xts.vhd x
check "short key file: no advice to use --key-dir" 2 \
	"keys-truncated/aes256xts-nonce,aes-xts-plain,512.key was ignored: it holds 63 bytes, not 64; check the --key-dir list" \
	$U open --dry-run --key-dir keys-truncated aes256xts-nonce.vhd x
check "wrong key on stdin names standard input" 2 \
	"the key from standard input does not match the key hash of aes256xts.vhd (wrong key)" \
	sh -c "$U open --dry-run --key-file - aes256xts.vhd x <keys-wrong/aes256xts,aes-xts-plain,512.key"
check "TAPDISK3_CRYPTO_KEYDIR" 2 "(TAPDISK3_CRYPTO_KEYDIR)" \
	env TAPDISK3_CRYPTO_KEYDIR=keys-unkeyed $U open --dry-run aes256xts.vhd x
check "TAPDISK2_CRYPTO_KEYDIR" 0 "" env TAPDISK2_CRYPTO_KEYDIR=nothing,keys $U open --dry-run aes256xts.vhd x
check "--key-file raw key, wrong" 2 "(wrong key)" \
	$U open --dry-run --key-file keys-wrong/aes256xts,aes-xts-plain,512.key aes256xts.vhd x
check "--key-file raw key, short" 1 "holds 63 bytes" \
	$U open --dry-run --key-file keys-truncated/aes256xts-nonce,aes-xts-plain,512.key aes256xts-nonce.vhd x
K33=keys-trailing-newline/aes128xts-nonce,aes-xts-plain,256.key
check "--key-file 33-byte key: says --keyfile-size" 1 "holds 33 bytes; an OpenXT key has exactly 32 or 64 bytes (--keyfile-size" \
	$U open --dry-run --key-file $K33 aes128xts-nonce.vhd x
same "--key-file 33-byte key, --keyfile-size 32: as through --key-dir" \
	"x: 0 180224 vhdcrypt vhd aes128xts-nonce.vhd aes-xts-plain :32:logon:vhdcrypt:x 0" \
	$U open --dry-run --key-file $K33 --keyfile-size 32 aes128xts-nonce.vhd x
same "--key-dir reads the same 33-byte file" \
	"x: 0 180224 vhdcrypt vhd aes128xts-nonce.vhd aes-xts-plain :32:logon:vhdcrypt:x 0" \
	$U open --dry-run --key-dir keys-trailing-newline aes128xts-nonce.vhd x
head -c 7 /dev/urandom >off.key && cat keys/aes256xts,aes-xts-plain,512.key >>off.key && echo >>off.key
same "--keyfile-offset and --keyfile-size" \
	"x: 0 204800 vhdcrypt vhd aes256xts.vhd aes-xts-plain :64:logon:vhdcrypt:x 0" \
	$U open --dry-run --key-file off.key --keyfile-offset 7 --keyfile-size 64 aes256xts.vhd x
same "--volume-key-file: the raw OpenXT key" \
	"x: 0 204800 vhdcrypt vhd aes256xts.vhd aes-xts-plain :64:logon:vhdcrypt:x 0" \
	$U open --dry-run --volume-key-file keys/aes256xts,aes-xts-plain,512.key aes256xts.vhd x

# tables
same "table: plain VHD" "x: 0 196608 vhdcrypt vhd plain.vhd none - 0" \
	$U open --dry-run --key-dir keys plain.vhd x
same "table: OpenXT AES-256" "x: 0 204800 vhdcrypt vhd aes256xts.vhd aes-xts-plain :64:logon:vhdcrypt:x 0" \
	$U open --dry-run --key-dir keys aes256xts.vhd x
same "table: --disable-keyring masks the key" "x: 0 147456 vhdcrypt vhd aes128xts.vhd aes-xts-plain <hex-key-32-bytes> 0" \
	$U open --dry-run --disable-keyring --key-dir keys aes128xts.vhd x
same "table: --key-file raw key" "x: 0 204800 vhdcrypt vhd aes256xts.vhd aes-xts-plain :64:logon:vhdcrypt:x 0" \
	$U open --dry-run --key-file keys/aes256xts,aes-xts-plain,512.key aes256xts.vhd x
same "table: chain (paths without \"./\")" "g-L2: 0 163840 vhdcrypt vhd parent.vhd aes-xts-plain :64:logon:vhdcrypt:g-L2 0
g-L1: 0 163840 vhdcrypt vhd child-inherit.vhd aes-xts-plain :64:logon:vhdcrypt:g-L1 0 1 backing:g-L2
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

# no device-mapper here (or not root): the exit codes cryptsetup gives
if ! dmsetup version >/dev/null 2>&1; then
	check "no device-mapper: open exits 1" 1 "cannot use device-mapper" $U open --key-dir keys plain.vhd x
	check "no device-mapper: status exits 1" 1 "cannot use device-mapper" $U status x
	check "no device-mapper: close exits 4" 4 "cannot use device-mapper" $U close x
else
	n=$((n + 1)); echo "ok $n - # SKIP device-mapper is available (the VM tests check this)"
fi

if command -v qemu-img >/dev/null; then
	mkdir -p cli
	qemu-img create -q -f qcow2 cli/base.qcow2 8M
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 cli/top.qcow2
	qemu-img create -q -f qcow2 -b gone.qcow2 -F qcow2 -u cli/orphan2.qcow2 8M
	qemu-img create -q -f vpc -o force_size=on cli/empty.vhd 8M && head -c 2048 cli/empty.vhd >cli/nofooter.vhd
	check "probe: a VHD without its trailing footer is damaged" 0 "VHDCRYPT_DAMAGED=1" \
		$U probe cli/nofooter.vhd
	check "probe: the damage on stderr" 0 "nofooter.vhd is damaged: the footer at the end of the file is unusable" \
		$U probe cli/nofooter.vhd
	check "open: a warning for the damage" 0 "nofooter.vhd is damaged" $U open --dry-run cli/nofooter.vhd x
	long=cli/a-rather-long-directory-name-for-images/and-another-one-below-it-too
	mkdir -p $long && cp cli/empty.vhd $long/disk.vhd
	same "--dry-run: long paths in full" "x: 0 16384 vhdcrypt vhd $long/disk.vhd none - 0" \
		$U open --dry-run $long/disk.vhd x
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
		check "--volume-key-file for an unencrypted qcow2" 1 "cli/base.qcow2 is not encrypted" \
			$U open --dry-run --volume-key-file cli/hpw cli/base.qcow2 h
		check "--key-dir with --header: refused" 1 "--key-dir cannot be used with --header" \
			$U open --dry-run --key-dir keys --header cli/hdr cli/base.qcow2 h
		check "--key-dir with --header and --key-file: refused" 1 "--key-dir cannot be used with --header" \
			$U open --dry-run --key-dir keys --key-file cli/hpw --header cli/hdr cli/base.qcow2 h
		check "header that is not LUKS: exit 1" 1 "notimage.bin holds no LUKS header" \
			$U open --dry-run --header notimage.bin --key-file cli/hpw cli/base.qcow2 h
		out=$(VHDCRYPT_DEBUG=2 $U open --dry-run --header cli/hdr --key-file cli/hpw cli/base.qcow2 h 2>&1)
		n=$((n + 1))
		if printf '%s\n' "$out" | grep -q "libcryptsetup: " && ! printf '%s\n' "$out" | grep -q '^$'; then
			echo "ok $n - VHDCRYPT_DEBUG=2: no blank lines after libcryptsetup's messages"
		else
			echo "not ok $n - VHDCRYPT_DEBUG=2: no blank lines after libcryptsetup's messages"
			fail=$((fail + 1))
		fi
		# a raw payload: dm-crypt through libcryptsetup
		same "raw payload: a dm-crypt table" \
			"r: 0 16384 crypt aes-xts-plain64 <hex-key-64-bytes> 0 cli/payload.raw 0" \
			$U open --dry-run --header cli/hdr --key-file cli/hpw cli/payload.raw r
		same "raw payload, --type raw, payload offset" \
			"r: 0 14336 crypt aes-xts-plain64 <hex-key-64-bytes> 0 cli/payload.raw 2048" \
			$U open --dry-run --type raw --header cli/hdr-off --key-file cli/hpw cli/payload.raw r
		if rm -f cli/vk && cryptsetup luksDump -q --dump-volume-key --volume-key-file cli/vk --key-file cli/hpw \
			cli/hdr >/dev/null 2>&1; then
			same "--volume-key-file: a LUKS volume key, no passphrase" \
				"h: 0 16384 vhdcrypt qcow2 cli/base.qcow2 aes-xts-plain64 :64:logon:vhdcrypt:h 0 1 whole_disk" \
				sh -c "$U open --dry-run --header cli/hdr --volume-key-file cli/vk cli/base.qcow2 h </dev/null"
			head -c 64 /dev/zero >cli/vk0
			check "--volume-key-file: a wrong LUKS volume key, exit 2" 2 \
				"the volume key file does not hold the volume key of cli/base.qcow2" \
				$U open --dry-run --header cli/hdr --volume-key-file cli/vk0 cli/base.qcow2 h
		else
			n=$((n + 1)); echo "not ok $n - cryptsetup luksDump --dump-volume-key failed"
			fail=$((fail + 1))
		fi
		check "raw payload without --header: not an image" 1 "payload.raw is not a VHD or qcow2 image" \
			$U open --dry-run --key-file cli/hpw cli/payload.raw r
		check "raw payload, wrong passphrase: exit 2" 2 "no key slot of cli/payload.raw matches" \
			$U open --dry-run --header cli/hdr --key-file notimage.bin cli/payload.raw r
		check "--key-file /dev/null: nothing to read, exit 1 (as cryptsetup)" 1 \
			"cannot read key file /dev/null: it is empty" \
			$U open --dry-run --header cli/hdr --key-file /dev/null cli/payload.raw r
		: >cli/empty-pw
		check "--key-file of an empty file: the empty passphrase, exit 2" 2 "matches the passphrase" \
			$U open --dry-run --header cli/hdr --key-file cli/empty-pw cli/payload.raw r
		if rm -f cli/hdr4k cli/hdr1 &&
			cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
				--sector-size 4096 --header cli/hdr4k --key-file cli/hpw cli/payload.raw \
				>/dev/null 2>&1 &&
			cryptsetup luksFormat -q --type luks1 --pbkdf-force-iterations 1000 \
				--header cli/hdr1 --key-file cli/hpw cli/payload.raw >/dev/null 2>&1; then
			same "4096-byte sectors over a qcow2: sector_size:4096" \
				"h: 0 16384 vhdcrypt qcow2 cli/base.qcow2 aes-xts-plain64 :64:logon:vhdcrypt:h 0 2 whole_disk sector_size:4096" \
				$U open --dry-run --header cli/hdr4k --key-file cli/hpw cli/base.qcow2 h
			same "4096-byte sectors over a VHD" \
				"h: 0 16384 vhdcrypt vhd cli/empty.vhd aes-xts-plain64 :64:logon:vhdcrypt:h 0 2 whole_disk sector_size:4096" \
				$U open --dry-run --header cli/hdr4k --key-file cli/hpw cli/empty.vhd h
			same "raw payload, 4096-byte sectors" \
				"r: 0 16384 crypt aes-xts-plain64 <hex-key-64-bytes> 0 cli/payload.raw 0 1 sector_size:4096" \
				$U open --dry-run --header cli/hdr4k --key-file cli/hpw cli/payload.raw r
			same "raw payload, LUKS1" \
				"r: 0 16384 crypt aes-xts-plain64 <hex-key-64-bytes> 0 cli/payload.raw 0" \
				$U open --dry-run --header cli/hdr1 --key-file cli/hpw cli/payload.raw r
			truncate -s 7340544 cli/odd.raw
			check "4096-byte sectors, a disk that is not a multiple of them" 1 \
				"is not a multiple of the 4096-byte encryption sectors" \
				$U open --dry-run --header cli/hdr4k --key-file cli/hpw --type raw cli/odd.raw r
		else
			n=$((n + 1)); echo "not ok $n - cryptsetup luksFormat --sector-size 4096 / luks1 failed"
			fail=$((fail + 1))
		fi
		if command -v python3 >/dev/null; then
			check "Ctrl-C at the prompt: echo restored, exit 1" 0 "echo restored, exit 1" \
				python3 ../ctrl-c.py $U open --dry-run --header cli/hdr cli/base.qcow2 h
		fi
		check "--header over an OpenXT key hash" 1 "child-own.vhd has its own encryption" \
			$U open --dry-run --header cli/hdr --key-file cli/hpw child-own.vhd h
		check "--header over a keyed parent: two encryption layers" 1 \
			"parent.vhd, in the backing chain of child-inherit.vhd, has its own encryption; a detached LUKS header over an encrypted backing image (two encryption layers) is not supported" \
			$U open --dry-run --header cli/hdr --key-file cli/hpw child-inherit.vhd h
		$QEMU_RETRY qemu-img create -q -f qcow2 --object secret,id=s,data=pw \
			-o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 cli/lbase.qcow2 8M
		qemu-img create -q -f qcow2 -b lbase.qcow2 -F qcow2 -u cli/ltop.qcow2 8M
		check "--header over a LUKS qcow2 backing file: two encryption layers" 1 \
			"lbase.qcow2, in the backing chain of cli/ltop.qcow2, has its own encryption" \
			$U open --dry-run --header cli/hdr --key-file cli/hpw cli/ltop.qcow2 h
	else
		n=$((n + 1)); echo "ok $n - # SKIP cryptsetup luksFormat --header on a file failed"
	fi
	if [ "$(id -u)" = 0 ] && [ -e /dev/loop-control ]; then
		$QEMU_RETRY qemu-img create -q -f qcow2 --object secret,id=s,data=pw \
			-o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 cli/luks.qcow2 8M
		printf pw >cli/pw
		same "table: qcow2 LUKS" "l: 0 16384 vhdcrypt qcow2 cli/luks.qcow2 aes-xts-plain64 :64:logon:vhdcrypt:l 0 1 iv_sector:host" \
			$U open --dry-run --key-file cli/pw cli/luks.qcow2 l
		$QEMU_RETRY qemu-img create -q -f qcow2 --object secret,id=s,data=pw \
			-o compat=0.10,encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 \
			cli/luksv2.qcow2 8M
		same "table: qcow2 version 2 with LUKS" "l: 0 16384 vhdcrypt qcow2 cli/luksv2.qcow2 aes-xts-plain64 :64:logon:vhdcrypt:l 0 1 iv_sector:host" \
			$U open --dry-run --key-file cli/pw cli/luksv2.qcow2 l
		check "probe qcow2 version 2 with LUKS" 0 "VHDCRYPT_LUKS_VERSION=1" $U probe cli/luksv2.qcow2
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
	# legacy AES cannot check a passphrase: a warning says so
	if qemu-img create -q -f qcow2 --object secret,id=s,data=pw \
		-o encrypt.format=aes,encrypt.key-secret=s cli/aes.qcow2 8M 2>/dev/null; then
		check "legacy AES: a warning that any passphrase opens it" 0 \
			"cli/aes.qcow2 uses legacy qcow2 AES, which cannot check the passphrase" \
			$U open --dry-run --key-file notimage.bin cli/aes.qcow2 a
		same "legacy AES: the table" "a: 0 16384 vhdcrypt qcow2 cli/aes.qcow2 aes-cbc-plain64 <hex-key-16-bytes> 0" \
			sh -c "$U open --dry-run --disable-keyring --key-file cli/pw cli/aes.qcow2 a 2>/dev/null"
		printf 'pw\0\0\0\0\0\0\0\0\0\0\0\0\0\0' >cli/aes.key
		same "legacy AES: --volume-key-file, the 16-byte key" \
			"a: 0 16384 vhdcrypt qcow2 cli/aes.qcow2 aes-cbc-plain64 :16:logon:vhdcrypt:a 0" \
			sh -c "$U open --dry-run --volume-key-file cli/aes.key cli/aes.qcow2 a 2>/dev/null"
	else
		n=$((n + 1)); echo "ok $n - # SKIP qemu-img cannot make legacy AES images"
	fi
else
	n=$((n + 1)); echo "ok $n - # SKIP qemu-img not installed"
fi

echo "1..$n"
[ $fail -eq 0 ]
