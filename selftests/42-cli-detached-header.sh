#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=900
#
# Detached LUKS headers: "cryptsetup luksFormat --header" over a raw payload
# file (LUKS1 PBKDF2, LUKS2 PBKDF2 and Argon2id, another cipher, a payload
# offset), data written through "cryptsetup open --header" (dm-crypt), the
# payload turned into a qcow2 (also under an overlay that holds some of the
# encrypted data), a dynamic and a fixed VHD; each opened with
# "vhdcryptsetup open --header" and compared with what dm-crypt showed.
# Also: key slots, passphrase on stdin, a wrong passphrase, a file that is
# not a LUKS header, 4096-byte LUKS2 sectors, a raw payload (not an image).
. "$(dirname "$0")/lib.sh"

need_root
need_cmd cryptsetup qemu-img qemu-io dmsetup losetup cmp blockdev
load_vhdcrypt || skip_all "cannot load dm-vhdcrypt"
modprobe loop 2>/dev/null
modprobe dm_crypt 2>/dev/null || skip_all "no dm-crypt for making the test data"
TOOL=${VHDCRYPT_TOOL:-$VHDCRYPT_SRC/userspace/vhdcryptsetup}
[ -x "$TOOL" ] || skip_all "vhdcryptsetup not built ($TOOL)"
W=$SELFTEST_TMP
cd "$W" || skip_all "no work directory"
P=vch$$

close_quiet() {
	"$TOOL" close "$1" >/dev/null 2>&1
	local n
	for n in "$1" "$1-L1" "$1-L2"; do
		dm_remove "$n" >/dev/null 2>&1
	done
	return 0
}

cli() {
	local _n=$1 _want=$2 _msg=$3 _rc
	shift 3
	"$@" >"$SELFTEST_TMP/.cli" 2>&1
	_rc=$?
	if [ "$_rc" -eq "$_want" ] && { [ -z "$_msg" ] || grep -qF -- "$_msg" "$SELFTEST_TMP/.cli"; }; then
		tap_ok "$_n"
		return 0
	fi
	tap_fail "$_n" "command: $*" "exit status $_rc, wanted $_want${_msg:+ and \"$_msg\"}" \
		"$(cat "$SELFTEST_TMP/.cli")"
	return 1
}

nothing_left() {
	local n=$1 img
	shift
	if dmsetup ls 2>/dev/null | awk '{ print $1 }' | grep -qE "^$n(-L[0-9]+)?$"; then
		echo "dm devices left: $(dmsetup ls)"
		return 1
	fi
	for img; do
		if [ -n "$(losetup -j "$img" 2>/dev/null)" ]; then
			echo "loop device left on $img"
			return 1
		fi
	done
}

printf 'header secret' >pw
printf 'second secret' >pw2

# make_payload TAG FORMAT-ARGS...: payload-TAG.raw with header hdr-TAG, data
# written through dm-crypt (every sector), the plaintext dm-crypt shows in
# plain-TAG.
make_payload() {
	local tag=$1 ref=$P-ref-$1
	shift
	rm -f "hdr-$tag"
	truncate -s 16M "payload-$tag.raw"
	cryptsetup luksFormat -q --header "hdr-$tag" --key-file pw "$@" "payload-$tag.raw" || return 1
	cryptsetup open --header "hdr-$tag" --key-file pw "payload-$tag.raw" "$ref" || return 1
	dm_track "$ref"
	udev_settle
	local dev=/dev/mapper/$ref size
	size=$(blockdev --getsize64 "$dev")
	# Fill all of it: a hole in the container (a qcow2 cluster or VHD block
	# that qemu-img convert leaves unallocated because its ciphertext is
	# zero) reads as zeros through vhdcrypt, while dm-crypt decrypts the
	# zero ciphertext into noise.
	{
		dd if=/dev/urandom of="$dev" bs=1M count=$((size >> 20)) status=none
		printf 'first sector of %s' "$tag" | dd of="$dev" bs=512 conv=notrunc status=none
		head -c 65536 /dev/urandom | dd of="$dev" bs=512 seek=2048 conv=notrunc status=none
		head -c 8192 /dev/urandom | dd of="$dev" bs=512 seek=7001 conv=notrunc status=none
		printf 'last sector' | dd of="$dev" bs=512 seek=$((size / 512 - 1)) conv=notrunc status=none
		sync
	} || return 1
	dd if="$dev" of="plain-$tag" bs=1M status=none || return 1
	cryptsetup close "$ref"
}

# check_open TEST IMAGE PLAIN OPEN-ARGS...: open with the header, compare, close.
check_open() {
	local _t=$1 img=$2 plain=$3 name=$P-$RANDOM
	shift 3
	at_exit close_quiet "$name"
	cli "$_t: open" 0 "" "$TOOL" open "$@" "$img" "$name" || return 1
	tap_check "$_t: size as dm-crypt" \
		test "$(blockdev --getsize64 "/dev/mapper/$name")" = "$(stat -c %s "$plain")"
	tap_check "$_t: same plaintext as cryptsetup open --header" cmp "/dev/mapper/$name" "$plain"
	LAST=$name
	if [ -z "${KEEP:-}" ]; then
		cli "$_t: close" 0 "" "$TOOL" close "$name"
		tap_check "$_t: nothing left behind" nothing_left "$name" "$W/$img"
	fi
}

# variant TAG FORMAT-ARGS...: payload, then qcow2 and VHD containers.
variant() {
	local tag=$1
	shift
	if ! make_payload "$tag" "$@"; then
		tap_fail "$tag: cryptsetup luksFormat --header / open / write"
		return 1
	fi
	qemu-img convert -f raw -O qcow2 "payload-$tag.raw" "p-$tag.qcow2"
	check_open "$tag, qcow2 payload" "p-$tag.qcow2" "plain-$tag" --header "hdr-$tag" --key-file pw
	qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "payload-$tag.raw" "p-$tag.vhd"
	check_open "$tag, dynamic VHD payload" "p-$tag.vhd" "plain-$tag" --header "hdr-$tag" --key-file pw
}

PB2="--pbkdf pbkdf2 --pbkdf-force-iterations 1000"
# shellcheck disable=SC2086
variant luks1 --type luks1 --pbkdf-force-iterations 1000
# shellcheck disable=SC2086
variant luks2-pbkdf2 --type luks2 --sector-size 512 $PB2
variant luks2-argon2id --type luks2 --sector-size 512 --pbkdf argon2id \
	--pbkdf-force-iterations 4 --pbkdf-memory 32 --pbkdf-parallel 1
# shellcheck disable=SC2086
variant luks1-cbc-essiv --type luks1 --cipher aes-cbc-essiv:sha256 --key-size 256 --pbkdf-force-iterations 1000
# shellcheck disable=SC2086
variant luks2-offset --type luks2 --sector-size 512 --offset 2048 $PB2

if [ -f plain-luks1 ]; then
	# fixed VHD
	qemu-img convert -f raw -O vpc -o subformat=fixed,force_size=on payload-luks1.raw pf.vhd
	check_open "luks1, fixed VHD payload" pf.vhd plain-luks1 --header hdr-luks1 --key-file pw

	# a qcow2 overlay holding part of the (encrypted) payload, over a base
	# that holds the rest
	cp payload-luks1.raw payload-mod.raw
	cryptsetup open --header hdr-luks1 --key-file pw payload-mod.raw "$P-mod" && dm_track "$P-mod"
	head -c 131072 /dev/urandom | dd of="/dev/mapper/$P-mod" bs=512 seek=4096 conv=notrunc status=none
	sync
	dd if="/dev/mapper/$P-mod" of=plain-mod bs=1M status=none
	cryptsetup close "$P-mod"
	dd if=payload-mod.raw of=chunk.bin bs=512 skip=4096 count=256 status=none
	qemu-img create -q -f qcow2 -b p-luks1.qcow2 -F qcow2 overlay.qcow2
	qemu-io -f qcow2 -c "write -s chunk.bin 2M 128k" overlay.qcow2 >/dev/null
	KEEP=1 check_open "luks1, qcow2 overlay over the qcow2 payload" overlay.qcow2 plain-mod \
		--header hdr-luks1 --key-file pw
	if [ -n "${LAST:-}" ]; then
		cli "overlay: two layers" 0 "layer 1:      $LAST-L1" "$TOOL" status "$LAST"
		cli "overlay: close" 0 "" "$TOOL" close "$LAST"
		tap_check "overlay: nothing left behind" nothing_left "$LAST" "$W/overlay.qcow2" "$W/p-luks1.qcow2"
	fi

	# key slots and passphrase sources
	cryptsetup luksAddKey -q --header hdr-luks1 --key-file pw --pbkdf-force-iterations 1000 \
		--key-slot 4 payload-luks1.raw pw2
	check_open "second key slot" p-luks1.qcow2 plain-luks1 --header hdr-luks1 --key-file pw2
	check_open "--key-slot 4" p-luks1.qcow2 plain-luks1 --header hdr-luks1 --key-file pw2 --key-slot 4
	cli "--key-slot 0 with slot 4's passphrase: exit 2" 2 "matches the passphrase" \
		"$TOOL" open --header hdr-luks1 --key-file pw2 --key-slot 0 p-luks1.qcow2 "$P-x"
	check_open "passphrase on stdin" p-luks1.qcow2 plain-luks1 --header hdr-luks1 <<<"header secret"
	KEEP=1 check_open "status" p-luks1.qcow2 plain-luks1 --header hdr-luks1 --key-file pw
	if [ -n "${LAST:-}" ]; then
		cli "status: encryption luks-header" 0 "encryption:   luks-header" "$TOOL" status "$LAST"
		tap_check "status: no key in dmsetup table" \
			sh -c "dmsetup table $LAST | grep -q ':64:logon:vhdcrypt:$LAST 0\$'"
		cli "status: close" 0 "" "$TOOL" close "$LAST"
	fi
	cli "wrong passphrase: exit 2" 2 "no key slot of p-luks1.qcow2 matches the passphrase" \
		"$TOOL" open --header hdr-luks1 --key-file /dev/null p-luks1.qcow2 "$P-x"
	tap_check "wrong passphrase: nothing left behind" nothing_left "$P-x" "$W/p-luks1.qcow2"
fi
if [ -f plain-luks2-offset ]; then
	KEEP=1 check_open "payload offset: status" p-luks2-offset.qcow2 plain-luks2-offset \
		--header hdr-luks2-offset --key-file pw
	if [ -n "${LAST:-}" ]; then
		cli "payload offset: status shows it" 0 "offset:       2048 sectors" "$TOOL" status "$LAST"
		cli "payload offset: close" 0 "" "$TOOL" close "$LAST"
	fi
fi

# refusals
head -c 4M /dev/zero >nothdr
cli "header that is not LUKS: exit 4" 4 "holds no LUKS header" \
	"$TOOL" open --header nothdr --key-file pw p-luks1.qcow2 "$P-x"
cli "missing header file: exit 4" 4 "cannot open the LUKS header" \
	"$TOOL" open --header nonexistent --key-file pw p-luks1.qcow2 "$P-x"
cli "raw payload is not an image: exit 4" 4 "is not a VHD or qcow2 image" \
	"$TOOL" open --header hdr-luks1 --key-file pw payload-luks1.raw "$P-x"
rm -f hdr-4k
truncate -s 16M payload-4k.raw
# shellcheck disable=SC2086
if cryptsetup luksFormat -q --type luks2 --sector-size 4096 --header hdr-4k --key-file pw $PB2 payload-4k.raw; then
	qemu-img convert -f raw -O qcow2 payload-4k.raw p-4k.qcow2
	cli "LUKS2 with 4096-byte sectors: refused" 1 "uses 4096-byte encryption sectors" \
		"$TOOL" open --header hdr-4k --key-file pw p-4k.qcow2 "$P-x"
fi
tap_check "refusals: nothing left behind" nothing_left "$P-x" "$W/p-luks1.qcow2"

tap_done
