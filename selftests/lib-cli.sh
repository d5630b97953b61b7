# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# Helpers shared by the vhdcryptsetup selftests (40-45). Sourced after lib.sh;
# they use $TOOL (the vhdcryptsetup binary) and $P (the test's device name
# prefix), and run in the test's work directory.

# start_cli_test [TOOL...]: skip the file without root, the tools, the
# vhdcrypt module or a built vhdcryptsetup; sets $TOOL.
start_cli_test() {
	need_root
	need_cmd dmsetup losetup blockdev "$@"
	load_vhdcrypt || skip_all "cannot load dm-vhdcrypt"
	modprobe loop 2>/dev/null
	TOOL=${VHDCRYPT_TOOL:-$VHDCRYPT_SRC/userspace/vhdcryptsetup}
	[ -x "$TOOL" ] || skip_all "vhdcryptsetup not built ($TOOL)"
}

# close_quiet NAME: cleanup of a device this test opened (quick if it is gone).
close_quiet() {
	local n left
	left=$(dmsetup ls 2>/dev/null | awk '{ print $1 }' | grep -E "^$1(-L[0-9]+|p[0-9]+)?$")
	[ -n "$left" ] || return 0
	"$TOOL" close "$1" >/dev/null 2>&1
	for n in "$1p1" "$1p2" "$1" "$1-L1" "$1-L2" "$1-L3"; do
		grep -qxF -- "$n" <<<"$left" && dm_remove "$n" >/dev/null 2>&1
	done
	return 0
}

# cli NAME WANT_RC MSG CMD...: CMD's exit status must be WANT_RC and its
# output contain MSG (if not empty).
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

# nothing_left NAME IMAGE...: no device NAME, NAME-L<n> or NAMEp<n>, no loop
# device on IMAGE.
nothing_left() {
	local n=$1 img
	shift
	if dmsetup ls 2>/dev/null | awk '{ print $1 }' | grep -qE "^$n(-L[0-9]+|p[0-9]+)?$"; then
		echo "dm devices left: $(dmsetup ls)"
		return 1
	fi
	for img; do
		if [ -n "$(losetup -j "$img" 2>/dev/null)" ]; then
			echo "loop device left on $img: $(losetup -j "$img")"
			return 1
		fi
	done
}

# open_cmp TEST IMAGE EXPECTED OPEN-ARGS... [< stdin]: open IMAGE, compare the
# device with the file EXPECTED (what QEMU or cryptsetup shows), then close
# it and check that nothing is left behind; with KEEP set it stays open, its
# name in $LAST.
open_cmp() {
	local _t=$1 _img=$2 _want=$3 _name=$P-$RANDOM
	shift 3
	at_exit close_quiet "$_name"
	cli "$_t: open" 0 "" "$TOOL" open "$@" "$_img" "$_name" || return 1
	tap_check "$_t: same data as $_want" cmp "/dev/mapper/$_name" "$_want"
	# shellcheck disable=SC2034 # for the caller
	LAST=$_name
	if [ -z "${KEEP:-}" ]; then
		cli "$_t: close" 0 "" "$TOOL" close "$_name"
		tap_check "$_t: nothing left behind" nothing_left "$_name" "$PWD/$_img"
	fi
}

# luks_payload TAG FORMAT-ARGS...: payload-TAG.raw (16 MiB) with the detached
# header hdr-TAG (cryptsetup luksFormat FORMAT-ARGS, passphrase file pw),
# every sector written through "cryptsetup open --header" (dm-crypt), and
# the plaintext dm-crypt shows saved in plain-TAG.
luks_payload() {
	local tag=$1 ref=$P-ref-$1 dev size
	shift
	rm -f "hdr-$tag"
	truncate -s 16M "payload-$tag.raw"
	cryptsetup luksFormat -q --header "hdr-$tag" --key-file pw "$@" "payload-$tag.raw" || return 1
	cryptsetup open --header "hdr-$tag" --key-file pw "payload-$tag.raw" "$ref" || return 1
	dm_track "$ref"
	udev_settle
	dev=/dev/mapper/$ref
	size=$(blockdev --getsize64 "$dev")
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

# status_is NAME MODE: status and status --json show MODE and the sizes.
status_is() {
	local out
	out=$("$TOOL" status "$1") || return 1
	grep -q "mode: *$2$" <<<"$out" || { echo "$out"; return 1; }
	grep -q "file size: *[0-9]* bytes" <<<"$out" || { echo "$out"; return 1; }
	"$TOOL" status --json "$1" | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["mode"] == sys.argv[1], s
assert s["read_only"] == (sys.argv[1] == "ro"), s
assert s["file_size"] > 0, s
if s["type"] != "raw":
    assert 0 < s["allocated"], s
    if s["mode"] == "rw":
        assert s["allocated"] <= s["file_size"], s
' "$2"
}
