#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=900
# check-kernels=6.1
#
# vhdcryptsetup create, in the kernel: every kind of image it makes (qcow2
# with LUKS1 and several ciphers, cluster sizes, an overlay, a detached LUKS2
# or LUKS1 header; dynamic, keyed, differencing and fixed VHDs; a qcow2 on a
# block device) gets data written through a writable vhdcrypt table, is
# checked by qemu-img (qcow2, with the passphrase) or by vhdcheck (VHD, with
# the key file create wrote), and opened by the tool itself, which must show
# the same data. Where open maps read-write, data written through it must
# read back after a reopen and in QEMU. The key slot commands are seen by the
# tool's open: a removed or erased passphrase no longer opens the image.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-cli.sh"
. "$(dirname "$0")/lib-img.sh"

start_cli_test qemu-img qemu-io cmp python3 cryptsetup
VHDCHECK=$VHDCRYPT_SRC/selftests/tools/vhdcheck
W=$SELFTEST_TMP
cd "$W" || skip_all "no work directory"
P=vcc$$
printf pw-one >pw1
printf pw-two >pw2
mkdir keys

sec() { echo "secret,id=s,data=$1"; }
iopts() { echo "driver=qcow2,file.filename=$1,encrypt.key-secret=s"; }

# hexkey_of_header HEADER: the volume key of a detached header (passphrase pw1).
hexkey_of_header() {
	cryptsetup luksDump --dump-master-key --batch-mode --key-file pw1 "$1" |
		sed -n '/^MK dump:/,/^[^[:space:]]/{s/^MK dump://;/^[^[:space:]]/d;p}' | tr -d ' \t\n'
}

# write_through IMAGE SECTORS FMT CIPHER KEY OPTS...: write three patterns
# through a writable vhdcrypt table over IMAGE (grown first, as open does) and
# into IMAGE.expect (the plaintext the image must show afterwards).
write_through() {
	local img=$1 sectors=$2 fmt=$3 cipher=$4 key=$5 dev name=$P-w size grown
	local t=$W/${1##*/} exp=${EXP:-$W/${1##*/}.expect}
	shift 5
	size=$(stat -c %s "$img")
	grown=$((size + sectors * 512 + (8 << 20)))
	if [ -b "$img" ]; then
		:	# a device has its size
	elif [ "$fmt" != vhd ]; then
		truncate -s $grown "$img"
	elif [ "$(be "$img" $((size - 512 + 60)) 4)" != 2 ]; then	# not fixed: footer stays last
		truncate -s $grown "$img"
		dd if="$img" bs=512 skip=$((size / 512 - 1)) count=1 status=none |
			dd of="$img" bs=512 seek=$((grown / 512 - 1)) conv=notrunc status=none
	fi
	dev=$(new_loop "$img") || return 1
	dm_create "$name" "0 $sectors vhdcrypt $fmt $dev $cipher $key 0${*:+ $# $*}" || return 1
	# Unwritten sectors read as zeros, but under a detached header (whole_disk)
	# as the zeros of the image decrypted, as cryptsetup's payloads do.
	if [ -e "$exp" ]; then
		:
	elif [[ " $* " == *" whole_disk "* ]]; then
		dd if="/dev/mapper/$name" of="$exp" bs=1M status=none || return 1
	else
		truncate -s $((sectors * 512)) "$exp"
	fi
	{
		printf 'first sector of %s' "$img"
		head -c 130560 /dev/urandom
	} >"$t.p1"
	head -c 70000 /dev/urandom >"$t.p2"
	printf 'last sector of %s' "$img" >"$t.p3"
	for f in "p1 0" "p2 3001" "p3 $((sectors - 1))"; do
		dd if="$t.${f% *}" of="/dev/mapper/$name" bs=512 seek="${f#* }" conv=notrunc,fsync status=none &&
			dd if="$t.${f% *}" of="$exp" bs=512 seek="${f#* }" conv=notrunc status=none ||
			return 1
	done
	dm_remove "$name" && losetup -d "$dev"
}

# check_qemu IMAGE PASS: qemu-img check clean and QEMU's plaintext is IMAGE.expect.
check_qemu() {
	local args=(-f qcow2 "$1")
	[ -n "$2" ] && args=(--object "$(sec "$2")" --image-opts "$(iopts "$1")")
	qemu-img check -q "${args[@]}" && qemu-img convert "${args[@]}" -O raw "$1.qemu.raw" &&
		cmp "$1.qemu.raw" "$1.expect"
}

# check_vhd IMAGE DECODE-ARGS...: vhdcheck finds no damage and decodes IMAGE.expect.
check_vhd() {
	local img=$1
	shift
	"$VHDCHECK" check "$img" && "$VHDCHECK" decode "$img" "$@" -o "$img.vhd.raw" &&
		cmp "$img.vhd.raw" "$img.expect"
}

# open_rw TEST IMAGE OPEN-ARGS...: open shows IMAGE.expect; where it maps
# read-write, a write through it reads back after a reopen (IMAGE.expect
# follows, for the QEMU or vhdcheck check after it).
open_rw() {
	local t=$1 img=$2 name=$P-o
	shift 2
	open_cmp "$t" "$img" "$img.expect" "$@"
	at_exit close_quiet "$name"
	"$TOOL" open "$@" "$img" "$name" || { tap_fail "$t: open read-write"; return 1; }
	if [ "$(blockdev --getro "/dev/mapper/$name")" != 0 ]; then
		"$TOOL" close "$name"
		tap_skip "$t: write through open, reopen" "open maps read-only in this build"
		return 0
	fi
	head -c 65536 /dev/urandom >"$img.p4"
	dd if="$img.p4" of="/dev/mapper/$name" bs=512 seek=5000 conv=notrunc,fsync status=none
	dd if="$img.p4" of="$img.expect" bs=512 seek=5000 conv=notrunc status=none
	"$TOOL" close "$name"
	KEEP='' open_cmp "$t: written through open, reopened" "$img" "$img.expect" "$@"
}

# --- qcow2 with LUKS1 inside
# qcow2_case TAG SIZE CREATE-ARGS...: create, write, QEMU's check, open.
qcow2_case() {
	local tag=$1 size=$2 img=$1.qcow2 ck
	shift 2
	cli "$tag: create" 0 "" "$TOOL" create --type qcow2 --size "$size" --key-file pw1 \
		--iter-time 10 "$@" "$img" || return
	ck=$(luks_key "$img" pw-one) || { tap_fail "$tag: volume key"; return; }
	tap_check "$tag: written through a vhdcrypt table" write_through "$img" $(($(qemu_size -f qcow2 "$img") / 512)) \
		qcow2 "${ck% *}" "${ck#* }" iv_sector:host
	tap_check "$tag: qemu-img check and QEMU's data" check_qemu "$img" pw-one
	open_rw "$tag" "$img" --key-file pw1
	tap_check "$tag: qemu-img after the writes through open" check_qemu "$img" pw-one
}
qcow2_case q-default 16M
qcow2_case q-cbc-4k 16M --cipher aes-cbc-essiv:sha256 --key-size 256 --cluster-size 4k
# The other ciphers in make check-full only (the host tests compare what
# create makes of them with qemu-img's images).
if [ "${VHDCRYPT_CHECK_SPLIT:-0}" = 1 ]; then
	tap_skip "q-serpent, q-twofish-2m" "make check-full runs them"
else
	qcow2_case q-serpent 16M --cipher serpent-xts-plain64 --cluster-size 512
	qcow2_case q-twofish-2m 16M --cipher twofish-xts-plain64 --cluster-size 2M
fi

# an overlay with its own passphrase over a plain base QEMU wrote
"$TOOL" create --type qcow2 --size 16M base.qcow2
qemu-io -f qcow2 base.qcow2 -c "write -P 0x21 0 16M" >/dev/null
cli "overlay: create --backing" 0 "" "$TOOL" create --type qcow2 --backing base.qcow2 \
	--key-file pw1 --iter-time 10 ov.qcow2
qemu-img convert --object "$(sec pw-one)" --image-opts "$(iopts ov.qcow2)" -O raw ov.qcow2.expect
ck=$(luks_key ov.qcow2 pw-one)
bdev=$(new_loop base.qcow2 --ro)
dm_create "$P-base" "0 32768 vhdcrypt qcow2 $bdev none - 0" --readonly
tap_check "overlay: written through a vhdcrypt table" write_through ov.qcow2 32768 qcow2 \
	"${ck% *}" "${ck#* }" iv_sector:host "backing:/dev/mapper/$P-base"
dm_remove "$P-base"
tap_check "overlay: qemu-img check and QEMU's data" check_qemu ov.qcow2 pw-one
open_rw "overlay" ov.qcow2 --key-file pw1

# --- detached headers
cli "qcow2 + LUKS2 header: create" 0 "" "$TOOL" create --type qcow2 --size 16M --key-file pw1 \
	--iter-time 10 --pbkdf pbkdf2 --header hq.luks hq.qcow2
tap_check "qcow2 + LUKS2 header: written through a whole_disk table" write_through hq.qcow2 32768 \
	qcow2 aes-xts-plain64 "$(hexkey_of_header hq.luks)" whole_disk
tap_check "qcow2 + LUKS2 header: qemu-img check" qemu-img check -q hq.qcow2
open_rw "qcow2 + LUKS2 header" hq.qcow2 --header hq.luks --key-file pw1
cli "VHD + LUKS1 header: create" 0 "" "$TOOL" create --type vhd --size 16M --key-file pw1 \
	--iter-time 10 --luks-type luks1 --header hv.luks hv.vhd
tap_check "VHD + LUKS1 header: written through a whole_disk table" write_through hv.vhd 32768 \
	vhd aes-xts-plain64 "$(hexkey_of_header hv.luks)" whole_disk
tap_check "VHD + LUKS1 header: vhdcheck" "$VHDCHECK" check hv.vhd
open_rw "VHD + LUKS1 header" hv.vhd --header hv.luks --key-file pw1

# --- VHD
# vhd_case TAG CREATE-ARGS...: create with a new key in keys/, write, vhdcheck, open.
vhd_case() {
	local tag=$1 img=$1.vhd kf cipher=aes-xts-plain key
	shift
	cli "$tag: create" 0 "" "$TOOL" create --type vhd "$@" "$img" || return
	kf=$(ls keys/"$tag",aes-xts-plain,*.key 2>/dev/null)
	if [ -n "$kf" ]; then
		key=$(od -An -v -tx1 "$kf" | tr -d ' \n')
	else
		cipher=none key=-
	fi
	tap_check "$tag: written through a vhdcrypt table" write_through "$img" \
		$(($(qemu_size -f vpc "$img") / 512)) vhd "$cipher" "$key"
	tap_check "$tag: vhdcheck, decoded with the key dir" check_vhd "$img" --key-dir keys
	open_rw "$tag" "$img" --key-dir keys
	tap_check "$tag: vhdcheck after the writes through open" check_vhd "$img" --key-dir keys
}
vhd_case v-plain --size 16M
vhd_case v-openxt --size 20M --key-dir keys
vhd_case v-256-nonce --size 20M --key-dir keys --key-size 256 \
	--nonce 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
vhd_case v-fixed --subformat fixed --size 12M
# a differencing VHD with its own key over v-openxt (its data as the parent shows it)
cp v-openxt.vhd.expect v-snap.vhd.expect
cli "v-snap: create --backing" 0 "" "$TOOL" create --type vhd --backing v-openxt.vhd --key-dir keys v-snap.vhd
pdev=$(new_loop v-openxt.vhd --ro)
dm_create "$P-par" "0 40960 vhdcrypt vhd $pdev aes-xts-plain $(od -An -v -tx1 'keys/v-openxt,aes-xts-plain,512.key' | tr -d ' \n') 0" --readonly
tap_check "v-snap: written through a vhdcrypt table" write_through v-snap.vhd 40960 vhd aes-xts-plain \
	"$(od -An -v -tx1 'keys/v-snap,aes-xts-plain,512.key' | tr -d ' \n')" "backing:/dev/mapper/$P-par"
dm_remove "$P-par"
tap_check "v-snap: vhdcheck decodes the chain" check_vhd v-snap.vhd --key-dir keys
open_rw "v-snap" v-snap.vhd --key-dir keys

# --- a qcow2 formatted onto a block device
truncate -s 48M bdev.img
head -c 4M /dev/urandom | dd of=bdev.img conv=notrunc status=none
ldev=$(new_loop bdev.img)
cli "block device: create without confirmation is refused" 1 "--batch-mode" \
	"$TOOL" create --type qcow2 --size 16M --key-file pw1 "$ldev"
cli "block device: create --batch-mode" 0 "" "$TOOL" create --batch-mode --type qcow2 --size 16M \
	--key-file pw1 --iter-time 10 "$ldev"
ck=$(luks_key "$ldev" pw-one)
EXP=$W/bdev.expect tap_check "block device: written through a vhdcrypt table" write_through "$ldev" 32768 \
	qcow2 "${ck% *}" "${ck#* }" iv_sector:host
tap_check "block device: qemu-img check and QEMU's data" sh -c \
	"qemu-img check -q --object '$(sec pw-one)' --image-opts '$(iopts "$ldev")' &&
	 qemu-img convert --object '$(sec pw-one)' --image-opts '$(iopts "$ldev")' -O raw bdev.raw &&
	 cmp bdev.raw bdev.expect"
KEEP='' open_cmp "block device" "$ldev" bdev.expect --key-file pw1

# --- key slots as open sees them
"$TOOL" luksAddKey --key-file pw1 --iter-time 10 q-default.qcow2 pw2
open_cmp "luksAddKey: the new passphrase opens it" q-default.qcow2 q-default.qcow2.expect --key-file pw2
"$TOOL" luksRemoveKey --batch-mode q-default.qcow2 pw1
cli "luksRemoveKey: the old passphrase is refused by open" 2 "" \
	"$TOOL" open --key-file pw1 q-default.qcow2 "$P-x"
"$TOOL" erase --batch-mode q-default.qcow2
cli "erase: open refuses every passphrase" 1 "no valid LUKS1 or LUKS2 header" \
	"$TOOL" open --key-file pw2 q-default.qcow2 "$P-x"
"$TOOL" erase --batch-mode --key-dir keys v-openxt.vhd 2>/dev/null
cli "erase of an OpenXT VHD: its key file is refused now" 2 "no key hash" \
	"$TOOL" open --key-dir keys v-openxt.vhd "$P-x"
tap_check "refusals: nothing left behind" nothing_left "$P-x" "$W/q-default.qcow2"

tap_done
