#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=1200
# check-kernels=6.1
#
# Images made by the real tools that vhdcryptsetup once refused, each opened
# and compared with what its peers show:
# - qcow2 version 2 with LUKS (qemu-img -o compat=0.10), alone and as an
#   overlay over a version 2 backing file: qemu-img convert;
# - a raw payload with a detached header (cryptsetup luksFormat --header:
#   LUKS1, LUKS2, with and without --offset, 512- and 4096-byte sectors, the
#   header on a file and on a block device, the payload on a file and on a
#   block device): cryptsetup open --header. It is a dm-crypt device made
#   through libcryptsetup; status and close know it; a wrong passphrase
#   exits 2;
# - 4096-byte sectors of a detached header over a qcow2 (with holes) and a
#   dynamic VHD: cryptsetup open --header over the plain mapping. The table
#   has cryptsetup's sector_size:4096 (no iv_large_sectors); this needs the
#   vhdcrypt target 1.2.0, and a clear refusal before it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-cli.sh"

start_cli_test cryptsetup qemu-img qemu-io cmp python3
modprobe dm_crypt 2>/dev/null || skip_all "no dm-crypt for making the test data"
W=$SELFTEST_TMP
cd "$W" || skip_all "no work directory"
P=vci$$
unset VHDCRYPT_DEBUG

printf 'header secret' >pw
printf 'pw-one' >pw1

# --- qcow2 version 2 with LUKS -----------------------------------------------

S="--object secret,id=sec0,data=pw-one"
v2opts() { echo "driver=qcow2,file.filename=$1,encrypt.key-secret=sec0${2:+,$2}"; }
# shellcheck disable=SC2086
if qemu_retry qemu-img create -q -f qcow2 $S \
	-o compat=0.10,encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10 v2.qcow2 16M &&
	qemu-io $S --image-opts "$(v2opts v2.qcow2)" -c "write -P 0x11 0 512" \
		-c "write -P 0xab 1M 64k" -c "write -P 0x33 16383k 1k" >/dev/null &&
	qemu-img convert $S --image-opts "$(v2opts v2.qcow2)" -O raw v2.raw &&
	qemu_retry qemu-img create -q -f qcow2 $S -b v2.qcow2 -F qcow2 \
		-o compat=0.10,encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10 v2top.qcow2 &&
	qemu-io $S --image-opts "$(v2opts v2top.qcow2 backing.encrypt.key-secret=sec0)" \
		-c "write -P 0xee 1056k 8k" >/dev/null &&
	qemu-img convert $S --image-opts "$(v2opts v2top.qcow2 backing.encrypt.key-secret=sec0)" \
		-O raw v2top.raw; then
	cli "qcow2 v2 with LUKS: probe" 0 "VHDCRYPT_VERSION=2" "$TOOL" probe v2.qcow2
	cli "qcow2 v2 with LUKS: probe finds LUKS" 0 "VHDCRYPT_LUKS_VERSION=1" "$TOOL" probe v2.qcow2
	open_cmp "qcow2 v2 with LUKS" v2.qcow2 v2.raw --key-file pw1
	open_cmp "qcow2 v2 LUKS overlay over a v2 LUKS base" v2top.qcow2 v2top.raw --key-file pw1
else
	tap_fail "qcow2 v2 with LUKS: qemu-img create / qemu-io / convert"
fi

# --- raw payloads ------------------------------------------------------------

# raw_case TAG IMAGE: a raw payload with header hdr-TAG (made by luks_payload),
# opened with --header HEADER_ARG (default hdr-TAG), compared with what
# cryptsetup showed; status must name the file IMAGE_FILE (default IMAGE) and
# the encryption sector size SECTOR (default 512).
raw_case() {
	local tag=$1 img=$2 hdr=${HEADER_ARG:-hdr-$1}
	LAST=
	KEEP=1 open_cmp "raw $tag" "$img" "plain-$tag" --header "$hdr" --key-file pw || return 1
	[ -n "$LAST" ] || return 1
	cli "raw $tag: status" 0 "type:         raw" "$TOOL" status "$LAST"
	cli "raw $tag: status, encryption" 0 "encryption:   luks-header" "$TOOL" status "$LAST"
	cli "raw $tag: status, sector size" 0 "sector size:  ${SECTOR:-512} bytes" \
		"$TOOL" status "$LAST"
	tap_check "raw $tag: a read-only dm-crypt device, as cryptsetup names it" \
		sh -c "dmsetup table $LAST | grep -q ' crypt ' && [ \"\$(blockdev --getro /dev/mapper/$LAST)\" = 1 ] &&
		       dmsetup info -c --noheadings -o uuid $LAST | grep -q '^CRYPT-LUKS[12]-'"
	"$TOOL" status --json "$LAST" >st.json 2>&1
	tap_check "raw $tag: status --json" python3 -c '
import json, sys
s = json.load(open("st.json"))
assert s["type"] == "raw" and s["encryption"] == "luks-header", s
assert s["sector_size"] == int(sys.argv[1]) and s["read_only"] is True, s
assert s["image"].endswith(sys.argv[2]), s
' "${SECTOR:-512}" "${IMAGE_FILE:-$img}"
	cli "raw $tag: close" 0 "" "$TOOL" close "$LAST"
	tap_check "raw $tag: nothing left behind" nothing_left "$LAST" "$W/$img"
}

PB2="--pbkdf pbkdf2 --pbkdf-force-iterations 1000"
# shellcheck disable=SC2086
luks_payload luks1 --type luks1 --pbkdf-force-iterations 1000 &&
	raw_case luks1 payload-luks1.raw
# shellcheck disable=SC2086
luks_payload luks2-512 --type luks2 --sector-size 512 $PB2 &&
	raw_case luks2-512 payload-luks2-512.raw
# cryptsetup's default on a file: 4096-byte sectors
# shellcheck disable=SC2086
luks_payload luks2-4k --type luks2 $PB2 &&
	SECTOR=4096 raw_case luks2-4k payload-luks2-4k.raw
# shellcheck disable=SC2086
luks_payload luks2-4k-off --type luks2 --sector-size 4096 --offset 2048 $PB2 &&
	SECTOR=4096 raw_case luks2-4k-off payload-luks2-4k-off.raw
if [ -f plain-luks2-4k ]; then
	cli "raw: --type raw" 0 "" "$TOOL" open --dry-run --type raw --header hdr-luks2-4k \
		--key-file pw payload-luks2-4k.raw "$P-t"
	hloop=$(new_loop "$W/hdr-luks2-4k" --ro)
	HEADER_ARG=$hloop SECTOR=4096 raw_case luks2-4k payload-luks2-4k.raw
	ploop=$(new_loop "$W/payload-luks2-4k.raw" --ro)
	IMAGE_FILE=payload-luks2-4k.raw SECTOR=4096 raw_case luks2-4k "$ploop"
	tap_check "raw on a block device: the caller's loop device is left alone" \
		test -n "$(losetup -j "$W/payload-luks2-4k.raw")"
	cli "raw: wrong passphrase: exit 2" 2 "no key slot of payload-luks1.raw matches" \
		"$TOOL" open --header hdr-luks1 --key-file pw1 payload-luks1.raw "$P-x"
	cli "raw: --key-slot 5 (inactive): exit 1" 1 "key slot 5 of payload-luks1.raw is not in use" \
		"$TOOL" open --header hdr-luks1 --key-file pw --key-slot 5 payload-luks1.raw "$P-x"
	tap_check "raw: failures leave nothing behind" nothing_left "$P-x" "$W/payload-luks1.raw"
fi

# --- 4096-byte sectors over a qcow2 and a VHD ---------------------------------

vhdcrypt_version() {
	dmsetup targets | awk '$1 == "vhdcrypt" { sub(/^v/, "", $2); print $2 }'
}
ver=$(vhdcrypt_version)
if [ ! -f plain-luks2-4k ]; then
	tap_fail "4096-byte sectors: no payload"
elif [ "$(printf '%s\n1.2.0\n' "$ver" | sort -V | head -n 1)" != 1.2.0 ]; then
	qemu-img convert -f raw -O qcow2 payload-luks2-4k.raw p4k.qcow2
	cli "4096-byte sectors over a qcow2, vhdcrypt $ver: refused before the passphrase" 1 \
		"a LUKS header with 4096-byte sectors needs 1.2.0 or later" \
		"$TOOL" open --header hdr-luks2-4k p4k.qcow2 "$P-x" </dev/null
	tap_check "4096-byte sectors, vhdcrypt $ver: nothing left behind" nothing_left "$P-x" \
		"$W/p4k.qcow2"
	tap_skip "4096-byte sectors over a qcow2 and a VHD" \
		"the vhdcrypt target is v$ver; sector_size needs v1.2.0"
else
	qemu-img convert -f raw -O qcow2 payload-luks2-4k.raw p4k.qcow2
	KEEP=1 open_cmp "4096-byte sectors, qcow2 payload" p4k.qcow2 plain-luks2-4k \
		--header hdr-luks2-4k --key-file pw
	if [ -n "$LAST" ]; then
		tap_check "4096-byte sectors: the table has cryptsetup's sector_size:4096" \
			sh -c "dmsetup table $LAST | grep -qE ' 0 2 whole_disk sector_size:4096\$'"
		cli "4096-byte sectors: status" 0 "sector size:  4096 bytes" "$TOOL" status "$LAST"
		cli "4096-byte sectors: close" 0 "" "$TOOL" close "$LAST"
	fi
	qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on payload-luks2-4k.raw p4k.vhd
	open_cmp "4096-byte sectors, dynamic VHD payload" p4k.vhd plain-luks2-4k \
		--header hdr-luks2-4k --key-file pw
	qemu-img convert -f raw -O qcow2 payload-luks2-4k-off.raw p4k-off.qcow2
	open_cmp "4096-byte sectors with a payload offset, qcow2" p4k-off.qcow2 plain-luks2-4k-off \
		--header hdr-luks2-4k-off --key-file pw

	# holes: what cryptsetup open --header shows over the plain mapping
	qemu-img create -q -f qcow2 sparse.qcow2 16M
	head -c 196608 /dev/urandom >rnd
	qemu-io -f qcow2 -c "write -s rnd 1M 192k" -c "write -z 5M 64k" -c "write -s rnd 8M 4k" \
		sparse.qcow2 >/dev/null
	cli "holes: plain mapping" 0 "" "$TOOL" open sparse.qcow2 "$P-pl"
	at_exit close_quiet "$P-pl"
	cryptsetup open --readonly --header hdr-luks2-4k --key-file pw "/dev/mapper/$P-pl" "$P-ref" &&
		dm_track "$P-ref" && udev_settle &&
		dd if="/dev/mapper/$P-ref" of=ref-sparse bs=1M status=none
	cryptsetup close "$P-ref"
	"$TOOL" close "$P-pl"
	open_cmp "4096-byte sectors: a sparse qcow2 reads as cryptsetup over the plain mapping" \
		sparse.qcow2 ref-sparse --header hdr-luks2-4k --key-file pw
fi

tap_done
