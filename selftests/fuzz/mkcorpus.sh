#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# mkcorpus.sh DIR: seed corpora, DIR/<harness>/, from the unit tests' images
# (qemu-img and qemu-io: VHD fixed/dynamic, qcow2 v2/v3, 512 B to 2 MiB
# clusters, extended L2, zstd, LUKS, backing file, compressed and zero
# clusters, internal snapshots) and the OpenXT fixtures, plus table lines
# from the table format and a few inputs for each target of the key harness
# (fuzz_keys.c).
set -eu
out=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vhdcrypt-corpus.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
make -s -C "$here/../unit" images IMG="$tmp/img" >/dev/null
rm -rf "$out"
mkdir -p "$out/vhd" "$out/vhd_image" "$out/qcow2" "$out/qcow2_image" "$out/table"

for f in "$tmp"/img/*.vhd "$tmp"/img/openxt/*.vhd; do
	b=$(basename "$f" .vhd)
	head -c 8192 "$f" >"$out/vhd/$b.head"
	tail -c 512 "$f" >"$out/vhd/$b.footer"
	python3 "$here/img2seed.py" "$f" "$out/vhd_image/$b"
done
# Internal snapshots (the unit tests have none): the snapshot table.
qemu-img create -q -f qcow2 -o cluster_size=512 "$tmp/img/q-snap.qcow2" 256k
qemu-io -c "write -P 0x5a 0 8k" "$tmp/img/q-snap.qcow2" >/dev/null
qemu-img snapshot -c first "$tmp/img/q-snap.qcow2"
qemu-io -c "write -P 0xa5 0 1k" "$tmp/img/q-snap.qcow2" >/dev/null
qemu-img snapshot -c second "$tmp/img/q-snap.qcow2"
for f in "$tmp"/img/*.qcow2; do
	b=$(basename "$f" .qcow2)
	head -c 65536 "$f" >"$out/qcow2/$b.head"
	python3 "$here/img2seed.py" "$f" "$out/qcow2_image/$b"
done

# Table lines as dmsetup passes them (no start and length).
i=0
while IFS= read -r line; do
	i=$((i + 1))
	printf '%s' "$line" >"$out/table/line$i"
done <<'LINES'
vhd /dev/loop0 none - 0
vhd 7:3 aes-xts-plain :32:logon:vhdcrypt:c 0 1 backing:254:2
vhd /dev/loop0 none - 0 1 allow_discards
qcow2 /dev/loop5 aes-xts-plain64 :64:logon:vhdcrypt:top 0 2 backing:/dev/mapper/base whole_disk
qcow2 /dev/loop3 aes-xts-plain64 :64:logon:vhdcrypt:top 0 2 iv_sector:host backing:/dev/mapper/base
qcow2 /dev/loop2 aes-xts-plain64 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff 0 5 whole_disk sector_size:4096 iv_large_sectors data_offset:4096 allow_discards
vhd /dev/loop1 aes-cbc-essiv:sha256 :16:user:k 8 0
qcow2 /dev/loop1 capi:xts(aes)-plain64 :64:logon:x 0 1 iv_sector:virtual
vhd /dev/loop1 aes-xts-benbi 0011223344556677 0 1 sector_size:512
LINES

# fuzz_keys: a target byte, then its data (fuzz_keys.c). n BYTE: n times BYTE.
k=$out/keys
mkdir -p "$k"
rep() { head -c "$1" /dev/zero | tr '\0' "$2"; }
printf '\000%s' 18446744073709551615 >"$k/u64-max"
printf '\000%s' 007 >"$k/u64-zeros"
printf '\001%s' 64KiB >"$k/size-kib"
printf '\001%s' 2T >"$k/size-t"
printf '\001%s' 1gB >"$k/size-gb"
printf '\002%s' vpc >"$k/fmt-vpc"
printf '\002%s' qcow2 >"$k/fmt-qcow2"
printf '\003%s' /config/platform-crypto-keys,,keys2, >"$k/keydirs"
# flags, be64 offset, be32 size, be32 file size (a hole), contents
{ printf '\004\001\0\0\0\0\0\0\0\0\0\0\0\040\0\0\0\0'; rep 40 a; } >"$k/file-32-of-40"
{ printf '\004\0\0\0\0\0\0\0\0\007\0\0\0\0\0\0\0\0'; rep 39 b; } >"$k/file-from-7"
{ printf '\004\210\0\0\0\0\0\0\0\0\0\0\0\0\0\177\360\0'; rep 16 c; } >"$k/file-hole"
# list count and 4 selectors, path length; path; entries: b, name length,
# be16 content length, name, content
{ printf '\005\003\002\000\001\000\030/storage/disks/disk1.vhd'
  printf '\000\000\000\100'; rep 64 k
  printf '\011\000\000\040'; rep 32 q; } >"$k/find-512"
{ printf '\005\004\000\001\005\003\011disk2.vhd'
  printf '\000\000\000\077'; rep 63 s
  printf '\011\000\000\041'; rep 33 t
  printf '\014\000\000\001'
  printf '\020\005\000\004otherabcd'; } >"$k/find-short-link"
# flags (set, fix the hash), nonce, hash, key
{ printf '\006\003'; rep 32 n; rep 32 h; rep 64 k; } >"$k/check-fixed"
{ printf '\006\001'; rep 32 n; rep 32 h; rep 32 k; } >"$k/check-wrong"
printf '\007\004%s' 0011AAbb >"$k/unhex"
