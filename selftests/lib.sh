# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# selftests/lib.sh: helpers for the dm-vhdcrypt selftests.  Source it first:
#
#	. "$(dirname "$0")/lib.sh"
#
# Output is TAP 13 (kselftest style); a test file exits 0 (pass), 1 (a test
# failed) or 4 (skipped) through tap_done/skip_all.
#
# TAP:      tap_plan N (or no plan: tap_done prints it), tap_ok NAME,
#           tap_fail NAME [DIAG...], tap_skip NAME REASON, tap_diag TEXT,
#           tap_check NAME CMD... (ok if CMD exits 0, else its output becomes
#           diagnostics; returns CMD's status), expect_fail NAME CMD...
#           (ok if CMD fails), tap_done (plan, "# Totals:" line, exit).
# Gates:    need_root, need_cmd CMD..., skip_all REASON: before any result,
#           they skip the whole file (exit 4).
# Cleanup:  at_exit CMD [ARGS...] pushes a command, run last-in first-out
#           when the test exits (also on SIGINT/SIGTERM, e.g. run_tests.sh's
#           timeout).  Registration goes through a file, so it also works from
#           command substitutions: dev=$(new_loop img).  The library owns the
#           EXIT/INT/TERM traps: use at_exit instead of a trap of your own.
# Devices:  new_loop FILE [--ro] (prints /dev/loopN, detached at exit),
#           dm_create NAME TABLE [DMSETUP-CREATE-ARGS...], dm_track NAME (for
#           devices made by other tools, e.g. vhdcryptsetup), dm_remove NAME,
#           dm_remove_all; tracked dm devices are removed at exit.
# Module:   load_vhdcrypt (modprobe dm_mod dm_bufio, insmod $VHDCRYPT_KO once;
#           skips the file if no module was built).
# Tools:    qemu_retry CMD... runs a qemu-img command that makes LUKS key
#           slots, retrying QEMU's flaky PBKDF2 timing.
# Data:     sha256_dev DEV_OR_FILE prints the sha256 of its whole content.
#
# Environment (set by run_tests.sh): VHDCRYPT_KO, VHDCRYPT_TOOL,
# VHDCRYPT_SRC, VHDCRYPT_FIXTURES, TMPDIR.  The library sets SELFTEST_NAME
# (file name without .sh), SELFTEST_TMP (a scratch directory removed at
# exit, after every other cleanup) and, when unset, VHDCRYPT_SRC (this
# repository).

SELFTEST_NAME=$(basename "$0" .sh)
VHDCRYPT_SRC=${VHDCRYPT_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
SELFTEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/$SELFTEST_NAME.XXXXXX") || exit 1
_tap_n=0 _tap_pass=0 _tap_fail=0 _tap_skip=0 _tap_xfail=0 _tap_plan=
_cleanup_list=$SELFTEST_TMP/.cleanup
_dm_names=$SELFTEST_TMP/.dm-names
: >"$_cleanup_list"
: >"$_dm_names"

echo "TAP version 13"

# --- TAP -------------------------------------------------------------------

tap_diag() {
	printf '%s\n' "$*" | sed 's/^/# /'
}

tap_plan() {
	_tap_plan=$1
	echo "1..$1"
}

tap_ok() {
	_tap_n=$((_tap_n + 1)) _tap_pass=$((_tap_pass + 1))
	echo "ok $_tap_n $1"
}

tap_fail() {
	local name=$1 d
	shift
	_tap_n=$((_tap_n + 1)) _tap_fail=$((_tap_fail + 1))
	echo "not ok $_tap_n $name"
	for d in "$@"; do
		[ -z "$d" ] || tap_diag "$d"
	done
}

tap_skip() {
	_tap_n=$((_tap_n + 1)) _tap_skip=$((_tap_skip + 1))
	echo "ok $_tap_n $1 # SKIP $2"
}

# tap_check NAME CMD...: runs CMD in this shell (so it may change variables
# or register cleanups), output captured; on failure the output is shown.
# Locals of helpers that run test code are _-prefixed: bash's dynamic
# scoping would otherwise let them shadow the test's globals (e.g. $name).
tap_check() {
	local _tc_name=$1 _tc_rc
	shift
	"$@" >"$SELFTEST_TMP/.out" 2>&1
	_tc_rc=$?
	if [ "$_tc_rc" -eq 0 ]; then
		tap_ok "$_tc_name"
	else
		tap_fail "$_tc_name" "command: $*" "exit status: $_tc_rc" "$(cat "$SELFTEST_TMP/.out")"
	fi
	return "$_tc_rc"
}

# expect_fail NAME CMD...: ok if CMD exits non-zero.
expect_fail() {
	local _ef_name=$1
	shift
	if "$@" >"$SELFTEST_TMP/.out" 2>&1; then
		tap_fail "$_ef_name" "command unexpectedly succeeded: $*" "$(cat "$SELFTEST_TMP/.out")"
		return 1
	fi
	tap_ok "$_ef_name"
}

tap_done() {
	if [ -z "$_tap_plan" ]; then
		echo "1..$_tap_n"
	elif [ "$_tap_n" -ne "$_tap_plan" ]; then
		tap_diag "planned $_tap_plan tests but ran $_tap_n"
		_tap_fail=$((_tap_fail + 1))
	fi
	echo "# Totals: pass:$_tap_pass fail:$_tap_fail xfail:$_tap_xfail xpass:0 skip:$_tap_skip error:0"
	if [ "$_tap_fail" -gt 0 ]; then
		exit 1
	elif [ "$_tap_pass" -eq 0 ]; then
		exit 4
	fi
	exit 0
}

# skip_all REASON: skip the whole file (or, once results were printed, the
# rest of the plan).
skip_all() {
	if [ "$_tap_n" -eq 0 ] && [ -z "$_tap_plan" ]; then
		echo "1..0 # SKIP $*"
		exit 4
	fi
	tap_skip "$SELFTEST_NAME" "$*"
	while [ -n "$_tap_plan" ] && [ "$_tap_n" -lt "$_tap_plan" ]; do
		tap_skip "$SELFTEST_NAME" "$*"
	done
	tap_done
}

need_root() {
	[ "$(id -u)" -eq 0 ] || skip_all "must run as root"
}

need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip_all "command not found: $c"
	done
}

# --- cleanup stack ---------------------------------------------------------

at_exit() {
	printf '%q ' "$@" >>"$_cleanup_list"
	echo >>"$_cleanup_list"
}

_run_cleanups() {
	local _rc=$? _line _lines
	trap - EXIT INT TERM
	mapfile -t _lines < <(tac "$_cleanup_list" 2>/dev/null)
	for _line in "${_lines[@]}"; do
		eval "$_line" </dev/null >"$SELFTEST_TMP/.cleanup-out" 2>&1 ||
			tap_diag "cleanup failed: $_line" "$(cat "$SELFTEST_TMP/.cleanup-out")"
	done
	rm -rf "$SELFTEST_TMP"
	exit "$_rc"
}
trap _run_cleanups EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

udev_settle() {
	udevadm settle --timeout=30 >/dev/null 2>&1 || true
}

# --- devices ---------------------------------------------------------------

new_loop() {
	local file=$1 ro='' dev
	[ "${2:-}" = --ro ] && ro=--read-only
	[ -e /dev/loop-control ] || modprobe loop 2>/dev/null
	dev=$(losetup --find --show $ro "$file") || return 1
	at_exit losetup -d "$dev"
	echo "$dev"
}

dm_track() {
	echo "$1" >>"$_dm_names"
	at_exit dm_remove "$1"
}

dm_create() {
	local name=$1 table=$2
	shift 2
	dmsetup create "$name" "$@" --table "$table" || return 1
	dm_track "$name"
	udev_settle
}

# dm_remove NAME: remove it if it still exists; a device that will not go
# (suspended, key wiped, still open) gets an error table and goes then.
dm_remove() {
	dmsetup remove --retry "$1" >/dev/null 2>&1 ||
		! dmsetup info "$1" >/dev/null 2>&1 ||
		dmsetup remove --force --retry "$1" || return 1
	udev_settle
}

# dm_remove_all: remove every tracked device; the ones that would not go
# stay tracked.
dm_remove_all() {
	local name i left=()
	for name in $(tac "$_dm_names"); do
		dm_remove "$name" || left+=("$name")
	done
	: >"$_dm_names"
	for ((i = ${#left[@]} - 1; i >= 0; i--)); do
		echo "${left[i]}" >>"$_dm_names"
	done
	[ ${#left[@]} -eq 0 ]
}

# --- tools -----------------------------------------------------------------

# qemu_retry CMD...: a qemu-img command that makes LUKS key slots, through
# scripts/qemu-retry (QEMU's PBKDF2 timing fails now and then).
qemu_retry() {
	"$VHDCRYPT_SRC/scripts/qemu-retry" "$@"
}

# --- module ----------------------------------------------------------------

load_vhdcrypt() {
	modprobe -a dm_mod dm_bufio || return 1
	[ -d /sys/module/dm_vhdcrypt ] && return 0
	[ -n "${VHDCRYPT_KO:-}" ] && [ -f "$VHDCRYPT_KO" ] ||
		skip_all "dm-vhdcrypt.ko not built (VHDCRYPT_KO=${VHDCRYPT_KO:-unset})"
	if ! insmod "$VHDCRYPT_KO"; then
		tap_diag "insmod $VHDCRYPT_KO failed; kernel log:" "$(dmesg | tail -n 5)"
		return 1
	fi
}

# --- data ------------------------------------------------------------------

sha256_dev() {
	local sum
	if [ -b "$1" ]; then
		sum=$(set -o pipefail
			dd if="$1" bs=1M iflag=direct status=none | sha256sum) || return 1
	else
		sum=$(sha256sum <"$1") || return 1
	fi
	echo "${sum%% *}"
}
