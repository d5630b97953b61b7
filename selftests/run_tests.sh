#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# selftests/run_tests.sh [--ko PATH] [--tool PATH] [TEST...]
#
# Run the dm-vhdcrypt selftests (as root, normally inside scripts/vm-run) and
# aggregate their TAP output.  TEST is a file name in selftests/ ("00-smoke.sh"
# or "00-smoke") or a path; default: every selftests/[0-9]*.sh in order.
#
#   --ko PATH    module to insmod (VHDCRYPT_KO; default
#                build/$(uname -r)/dm-vhdcrypt.ko)
#   --tool PATH  vhdcryptsetup binary (VHDCRYPT_TOOL; default
#                userspace/vhdcryptsetup)
#
# When no test is named and VHDCRYPT_FULL is not 1 (make check), a test
# whose first 10 lines say "# check-kernels=6.12" runs only on a kernel whose
# release starts with "6.12." (skipped on the others), and the files that set
# CASE_SPLIT=1 run half of their cases on each kernel (lib-img.sh).
#
# Each test runs with a timeout read from a "# timeout=SECONDS" comment in
# its first 10 lines (default 300), multiplied by VHDCRYPT_TIMEOUT_SCALE
# (default 1; slow kernels, make check-full), and its output is shown
# indented under a header.  Counted are the TAP result lines: "ok"
# (passed), "not ok" (failed), "ok ... # SKIP" (skipped), "not ok ... # TODO"
# (a known failure, reported with its reason, not failed); a file that is
# skipped as a whole counts as one
# skip; a file that times out, crashes, fails without a "not ok" line or runs
# fewer tests than its plan counts one extra failure; so does a kernel problem
# (scripts/dmesg-check) logged while it ran.  On a kernel with kmemleak
# (the debug kernel), a scan after each test shows what it leaked, a kernel
# problem (a scan before the first test shows what leaked earlier).  The
# last line is
#
#	vm <uname -r>: N passed, N failed, N skipped
#
# also written to $VM_WORKDIR/selftests-summary.txt when VM_WORKDIR is set.
# Exit status 1 if anything failed, else 0.
set -u

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
kver=$(uname -r)

abspath() {
	case $1 in
	/*) printf '%s\n' "$1" ;;
	*) printf '%s\n' "$PWD/$1" ;;
	esac
}

ko=${VHDCRYPT_KO:-$src/build/$kver/dm-vhdcrypt.ko}
tool=${VHDCRYPT_TOOL:-$src/userspace/vhdcryptsetup}
while [ $# -gt 0 ]; do
	case $1 in
	--ko) ko=$2; shift 2 ;;
	--tool) tool=$2; shift 2 ;;
	-h | --help) sed -n '4,35s/^# \{0,1\}//p' "$0"; exit 0 ;;
	--) shift; break ;;
	-*) echo "run_tests.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done

export VHDCRYPT_KO VHDCRYPT_TOOL VHDCRYPT_SRC=$src
export VHDCRYPT_FIXTURES=$src/selftests/fixtures TMPDIR=${TMPDIR:-/tmp}
VHDCRYPT_KO=$(abspath "$ko")
VHDCRYPT_TOOL=$(abspath "$tool")

# make check (all tests, not VHDCRYPT_FULL) spreads some tests and cases over
# the kernels (lib-img.sh's run_case, "check-kernels" below).
export VHDCRYPT_CHECK_SPLIT=0
tests=()
if [ $# -eq 0 ]; then
	[ "${VHDCRYPT_FULL:-0}" = 1 ] || VHDCRYPT_CHECK_SPLIT=1
	for t in "$src"/selftests/[0-9]*.sh; do
		[ -e "$t" ] && tests+=("$t")
	done
else
	for t in "$@"; do
		case $t in
		*/*) tests+=("$(abspath "$t")") ;;
		*.sh) tests+=("$src/selftests/$t") ;;
		*) tests+=("$src/selftests/$t.sh") ;;
		esac
	done
fi

scale=${VHDCRYPT_TIMEOUT_SCALE:-1}
case $scale in '' | *[!0-9]* | 0)
	echo "run_tests.sh: VHDCRYPT_TIMEOUT_SCALE wants a positive number, not '$scale'" >&2
	exit 2
	;;
esac

work=$(mktemp -d "$TMPDIR/run_tests.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

echo "# kernel $kver"
echo "# VHDCRYPT_KO=$VHDCRYPT_KO$([ -f "$VHDCRYPT_KO" ] || echo ' (missing)')"
echo "# VHDCRYPT_TOOL=$VHDCRYPT_TOOL$([ -x "$VHDCRYPT_TOOL" ] || echo ' (missing)')"

# dm and loop devices present now; a test that leaves more behind is named.
devices() {
	dmsetup ls 2>/dev/null | awk '$1 != "No" { print "dm:" $1 }'
	losetup -n -O NAME 2>/dev/null | sed 's/^/loop:/'
}

# kmemleak_scan: print the objects leaked since the last call and forget
# them (mark them grey, never reported again).  kmemleak logs
# "N new suspected memory leaks" in dmesg, which dmesg-check catches; it only
# reports objects older than 5 s, hence the wait.
kmemleak=/sys/kernel/debug/kmemleak
[ -w "$kmemleak" ] || kmemleak=
kmemleak_scan() {
	[ -n "$kmemleak" ] || return 0
	sleep 5
	echo scan >"$kmemleak"
	cat "$kmemleak"
	echo clear >"$kmemleak"
}
if [ -n "$kmemleak" ]; then
	leaks=$(kmemleak_scan)
	[ -z "$leaks" ] || printf '%s\n' "kmemleak before the tests:" "$leaks" | sed 's/^/# /'
fi

total_pass=0 total_fail=0 total_skip=0 total_known=0 seq=0
for t in "${tests[@]}"; do
	name=$(basename "$t")
	seq=$((seq + 1))
	echo
	if [ ! -f "$t" ]; then
		echo "=== $name: no such test"
		total_fail=$((total_fail + 1))
		continue
	fi
	# "# check-kernels=6.12": in the default run of make check (all tests,
	# not VHDCRYPT_FULL) only on a kernel whose release starts so; the
	# tool's tests are spread over the kernels to keep make check short.
	only=$(sed -n '1,10s/^#[[:space:]]*check-kernels=\([^[:space:]]*\).*/\1/p' "$t" | head -n 1)
	if [ "$VHDCRYPT_CHECK_SPLIT" = 1 ] && [ -n "$only" ] && [ "${kver#"$only".}" = "$kver" ]; then
		echo "=== $name: SKIP (make check runs it on $only only; make check-full on every kernel)"
		total_skip=$((total_skip + 1))
		continue
	fi
	limit=$(sed -n '1,10s/^#[[:space:]]*timeout=\([0-9][0-9]*\).*/\1/p' "$t" | head -n 1)
	limit=$((${limit:-300} * scale))
	echo "=== $name (timeout ${limit}s)"

	devices | sort >"$work/before"
	mark="run_tests: #$seq start $name"
	echo "$mark" >/dev/kmsg 2>/dev/null
	run=("$t")
	[ -x "$t" ] || run=(bash "$t")
	start=$SECONDS
	timeout -k 10 "$limit" "${run[@]}" </dev/null 2>&1 | tee "$work/out" | sed -u 's/^/    /'
	rc=${PIPESTATUS[0]}
	secs=$((SECONDS - start))
	echo "run_tests: #$seq end $name (exit $rc)" >/dev/kmsg 2>/dev/null

	# pass fail skip plan (-1: no plan line) known failures (# TODO)
	read -r p f s plan x < <(awk '
		/^not ok / { if ($0 ~ /#[[:space:]]*TODO/) x++; else f++; next }
		/^ok / { if ($0 ~ /#[[:space:]]*[Ss][Kk][Ii][Pp]/) s++; else p++; next }
		/^1\.\.[0-9]+/ { split($1, a, "\\.\\."); plan = a[2] }
		END { print p + 0, f + 0, s + 0, (plan == "" ? -1 : plan), x + 0 }' "$work/out")
	ran=$((p + f + s + x))
	why=
	case $rc in
	0) [ "$ran" -gt 0 ] || p=1 ;;
	4) [ "$ran" -gt 0 ] || s=1 ;;
	1) [ "$f" -gt 0 ] || { f=$((f + 1)); why="exit status 1 without a failed test"; } ;;
	124 | 137) f=$((f + 1)); why="TIMEOUT after ${limit}s" ;;
	*) f=$((f + 1)); why="exit status $rc (crashed?)" ;;
	esac
	if [ "$plan" -gt 0 ] && [ "$ran" -lt "$plan" ] && [ -z "$why" ]; then
		f=$((f + 1))
		why="planned $plan tests, ran $ran"
	fi
	leaks=$(kmemleak_scan)
	problems=$(dmesg 2>/dev/null | awk -v m="$mark" 'index($0, m) { on = 1 } on' |
		"$src/scripts/dmesg-check")
	if [ -n "$problems" ]; then
		f=$((f + 1))
		why="${why:+$why; }kernel problems:"$'\n'"$problems"
	fi
	[ -z "$leaks" ] || why="$why"$'\n'"kmemleak:"$'\n'"$leaks"
	devices | sort >"$work/after"
	leftover=$(comm -13 "$work/before" "$work/after" | tr '\n' ' ')

	[ -z "$why" ] || printf '%s\n' "$why" | sed 's/^/    # /'
	[ -z "$leftover" ] || echo "    # warning: $name left behind: $leftover"
	if [ "$f" -gt 0 ]; then verdict=FAIL; elif [ "$p" -eq 0 ]; then verdict=SKIP; else verdict=ok; fi
	known=
	[ "$x" -eq 0 ] || known=", $x known failures"
	echo "=== $name: $verdict ($p passed, $f failed, $s skipped$known, ${secs}s)"
	total_pass=$((total_pass + p)) total_fail=$((total_fail + f)) total_skip=$((total_skip + s))
	total_known=$((total_known + x))
done

summary="vm $kver: $total_pass passed, $total_fail failed, $total_skip skipped"
echo
[ "$total_known" -eq 0 ] || echo "vm $kver: $total_known known failures (TAP # TODO, see above)"
echo "$summary"
if [ -n "${VM_WORKDIR:-}" ] && [ -d "$VM_WORKDIR" ]; then
	echo "$summary" >"$VM_WORKDIR/selftests-summary.txt"
fi
[ "$total_fail" -eq 0 ]
