#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Run the vhdcryptsetup host unit tests (arguments: test programs) and the
# CLI tests as TAP 13 subtests, then print "N passed, N failed" (counting
# the individual checks).
cd "$(dirname "$0")/.." || exit 1
pass=0 fail=0 n=0 bad=0
echo "TAP version 13"
for t in "$@" tests/test-cli.sh tests/test-create.sh; do
	[ -x "$t" ] || continue
	n=$((n + 1))
	echo "# Subtest: $t"
	out=$("./$t" 2>&1)
	rc=$?
	printf '%s\n' "$out" | sed 's/^/    /'
	p=$(printf '%s\n' "$out" | grep -c '^ok ')
	f=$(printf '%s\n' "$out" | grep -c '^not ok ')
	pass=$((pass + p))
	fail=$((fail + f))
	if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "    # $t exited with status $rc"
		fail=$((fail + 1))
	fi
	if [ $rc -eq 0 ] && [ "$f" -eq 0 ]; then
		echo "ok $n - $t"
	else
		echo "not ok $n - $t"
		bad=$((bad + 1))
	fi
done
echo "1..$n"
echo "$pass passed, $fail failed"
[ $bad -eq 0 ]
