#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=1200
#
# The OpenXT encrypted VHD fixtures (fixtures/openxt, made with the real
# OpenXT blktap tools): every image and chain is mapped with its key
# (aes-xts-plain, IV = 32-bit virtual LBA) and the whole decrypted disk is
# compared with the sha256 from expected.sha256; big.vhd (2039 GiB) by
# ranges read with O_DIRECT.  Differencing images without a backing device,
# wrong keys and malformed key material are checked too.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-img.sh"
# shellcheck disable=SC2034 # read by run_case in lib-img.sh
CASE_SPLIT=1	# independent cases: make check spreads them over the kernels

OX=$FIXTURES/openxt
start_image_test xz sha256sum
[ -f "$OX/expected.sha256" ] || skip_all "no fixtures in $OX"

# All images in one directory (children name their parents relatively).
unpack() {
	local f
	for f in "$OX"/*.vhd.xz; do
		xz -dc "$f" >"$WORK/$(basename "$f" .xz)" || return 1
	done
}

# key NAME [DIR]: hex of the key file of image NAME (DIR default keys); like
# tapdisk, the 512-bit file wins over the 256-bit one.
key() {
	local f
	for f in "$OX/${2:-keys}/$1,aes-xts-plain,"{512,256}.key; do
		[ -f "$f" ] && { od -An -v -tx1 "$f" | tr -d ' \n'; return 0; }
	done
	echo "no key file for $1 in ${2:-keys}" >&2
	return 1
}

# expected NAME [FIRST COUNT]: sha256 from expected.sha256 (NAME as listed
# there, e.g. parent.vhd or alone/child-own.vhd).
expected() {
	awk -v n="$1" -v f="${2:-0}" -v c="$3" \
		'$1 == n && $2 == f && (c == "" || $3 == c) { print $4; exit }' "$OX/expected.sha256"
}

# map_vhd NAME CIPHER KEY [BACKING_DEV]: map $WORK/NAME.vhd as device NAME.
map_vhd() {
	local name=$1 img=$WORK/$1.vhd size opt=''
	size=$(vhd_current_size "$img") || return 1
	[ -n "$4" ] && opt=" 1 backing:$4"
	loop "$img" || return 1
	map "$name" "0 $((size / 512)) vhdcrypt vhd $LOOP $2 $3 0$opt"
}

# map_keyed NAME KEY-OWNER [BACKING_DEV]
map_keyed() {
	local k
	k=$(key "$2") || return 1
	map_vhd "$1" aes-xts-plain "$k" "$3"
}

# verify NAME [EXPECTED-NAME]: the whole device against expected.sha256.
verify() {
	local dev want got size
	dev=$(dev "$1")
	want=$(expected "${2:-$1.vhd}")
	[ -n "$want" ] || { echo "no expected hash for ${2:-$1.vhd}"; return 1; }
	size=$(vhd_current_size "$WORK/$1.vhd")
	[ "$(dev_size "$dev")" -eq "$size" ] ||
		{ echo "device size $(dev_size "$dev") != current_size $size"; return 1; }
	got=$(sha256_dev "$dev")
	[ "$got" = "$want" ] || { echo "sha256 $got, expected $want"; return 1; }
}

single() {
	if [ "$1" = plain ]; then
		map_vhd plain none - || return 1
	else
		map_keyed "$1" "$1" || return 1
	fi
	verify "$1"
}

child_own() {
	map_keyed parent parent && map_keyed child-own child-own "$(dev parent)" &&
		verify child-own
}

# child-inherit has no key of its own: its data is under parent's key.
child_inherit() {
	map_keyed parent parent && map_keyed child-inherit parent "$(dev parent)" &&
		verify child-inherit
}

grandchild() {
	map_keyed parent parent && map_keyed child-inherit parent "$(dev parent)" &&
		map_keyed grandchild grandchild "$(dev child-inherit)" &&
		verify grandchild
}

# Without backing: the sectors whose bitmap bit is clear read as zeros.
alone() {
	map_keyed "$1" "$2" && verify "$1" "alone/$1.vhd"
}

big_ranges() {
	local dev name first count want got bad=0 n=0
	map_keyed big big || return 1
	dev=$(dev big)
	[ "$(dev_size "$dev")" -eq 2189359579136 ] ||
		{ echo "big.vhd device size $(dev_size "$dev")"; return 1; }
	while read -r name first count want; do
		[ "$name" = big.vhd ] || continue
		got=$(dd if="$dev" iflag=direct,skip_bytes,count_bytes bs=1M \
			skip=$((first * 512)) count=$((count * 512)) status=none | sha256sum | cut -d' ' -f1)
		n=$((n + 1))
		[ "$got" = "$want" ] && continue
		echo "big.vhd sectors $first+$count: sha256 $got, expected $want"
		bad=1
	done <"$OX/expected.sha256"
	echo "$n ranges of big.vhd compared"
	[ "$n" -gt 0 ] && [ "$bad" = 0 ]
}

# A wrong key of the right size loads (the kernel does not check OpenXT's
# key hash) but must not give the plaintext.
wrong_key() {
	local k
	k=$(key "$2" "$3") || return 1
	map_vhd "$1" aes-xts-plain "$k" || return 1
	! verify "$1" >/dev/null
}

# Key material that is no AES-XTS key (63 bytes; 33 bytes with a newline) is
# refused at load.
bad_key_size() {
	local k
	k=$(key "$1" "$2") || return 1
	loop "$WORK/$1.vhd" || return 1
	expect_load_fail "$1" "0 $(($(vhd_current_size "$WORK/$1.vhd") / 512)) vhdcrypt vhd $LOOP aes-xts-plain $k 0"
}

# The footer's current_size counts, not the CHS size: a longer table fails.
table_too_long() {
	local size
	size=$(vhd_current_size "$WORK/plain.vhd")
	loop "$WORK/plain.vhd" || return 1
	expect_load_fail long "0 $((size / 512 + 1)) vhdcrypt vhd $LOOP none - 0"
}

IMAGES="plain aes256xts aes256xts-nonce aes128xts aes128xts-nonce parent"
tap_plan 18
if unpack; then
	for i in $IMAGES; do
		run_case "$i.vhd" single "$i"
	done
	run_case "child-own.vhd over parent.vhd, each with its own key" child_own
	run_case "child-inherit.vhd over parent.vhd, parent's key" child_inherit
	run_case "grandchild.vhd over child-inherit.vhd over parent.vhd" grandchild
	run_case "child-own.vhd without backing device" alone child-own child-own
	run_case "child-inherit.vhd without backing device" alone child-inherit parent
	run_case "grandchild.vhd without backing device" alone grandchild grandchild
	run_case "big.vhd (2039 GiB): ranges near 2^31, above it and at the end" big_ranges
	run_case "aes256xts.vhd with a wrong key gives no plaintext" wrong_key aes256xts aes256xts keys-wrong
	run_case "aes128xts.vhd with the bogus 512-bit key gives no plaintext" wrong_key aes128xts aes128xts keys-prefer512
	run_case "63-byte key refused" bad_key_size aes256xts-nonce keys-truncated
	run_case "33-byte key (trailing newline) refused" bad_key_size aes128xts-nonce keys-trailing-newline
	run_case "table longer than current_size refused" table_too_long
else
	echo "cannot decompress the fixtures"
	for i in $(seq 17); do run_case "fixture test $i" false; done
fi
tap_done
