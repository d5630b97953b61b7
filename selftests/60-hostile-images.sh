#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=3000
#
# Hostile images: hundreds of damaged copies of valid images of every kind
# (qcow2 v2/v3, 512 B/4 KiB/64 KiB clusters, LUKS, zlib and zstd compressed,
# extended L2, internal snapshot, backing file; VHD dynamic, fixed,
# differencing, 64 KiB blocks, OpenXT-keyed with key hash), made by
# selftests/hostile/genimages.py: every header field out of range or
# pointing into other metadata, L1/L2/refcount/BAT pointers past the end,
# into metadata and into each other, shared tables and clusters, overflowing
# compressed descriptors, truncations at every structure boundary, bitmaps
# past block ends, broken key hashes, self-referencing backing chains.
#
# Each image must be refused by the table load (writable, then read-only)
# with a vhdcrypt message, or map: then reading the device (and, for a
# writable table, writing across it, flushing and reading again) finishes,
# failing only with EIO (counted in io_errors) or ENOSPC; an image marked
# "eio" must fail some read.  Never a kernel warning, a hang, or an access
# outside the image device (a loop device of exactly the image's size, a
# canary behind it).  After writes, no new kind of corruption in qemu-img
# check, and the metadata no write may touch (header, LUKS header, VHD
# footers, dynamic header, BAT entries in use, batmap, parent locators)
# unchanged.  vhdcryptsetup open --readonly must refuse every image the
# table load refuses, the broken key hashes and the looping chains, with a
# message and nothing left behind.
#
# Why: every byte of an image is untrusted (Documentation/design.md); these
# are the damages a crafted or corrupted image brings.
#
# Which images (each takes 3-30 s under TCG): by default (make check) a
# quick set of 18, one of each main kind of damage and the looping chains;
# VHDCRYPT_HOSTILE=sample: over 100 (the first of each base and kind of
# damage, plus the important ones); VHDCRYPT_HOSTILE=full or VHDCRYPT_FULL=1
# (make check-full): every image (over 600; 45 minutes per kernel).
# VHDCRYPT_HOSTILE_ONLY=TEXT[|TEXT...]: only images whose base, category
# or description contains one of the TEXTs.  vhdcryptsetup runs on every image in the
# full set, else on the refused ones.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-img.sh"
. "$(dirname "$0")/lib-hostile.sh"

start_image_test qemu-img qemu-io cryptsetup xz
modprobe loop 2>/dev/null
TOOL=${VHDCRYPT_TOOL:-$VHDCRYPT_SRC/userspace/vhdcryptsetup}
[ -x "$TOOL" ] || TOOL=

H_OUT=$WORK/out
H_CANARY=$WORK/canary
H_SET=${VHDCRYPT_HOSTILE:-${VHDCRYPT_FULL:+full}}
case ${H_SET:=quick} in
quick) sample=--quick ;;
sample) sample=--sample ;;
*) sample='' H_SET=full ;;
esac

t0=$SECONDS
if ! hostile_bases "$WORK/bases" >"$WORK/bases.log" 2>&1; then
	tap_fail "base images" "$(cat "$WORK/bases.log")"
	tap_done
fi
if ! python3 "$H_GEN" gen "$WORK/bases" "$H_OUT" $sample \
	${VHDCRYPT_HOSTILE_ONLY:+--only "$VHDCRYPT_HOSTILE_ONLY"} >"$WORK/gen.log" 2>&1; then
	tap_fail "genimages.py" "$(cat "$WORK/gen.log")"
	tap_done
fi
yes "canary $$" | head -c 65536 >"$H_CANARY"
tap_diag "$(wc -l <"$H_OUT/manifest") images made in $((SECONDS - t0)) s${TOOL:+; vhdcryptsetup: $TOOL}"
at_exit dm_remove "$H_PREFIX-case"

# make check (VHDCRYPT_CHECK_SPLIT=1) runs the odd images on 6.1, the even
# ones on the other kernels.
half=
if [ "${VHDCRYPT_CHECK_SPLIT:-0}" = 1 ] && [ "$H_SET" = quick ]; then
	half=0
	case $(uname -r) in 6.1.*) half=1 ;; esac
fi
while IFS=$'\t' read -r id base cat expect tool sectors file desc; do
	if [ -n "$half" ] && [ $((id % 2)) != "$half" ]; then
		tap_skip "$id $base: $desc [$cat, $expect]" "make check runs it on the other kernel"
		continue
	fi
	t1=${EPOCHREALTIME/[.,]/}
	hostile_case "$id" "$base" "$cat" "$expect" "$tool" "$sectors" "$file" "$desc" \
		>"$WORK/case.out" 2>&1
	rc=$?
	name="$id $base: $desc [$cat, $expect]"
	case $rc in
	0) tap_ok "$name" ;;
	*) tap_fail "$name" ;;
	esac
	if [ "$rc" -ne 0 ] || [ "${VHDCRYPT_HOSTILE_VERBOSE:-}" ]; then
		tap_diag "$(cat "$WORK/case.out")"
	fi
	tap_diag "time: $(((${EPOCHREALTIME/[.,]/} - t1) / 1000)) ms"
done <"$H_OUT/manifest"
tap_done
