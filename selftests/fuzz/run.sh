#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# run.sh HARNESS SECONDS smoke|fuzz: one single-process libFuzzer run of
# build/fuzz_HARNESS over corpus/HARNESS and regress/HARNESS (every input
# there runs first), then SECONDS of fuzzing. Prints one TAP line; the log
# is build/HARNESS.MODE.log, its last stats line build/HARNESS.MODE.stats.
# smoke: new inputs go to a fresh build/smoke/HARNESS; fuzz: they collect
# in build/corpus/HARNESS across runs.
set -u
h=$1 secs=$2 mode=$3
cd "$(dirname "$0")" || exit 2
b=build
work=$b/corpus/$h
if [ "$mode" = smoke ]; then
	work=$b/smoke/$h
	rm -rf "$work"
fi
mkdir -p "$work"
log=$b/$h.$mode.log
dirs=corpus/$h
# vhdcryptsetup reads the same images as the whole-image harnesses
[ "$h" = tool ] && dirs="corpus/vhd_image corpus/qcow2_image"
[ -d "regress/$h" ] && dirs="$dirs regress/$h"
dict=
[ -f "$h.dict" ] && dict=-dict=$h.dict

# shellcheck disable=SC2086 # $dirs and $dict are lists of words
if nice "./$b/fuzz_$h" -max_total_time="$secs" -max_len="${MAX_LEN:-65536}" \
	-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$b/crash-$h-" $dict "$work" $dirs >"$log" 2>&1; then
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	secs_run=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	echo "$h execs=$execs seconds=$secs_run cov=$cov ft=$ft" >"$b/$h.$mode.stats"
	echo "ok - fuzz_$h: $execs execs in $secs_run s, cov $cov, ft $ft, no crash"
else
	echo "not ok - fuzz_$h: crashed or failed (log $PWD/$log)"
	grep -E 'ERROR|SUMMARY|invariant|runtime error|Test unit written|timeout' \
		"$log" | head -n 20 | sed 's/^/# /'
	exit 1
fi
