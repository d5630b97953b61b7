# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# Helpers shared by the vhdcryptsetup selftests (40-43). Sourced after lib.sh;
# they use $TOOL (the vhdcryptsetup binary).

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

# close_quiet NAME: cleanup of a device this test opened.
close_quiet() {
	"$TOOL" close "$1" >/dev/null 2>&1
	local n
	for n in "$1" "$1-L1" "$1-L2" "$1-L3"; do
		dm_remove "$n" >/dev/null 2>&1
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

# nothing_left NAME IMAGE...: no device NAME or NAME-L<n>, no loop device on IMAGE.
nothing_left() {
	local n=$1 img
	shift
	if dmsetup ls 2>/dev/null | awk '{ print $1 }' | grep -qE "^$n(-L[0-9]+)?$"; then
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
