# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# selftests/tools/lib-logwrites.sh: helpers for power-cut tests with
# dm-log-writes.  Source it after selftests/lib.sh (it uses dm_create and
# dm_remove, so the devices are removed when the test exits):
#
#	. "$VHDCRYPT_SRC/selftests/tools/lib-logwrites.sh"
#
#   lw_create NAME DEV LOGDEV  log-writes device /dev/mapper/NAME over DEV,
#                              logging to LOGDEV (whose first 4 KiB are
#                              zeroed first, so no stale log is ever read)
#   lw_remove NAME             remove it (this logs the "dm-log-writes-end"
#                              mark); fails if the log ran out of space
#   lw_marks LOG [PREFIX]      "INDEX NAME" of every mark whose name starts
#                              with PREFIX (default wlog-flush-)
#
# Tools: $RL (replay-log), $WLOG (wlog), $VHDCHECK (vhdcheck).  The C tools
# must have been built on the host (make selftests-tools).

# shellcheck disable=SC2034 # used by the scripts that source this file
TOOLS_DIR=$VHDCRYPT_SRC/selftests/tools
RL=$TOOLS_DIR/replay-log
WLOG=$TOOLS_DIR/wlog
# shellcheck disable=SC2034
VHDCHECK=$TOOLS_DIR/vhdcheck

lw_create() {
	local name=$1 dev=$2 logdev=$3
	modprobe dm_log_writes 2>/dev/null
	dd if=/dev/zero of="$logdev" bs=4096 count=1 oflag=direct status=none || return 1
	dm_create "$name" "0 $(blockdev --getsz "$dev") log-writes $dev $logdev"
}

lw_remove() {
	local status
	status=$(dmsetup status "$1") || return 1
	dm_remove "$1" || return 1
	case $status in
	*logging_disabled*)
		echo "lw_remove: $1 stopped logging (log device full?): $status" >&2
		return 1
		;;
	esac
}

lw_marks() {
	"$RL" marks "$1" | awk -v p="${2:-wlog-flush-}" 'index($2, p) == 1'
}
