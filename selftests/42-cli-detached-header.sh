#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=900
# check-kernels=6.12
#
# Detached LUKS headers: "cryptsetup luksFormat --header" over a raw payload
# file (LUKS1 PBKDF2, LUKS2 PBKDF2 and Argon2id, another cipher, a payload
# offset), data written through "cryptsetup open --header" (dm-crypt), the
# payload turned into a qcow2 (also under an overlay that holds some of the
# encrypted data), a dynamic and a fixed VHD; each opened with
# "vhdcryptsetup open --header" and compared with what dm-crypt showed.
# Also: key slots, passphrase on stdin, a wrong passphrase, a file that is
# not a LUKS header. (Raw payloads and 4096-byte sectors: 44-cli-images.sh.)
#
# Holes: a detached header encrypts the whole virtual disk (whole_disk in the
# table), so sparse images (a qcow2 with unallocated and zero clusters, a
# dynamic VHD with unallocated blocks and partly written blocks, a qcow2
# overlay over a plain qcow2 or raw base) must read as "cryptsetup open
# --header" shows them over the plain vhdcrypt mapping of the same image or
# chain, with and without a payload offset.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-cli.sh"

start_cli_test cryptsetup qemu-img qemu-io cmp
modprobe dm_crypt 2>/dev/null || skip_all "no dm-crypt for making the test data"
W=$SELFTEST_TMP
cd "$W" || skip_all "no work directory"
P=vch$$

printf 'header secret' >pw
printf 'second secret' >pw2
printf 'wrong' >wrongpw

# variant TAG FORMAT-ARGS...: payload, then qcow2 and VHD containers.
variant() {
	local tag=$1
	shift
	if ! luks_payload "$tag" "$@"; then
		tap_fail "$tag: cryptsetup luksFormat --header / open / write"
		return 1
	fi
	qemu-img convert -f raw -O qcow2 "payload-$tag.raw" "p-$tag.qcow2"
	open_cmp "$tag, qcow2 payload" "p-$tag.qcow2" "plain-$tag" --header "hdr-$tag" --key-file pw
	qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "payload-$tag.raw" "p-$tag.vhd"
	open_cmp "$tag, dynamic VHD payload" "p-$tag.vhd" "plain-$tag" --header "hdr-$tag" --key-file pw
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
	open_cmp "luks1, fixed VHD payload" pf.vhd plain-luks1 --header hdr-luks1 --key-file pw

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
	KEEP=1 open_cmp "luks1, qcow2 overlay over the qcow2 payload" overlay.qcow2 plain-mod \
		--header hdr-luks1 --key-file pw
	if [ -n "${LAST:-}" ]; then
		cli "overlay: two layers" 0 "layer 1:      $LAST-L1" "$TOOL" status "$LAST"
		cli "overlay: close" 0 "" "$TOOL" close "$LAST"
		tap_check "overlay: nothing left behind" nothing_left "$LAST" "$W/overlay.qcow2" "$W/p-luks1.qcow2"
	fi

	# key slots and passphrase sources
	cryptsetup luksAddKey -q --header hdr-luks1 --key-file pw --pbkdf-force-iterations 1000 \
		--key-slot 4 payload-luks1.raw pw2
	open_cmp "second key slot" p-luks1.qcow2 plain-luks1 --header hdr-luks1 --key-file pw2
	open_cmp "--key-slot 4" p-luks1.qcow2 plain-luks1 --header hdr-luks1 --key-file pw2 --key-slot 4
	cli "--key-slot 0 with slot 4's passphrase: exit 2" 2 "matches the passphrase" \
		"$TOOL" open --header hdr-luks1 --key-file wrongpw p-luks1.qcow2 "$P-x"
	open_cmp "passphrase on stdin" p-luks1.qcow2 plain-luks1 --header hdr-luks1 <<<"header secret"
	KEEP=1 open_cmp "status" p-luks1.qcow2 plain-luks1 --header hdr-luks1 --key-file pw
	if [ -n "${LAST:-}" ]; then
		cli "status: encryption luks-header" 0 "encryption:   luks-header" "$TOOL" status "$LAST"
		tap_check "status: no key in dmsetup table" \
			sh -c "dmsetup table $LAST | grep -q ':64:logon:vhdcrypt:$LAST 0 1 whole_disk\$'"
		cli "status: cipher covers the whole disk" 0 "cipher covers: whole disk" \
			"$TOOL" status "$LAST"
		cli "status: close" 0 "" "$TOOL" close "$LAST"
	fi
	cli "wrong passphrase: exit 2" 2 "no key slot of p-luks1.qcow2 matches the passphrase" \
		"$TOOL" open --header hdr-luks1 --key-file wrongpw p-luks1.qcow2 "$P-x"
	tap_check "wrong passphrase: nothing left behind" nothing_left "$P-x" "$W/p-luks1.qcow2"
fi
if [ -f plain-luks2-offset ]; then
	KEEP=1 open_cmp "payload offset: status" p-luks2-offset.qcow2 plain-luks2-offset \
		--header hdr-luks2-offset --key-file pw
	if [ -n "${LAST:-}" ]; then
		cli "payload offset: status shows it" 0 "offset:       2048 sectors" "$TOOL" status "$LAST"
		cli "payload offset: close" 0 "" "$TOOL" close "$LAST"
	fi
fi

# --- holes -----------------------------------------------------------------

# ref_loop FILE: a read-only loop device for the reference mapping (printed),
# detached at exit unless loop_drop did it before.
ref_loop() {
	local dev
	dev=$(losetup --find --show --read-only "$1") || return 1
	at_exit loop_drop "$dev" "$1"
	echo "$dev"
}

# loop_drop DEV FILE: detach DEV if it still holds FILE.
loop_drop() {
	if losetup -j "$2" 2>/dev/null | grep -q "^$1:"; then
		losetup -d "$1"
	fi
	return 0
}

vsize() {	# virtual size in bytes
	qemu-img info --output=json "$1" | sed -n 's/^ *"virtual-size": \([0-9]*\).*/\1/p' | head -n 1
}

# reference OUT HDR IMAGE [BASE]: what "cryptsetup open --header HDR" shows
# over the plain vhdcrypt mapping of IMAGE (over the plain mapping of BASE,
# or a raw BASE's loop device), saved in OUT; the devices are gone after.
reference() {
	local out=$1 hdr=$2 img=$3 base=${4:-} pl=$P-pl$RANDOM ref=$P-ref$RANDOM
	local fmt lo blo='' back='' rc=0 sz
	case $img in *.vhd) fmt=vhd ;; *) fmt=qcow2 ;; esac
	if [ -n "$base" ]; then
		blo=$(ref_loop "$base") || return 1
		back=" 1 backing:$blo"
		case $base in
		*.raw) ;;
		*)
			sz=$(vsize "$base")
			dm_create "$pl-b" "0 $((sz / 512)) vhdcrypt qcow2 $blo none - 0" --readonly ||
				return 1
			back=" 1 backing:/dev/mapper/$pl-b"
			;;
		esac
	fi
	lo=$(ref_loop "$img") || return 1
	sz=$(vsize "$img")
	dm_create "$pl" "0 $((sz / 512)) vhdcrypt $fmt $lo none - 0$back" --readonly || return 1
	if cryptsetup open --readonly --header "$hdr" --key-file pw "/dev/mapper/$pl" "$ref"; then
		dm_track "$ref"
		udev_settle
		dd if="/dev/mapper/$ref" of="$out" bs=1M status=none || rc=1
		cryptsetup close "$ref" || rc=1
	else
		rc=1
	fi
	dm_remove "$pl" || rc=1
	[ -z "$base" ] || dm_remove "$pl-b" || rc=1
	loop_drop "$lo" "$img"
	[ -z "$blo" ] || loop_drop "$blo" "$base"
	return $rc
}

# not_zero FILE SECTOR: that sector of FILE is not all zeros
not_zero() {
	! dd if="$1" bs=512 skip="$2" count=1 status=none | cmp -s - <(head -c 512 /dev/zero)
}

rnd() {	# rnd BYTES: a file of random bytes, printed
	local f=rnd-$RANDOM
	head -c "$1" /dev/urandom >"$f" && echo "$f"
}

# holes_case TEST IMAGE HOLE-SECTOR [BASE]: for both headers (without and with
# a payload offset), compare vhdcryptsetup open --header with the reference.
# HOLE-SECTOR is a sector of the device without payload offset that no
# image of the chain holds: it must read as decrypted zeros, not as zeros.
holes_case() {
	local _t=$1 img=$2 hole=$3 base=${4:-} h t
	for h in hdr-h hdr-ho; do
		t=$_t
		[ "$h" = hdr-ho ] && t="$_t, payload offset"
		if ! reference ref-holes "$h" "$img" ${base:+"$base"}; then
			tap_fail "$t: reference (cryptsetup open --header over the plain mapping)"
			continue
		fi
		if [ "$h" = hdr-h ]; then
			tap_check "$t: the hole reads as decrypted zeros" not_zero ref-holes "$hole"
		fi
		LAST=
		KEEP=1 open_cmp "$t" "$img" ref-holes --header "$h" --key-file pw
		if [ -n "$LAST" ]; then
			case $base:$h in
			*.qcow2:hdr-h) chain_status "$t" "$LAST" ;;
			esac
			cli "$t: close" 0 "" "$TOOL" close "$LAST"
			tap_check "$t: nothing left behind" nothing_left "$LAST" "$W/$img" \
				${base:+"$W/$base"}
		fi
		LAST=
		rm -f ref-holes
	done
}

# chain_status TEST NAME: a header over a chain: whole_disk on top, plain below
chain_status() {
	local _t=$1 name=$2 top low
	cli "$_t: status, whole disk" 0 "cipher covers: whole disk" "$TOOL" status "$name"
	cli "$_t: status, lower layer unencrypted" 0 "    encryption:   none" "$TOOL" status "$name"
	top=$(dmsetup table "$name")
	low=$(dmsetup table "$name-L1" 2>/dev/null)
	tap_check "$_t: tables: whole_disk on top, cipher none below" \
		sh -c "echo '$top' | grep -qE ' 0 2 backing:[0-9]+:[0-9]+ whole_disk\$' &&
		       echo '$low' | grep -qE ' none - 0\$'"
	"$TOOL" status --json "$name" >"$SELFTEST_TMP/st.json" 2>&1
	tap_check "$_t: status --json whole_disk" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["whole_disk"] is True and j["encryption"] == "luks-header", j
assert len(j["chain"]) == 1 and j["chain"][0]["whole_disk"] is False, j["chain"]
assert j["chain"][0]["encryption"] == "none", j["chain"]
' "$SELFTEST_TMP/st.json"
}

# shellcheck disable=SC2086
holes_setup() {
	local c
	rm -f hdr-h hdr-ho
	truncate -s 8M scratch.raw
	cryptsetup luksFormat -q --type luks2 --sector-size 512 $PB2 --header hdr-h \
		--key-file pw scratch.raw || return 1
	cryptsetup luksFormat -q --type luks2 --sector-size 512 $PB2 --offset 2048 \
		--header hdr-ho --key-file pw scratch.raw || return 1

	# a sparse qcow2: written clusters, unallocated clusters, zero clusters
	# (unallocated, allocated and unmapped), a partly written cluster
	qemu-img create -q -f qcow2 -o compat=1.1 sparse.qcow2 8M || return 1
	qemu-io -f qcow2 -c "write -s $(rnd 65536) 0 64k" -c "write -s $(rnd 196608) 1M 192k" \
		-c "write -s $(rnd 4096) 3076k 4k" -c "write -z 5M 64k" \
		-c "write -s $(rnd 262144) 6M 256k" -c "write -z 6M 128k" -c "write -z -u 6272k 64k" \
		-c "write -s $(rnd 65536) 8128k 64k" sparse.qcow2 >/dev/null || return 1

	# a sparse dynamic VHD (2 MiB blocks): a partly written block, an
	# unallocated block
	qemu-img create -q -f vpc -o subformat=dynamic,force_size=on sparse.vhd 8M || return 1
	qemu-io -f vpc -c "write -s $(rnd 65536) 0 64k" -c "write -s $(rnd 512) 2052k 512" \
		-c "write -s $(rnd 1048576) 2560k 1M" -c "write -s $(rnd 65536) 8128k 64k" \
		sparse.vhd >/dev/null || return 1

	# a plain qcow2 chain: the overlay holds data over base data and over a
	# hole, and zero clusters over base data and over a hole
	qemu-img create -q -f qcow2 hbase.qcow2 8M || return 1
	qemu-io -f qcow2 -c "write -s $(rnd 262144) 0 256k" -c "write -s $(rnd 1048576) 4M 1M" \
		-c "write -s $(rnd 65536) 7M 64k" hbase.qcow2 >/dev/null || return 1
	qemu-img create -q -f qcow2 -b hbase.qcow2 -F qcow2 hover.qcow2 || return 1
	qemu-io -f qcow2 -c "write -s $(rnd 65536) 128k 64k" -c "write -s $(rnd 65536) 2M 64k" \
		-c "write -z 4352k 128k" -c "write -z 6M 64k" hover.qcow2 >/dev/null || return 1

	# an overlay (8 MiB) over a smaller raw base (6 MiB): past its end the
	# base reads as zeros
	truncate -s 6M rbase.raw
	dd if="$(rnd 1048576)" of=rbase.raw bs=1M seek=1 conv=notrunc status=none || return 1
	qemu-img create -q -f qcow2 -b rbase.raw -F raw rover.qcow2 8M || return 1
	qemu-io -f qcow2 -c "write -s $(rnd 65536) 1M 64k" -c "write -z 1536k 64k" \
		rover.qcow2 >/dev/null || return 1
	for c in rnd-*; do rm -f "$c"; done
}

if holes_setup; then
	# sector 4096 (2 MiB): unallocated in sparse.qcow2; 10240 (5 MiB): an
	# unallocated VHD block; 6144 (3 MiB): in no image of the chains
	holes_case "holes: sparse qcow2" sparse.qcow2 4096
	holes_case "holes: sparse dynamic VHD" sparse.vhd 10240
	holes_case "holes: qcow2 overlay over a plain qcow2 base" hover.qcow2 6144 hbase.qcow2
	holes_case "holes: qcow2 overlay over a smaller raw base" rover.qcow2 14336 rbase.raw

	# two encryption layers: a detached header over a LUKS-encrypted base
	qemu_retry qemu-img create -q -f qcow2 --object secret,id=s,data=pw \
		-o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 lbase.qcow2 8M
	qemu-img create -q -f qcow2 -b lbase.qcow2 -F qcow2 -u lover.qcow2 8M
	cli "header over an encrypted base: refused" 1 "(two encryption layers) is not supported" \
		"$TOOL" open --header hdr-h --key-file pw lover.qcow2 "$P-x"
	tap_check "header over an encrypted base: nothing left behind" nothing_left "$P-x" \
		"$W/lover.qcow2" "$W/lbase.qcow2"
else
	tap_fail "holes: making the sparse images and the headers"
fi

# refusals
head -c 4M /dev/zero >nothdr
cli "header that is not LUKS: exit 1" 1 "holds no LUKS header" \
	"$TOOL" open --header nothdr --key-file pw p-luks1.qcow2 "$P-x"
cli "missing header file: exit 4" 4 "cannot open the LUKS header" \
	"$TOOL" open --header nonexistent --key-file pw p-luks1.qcow2 "$P-x"
tap_check "refusals: nothing left behind" nothing_left "$P-x" "$W/p-luks1.qcow2"

tap_done
