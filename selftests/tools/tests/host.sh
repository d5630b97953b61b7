#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# tests/host.sh [BINDIR]: host tests of replay-log, wlog and vhdcheck (TAP).
# BINDIR holds replay-log and wlog (default: selftests/tools; "make test"
# passes build/san, the ASan/UBSan builds).  Needs python3 with
# python3-cryptography, qemu-img/qemu-io and xz; no root, no kernel module.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
VHDCRYPT_SRC=$(cd "$here/../.." && pwd -P)
export VHDCRYPT_SRC
# shellcheck source=../../lib.sh
. "$VHDCRYPT_SRC/selftests/lib.sh"

bin=$(cd "${1:-$here}" && pwd -P)
RL=$bin/replay-log
WLOG=$bin/wlog
VHDCHECK=$here/vhdcheck
MKLOG=$here/tests/mklog.py
IMGTOOL=$VHDCRYPT_SRC/selftests/imgtool.py
FIX=$VHDCRYPT_SRC/selftests/fixtures/openxt
T=$SELFTEST_TMP
# Debian's python3 (python3-cryptography); a shim earlier in PATH may be slow.
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3

# A sanitizer report or a signal is a crash even where failure is expected.
# run_rc CMD...: runs CMD with output in $T/out, fails on a crash, prints
# the exit status.
run_rc() {
	local rc
	"$@" >"$T/out" 2>&1
	rc=$?
	if [ "$rc" -ge 128 ] || grep -q -e 'Sanitizer' -e 'runtime error' "$T/out"; then
		echo "crash ($rc): $*" >>"$T/crashes"
		sed 's/^/    /' "$T/out" | head -n 20 >>"$T/crashes"
	fi
	echo "$rc"
}

# expect_rc NAME RC PATTERN CMD...: CMD exits RC and its output matches PATTERN.
expect_rc() {
	local name=$1 want=$2 pat=$3 rc
	shift 3
	rc=$(run_rc "$@")
	if [ "$rc" = "$want" ] && grep -q -e "$pat" "$T/out"; then
		tap_ok "$name"
	else
		tap_fail "$name" "command: $*" "exit $rc (want $want), output:" "$(head -n 5 "$T/out")"
	fi
}

sha() {
	local s
	s=$(sha256sum <"$1")
	echo "${s%% *}"
}

# --------------------------------------------------------------- replay-log

# replay_walk NAME LOG EXPECTED_DIR DEV_BYTES: from scratch to every point,
# and one target walked forward point by point, against the model's hashes.
replay_walk() {
	local name=$1 log=$2 exp=$3 bytes=$4 n i bad=0 prev=0
	n=$(($(wc -l <"$exp/sha256") - 1))
	rm -f "$T/walk.img"
	truncate -s "$bytes" "$T/walk.img"
	for ((i = 0; i <= n; i++)); do
		rm -f "$T/fresh.img"
		truncate -s "$bytes" "$T/fresh.img"
		"$RL" replay "$log" "$T/fresh.img" --to "$i" >>"$T/walk.log" 2>&1 || bad=$((bad + 1))
		[ "$(sha "$T/fresh.img")" = "$(sed -n "$((i + 1))p" "$exp/sha256")" ] ||
			{ bad=$((bad + 1)); echo "fresh replay to $i differs" >>"$T/walk.log"; }
		"$RL" replay "$log" "$T/walk.img" --from "$prev" --to "$i" >>"$T/walk.log" 2>&1 ||
			bad=$((bad + 1))
		[ "$(sha "$T/walk.img")" = "$(sed -n "$((i + 1))p" "$exp/sha256")" ] ||
			{ bad=$((bad + 1)); echo "walk $prev..$i differs" >>"$T/walk.log"; }
		prev=$i
	done
	if [ "$bad" -eq 0 ]; then
		tap_ok "$name: replay to each of $n+1 points, fresh and incremental"
	else
		tap_fail "$name: $bad replays wrong" "$(head -n 5 "$T/walk.log")"
	fi
}

test_replay_format() {
	local ss=$1 dev=$2 log=$T/log$1 exp=$T/exp$1 name mark idx ok=1
	mkdir -p "$exp"
	"$PY" "$MKLOG" make "$log" "$ss" 150 "$ss" "$dev" "$exp"
	tap_check "sector size $ss: list" cmp "$exp/list" <("$RL" list "$log")
	tap_check "sector size $ss: flushes" cmp "$exp/flushes" <("$RL" flushes "$log")
	tap_check "sector size $ss: marks" cmp "$exp/marks" <("$RL" marks "$log")
	expect_rc "sector size $ss: info" 0 "^entries: 150$" "$RL" info "$log"
	replay_walk "sector size $ss" "$log" "$exp" $((ss * dev))

	# mark:NAME, flush:K and end stop where the model says.
	while read -r mark idx; do
		truncate -s 0 "$T/m.img"
		truncate -s $((ss * dev)) "$T/m.img"
		"$RL" replay "$log" "$T/m.img" --to "mark:$mark" &&
			[ "$(sha "$T/m.img")" = "$(sed -n "$((idx + 2))p" "$exp/sha256")" ] ||
			{ ok=0; tap_diag "mark:$mark (entry $idx) wrong"; }
	done <"$exp/points"
	tap_check "sector size $ss: --to mark:NAME for $(wc -l <"$exp/points") marks" test "$ok" = 1
	ok=1
	for name in 1 2 5; do
		idx=$(sed -n "${name}p" "$exp/flushes")
		truncate -s 0 "$T/m.img"
		truncate -s $((ss * dev)) "$T/m.img"
		"$RL" replay "$log" "$T/m.img" --to "flush:$name" &&
			[ "$(sha "$T/m.img")" = "$(sed -n "$((idx + 2))p" "$exp/sha256")" ] || ok=0
	done
	truncate -s 0 "$T/m.img"
	truncate -s $((ss * dev)) "$T/m.img"
	"$RL" replay "$log" "$T/m.img" --to end &&
		[ "$(sha "$T/m.img")" = "$(tail -n 1 "$exp/sha256")" ] || ok=0
	tap_check "sector size $ss: --to flush:K and end" test "$ok" = 1
}

test_replay_details() {
	local log=$T/log512 exp=$T/exp512 first second
	# A duplicate mark: from past its first occurrence, the next one is found.
	first=$(awk '$2 == "dup" { print $1; exit }' "$exp/marks")
	second=$(awk '$2 == "dup" { n++ } n == 2 { print $1; exit }' "$exp/marks")
	if [ -n "$second" ]; then
		truncate -s 1M "$T/d.img"
		expect_rc "duplicate mark: --from after the first finds the second" 0 \
			"entries $((first + 1))\\.\\.$((second + 1)) " \
			"$RL" replay "$log" "$T/d.img" --from $((first + 1)) --to mark:dup -v
	else
		tap_skip "duplicate mark" "the random log has only one"
	fi

	# Discards punch holes in a regular file.
	"$PY" - "$T/disc.log" <<-'EOF'
		import struct, sys
		ss = 512
		sb = struct.pack("<QQQI", 0x6a736677736872, 1, 2, ss).ljust(ss, b"\0")
		w = struct.pack("<QQQQ", 0, 2048, 0, 0).ljust(ss, b"\0") + b"\xaa" * 2048 * ss
		d = struct.pack("<QQQQ", 0, 2048, 4, 0).ljust(ss, b"\0")
		open(sys.argv[1], "wb").write(sb + w + d)
	EOF
	truncate -s 0 "$T/disc.img"
	truncate -s 2M "$T/disc.img"
	"$RL" replay "$T/disc.log" "$T/disc.img" --to 1
	first=$(stat -c %b "$T/disc.img")
	"$RL" replay "$T/disc.log" "$T/disc.img" --from 1 --to end
	second=$(stat -c %b "$T/disc.img")
	if cmp -s "$T/disc.img" <(head -c 2M /dev/zero) && [ "$second" -lt "$first" ]; then
		tap_ok "discard replays as a hole ($first -> $second blocks)"
	else
		tap_fail "discard replays as a hole" "blocks $first -> $second"
	fi
}

test_replay_errors() {
	local log=$T/log512 bad=$T/bad.log size i len
	size=$(stat -c %s "$log")
	truncate -s 1M "$T/e.img"

	expect_rc "usage: no arguments" 2 "usage" "$RL"
	expect_rc "usage: replay without --to" 2 "needs --to" "$RL" replay "$log" "$T/e.img"
	expect_rc "usage: flush:0" 2 "needs --to" "$RL" replay "$log" "$T/e.img" --to flush:0
	expect_rc "usage: bad --from" 2 "bad --from" "$RL" replay "$log" "$T/e.img" --from x --to 1
	expect_rc "missing log" 1 "cannot open log" "$RL" list "$T/nonexistent"
	expect_rc "--to past the end" 1 "does not exist" "$RL" replay "$log" "$T/e.img" --to 100000
	expect_rc "--to before --from" 1 "before --from" "$RL" replay "$log" "$T/e.img" --from 10 --to 5
	expect_rc "unknown mark" 1 'no mark "nope"' "$RL" replay "$log" "$T/e.img" --to mark:nope
	expect_rc "too many flushes" 1 "only [0-9]* flushes" "$RL" replay "$log" "$T/e.img" --to flush:100000
	truncate -s 4096 "$T/small.img"
	expect_rc "target too small" 1 "has only 4096 bytes" "$RL" replay "$log" "$T/small.img" --to end

	cp "$log" "$bad"; "$PY" "$MKLOG" poke "$bad" 0 0x1234
	expect_rc "bad magic" 1 "not a dm-log-writes log" "$RL" list "$bad"
	cp "$log" "$bad"; "$PY" "$MKLOG" poke "$bad" 8 2
	expect_rc "bad version" 1 "unsupported log version 2" "$RL" list "$bad"
	cp "$log" "$bad"; "$PY" "$MKLOG" poke "$bad" 24 1000 4
	expect_rc "bad sector size" 1 "bad sector size 1000" "$RL" info "$bad"
	cp "$log" "$bad"; "$PY" "$MKLOG" poke "$bad" 16 0xffffffffffff
	expect_rc "absurd entry count" 1 "truncated or corrupt" "$RL" info "$bad"
	head -c "$("$RL" info "$log" | awk '$1 == "bytes" { print $3 }')" "$log" >"$bad"
	"$PY" "$MKLOG" poke "$bad" 16 151
	expect_rc "entry count past the data" 1 "truncated: entry 150 " "$RL" list "$bad"
	# Entry 0's header is sector 1: sector, nr_sectors, flags, data_len.
	cp "$log" "$bad"; "$PY" "$MKLOG" poke "$bad" $((512 + 8)) 0x7fffffffffffffff
	"$PY" "$MKLOG" poke "$bad" $((512 + 16)) 0
	expect_rc "huge write" 1 "truncated: entry 0" "$RL" replay "$bad" "$T/e.img" --to end
	"$PY" "$MKLOG" poke "$bad" $((512 + 16)) 4
	"$PY" "$MKLOG" poke "$bad" 512 0x7fffffffffffffff
	expect_rc "discard past 2^64 bytes" 1 "corrupt: entry 0" "$RL" list "$bad"
	cp "$log" "$bad"; "$PY" "$MKLOG" poke "$bad" $((512 + 16)) 8
	"$PY" "$MKLOG" poke "$bad" $((512 + 24)) 481
	expect_rc "mark longer than its sector" 1 "is a mark of 481 bytes" "$RL" marks "$bad"
	"$PY" "$MKLOG" poke "$bad" $((512 + 24)) 480
	expect_rc "mark filling its sector" 0 "" "$RL" marks "$bad"

	# Truncated logs: a clear error for every length, never a crash.
	: >"$T/wrong"
	for ((i = 0; i < 60; i++)); do
		len=$(((size * i) / 60 + (i % 7) * 37))
		head -c "$len" "$log" >"$bad"
		for cmd in list info; do
			rc=$(run_rc "$RL" "$cmd" "$bad")
			[ "$rc" = 1 ] || echo "length $len: $cmd exit $rc" >>"$T/wrong"
		done
		rc=$(run_rc "$RL" replay "$bad" "$T/e.img" --to end)
		[ "$rc" = 1 ] || echo "length $len: replay exit $rc" >>"$T/wrong"
	done
	tap_check "60 truncated logs: exit 1" test ! -s "$T/wrong"

	# Random byte damage in the first 64 KiB: exit 0 or 1, never a crash.
	: >"$T/wrong"
	mkdir "$T/damaged"
	"$PY" - "$log" "$T/damaged" <<-'EOF'
		import random, sys
		log = open(sys.argv[1], "rb").read()
		for i in range(100):
		    r, b = random.Random(i), bytearray(log)
		    for _ in range(r.randint(1, 8)):
		        b[r.randrange(65536)] = r.randrange(256)
		    open("%s/%d" % (sys.argv[2], i), "wb").write(b)
	EOF
	for ((i = 0; i < 100; i++)); do
		bad=$T/damaged/$i
		rc="$(run_rc "$RL" list "$bad") $(run_rc "$RL" replay "$bad" "$T/e.img" --to end)"
		rc="$rc $(run_rc "$RL" replay "$bad" "$T/e.img" --to mark:m3)"
		case $rc in *[!01\ ]*) echo "damage $i: exit statuses $rc" >>"$T/wrong" ;; esac
	done
	tap_check "100 randomly damaged logs: exit 0 or 1" test ! -s "$T/wrong"
}

# --------------------------------------------------------------------- wlog

test_wlog() {
	local img=$T/w.img j=$T/w.journal s
	truncate -s 32M "$img"
	tap_check "wlog run: 4 threads, buffered" \
		"$WLOG" run "$img" --journal "$j" --writes 1500 --threads 4 --flush-every 10 --seed 7
	tap_check "wlog check --at end" "$WLOG" check "$j" "$img"
	tap_check "journal: sizes 512 B to 256 KiB, not only 4 KiB multiples" awk '
		$1 == "submit" { n++; if ($4 % 8) odd++; if ($4 == 1) one++; if ($4 > 256) big++ }
		END { exit !(n == 1500 && odd > 100 && one > 10 && big > 10) }' "$j"
	tap_check "journal: many flushes" awk '$1 == "flush-done" { n++ } END { exit !(n > 50) }' "$j"

	# Damage: a lost write, garbage, data of the wrong sector.
	s=$(awk '$1 == "submit" { print $3 + int($4 / 2); exit }' "$j")
	cp --sparse=always "$img" "$T/d.img"
	dd if=/dev/zero of="$T/d.img" bs=512 seek="$s" count=1 conv=notrunc status=none
	expect_rc "wlog check: zeroed sector" 1 "^sector $s .*lost\\|stale" "$WLOG" check "$j" "$T/d.img"
	cp --sparse=always "$img" "$T/d.img"
	head -c 512 /dev/urandom | dd of="$T/d.img" bs=512 seek="$s" conv=notrunc status=none
	expect_rc "wlog check: garbage sector" 1 "^sector $s .*garbage" "$WLOG" check "$j" "$T/d.img"
	cp --sparse=always "$img" "$T/d.img"
	dd if="$img" of="$T/d.img" bs=512 skip="$s" seek=$((s + 1)) count=1 conv=notrunc status=none
	expect_rc "wlog check: sector moved" 1 "misplaced: holds what write [0-9]* wrote for sector $s" "$WLOG" check "$j" "$T/d.img"

	# Non-zero initial content.
	head -c 32M /dev/urandom >"$T/init.img"
	cp "$T/init.img" "$img"
	"$WLOG" run "$img" --journal "$j" --writes 200 --sectors 8192 --first 1024 --seed 3
	tap_check "wlog check --initial FILE" "$WLOG" check "$j" "$img" --initial "$T/init.img"
	expect_rc "wlog check: initial content is not zeros" 1 "garbage" "$WLOG" check "$j" "$img"

	# Snapshots after each flush (one writer, so each is exactly "at mark K").
	truncate -s 0 "$img"
	truncate -s 8M "$img"
	tap_check "wlog run --on-flush: snapshot after each flush" \
		"$WLOG" run "$img" --journal "$j" --writes 300 --flush-every 30 --fsync \
		--mark-prefix snap- --on-flush "cp --sparse=always $img $T/\$1.img"
	local k n ok=1
	n=$(awk '$1 == "mark" { n++ } END { print n }' "$j")
	for ((k = 1; k <= n; k++)); do
		"$WLOG" check "$j" "$T/snap-$k.img" --at "mark:snap-$k" >"$T/out" 2>&1 ||
			{ ok=0; tap_diag "snap-$k" "$(cat "$T/out")"; }
		"$WLOG" check "$j" "$T/snap-$k.img" --after "flush:$k" --before end >/dev/null || ok=0
	done
	tap_check "$n snapshots pass --at mark:K" test "$ok" = 1
	expect_rc "snapshot 2 is missing writes of flush 3" 1 "lost\\|stale" \
		"$WLOG" check "$j" "$T/snap-2.img" --at mark:snap-3
	expect_rc "snapshot 3 holds writes issued after mark 2" 1 "too new" \
		"$WLOG" check "$j" "$T/snap-3.img" --at mark:snap-2
	tap_check "snapshot 3 is fine after mark 2 without an upper bound" \
		"$WLOG" check "$j" "$T/snap-3.img" --after mark:snap-2
	tap_check "snapshot 2 is fine between start and mark 2" \
		"$WLOG" check "$j" "$T/snap-2.img" --after start --before mark:snap-2

	# Stale data: a sector of the final image replaced by an older write's.
	s=$("$PY" - "$T/snap-1.img" "$img" <<-'EOF'
		import sys
		a, b = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
		for i in range(0, len(a), 512):
		    if a[i:i+4] == b"WLOG" and b[i:i+4] == b"WLOG" and a[i:i+512] != b[i:i+512]:
		        print(i // 512); break
	EOF
	)
	cp "$img" "$T/d.img"
	dd if="$T/snap-1.img" of="$T/d.img" bs=512 skip="$s" seek="$s" count=1 conv=notrunc status=none
	expect_rc "wlog check: older data" 1 "^sector $s .*stale" "$WLOG" check "$j" "$T/d.img"

	# O_DIRECT on a regular file (needs a file system that supports it).
	rm -f "$img"
	truncate -s 8M "$img"
	if "$WLOG" run "$img" --journal "$j" --writes 300 --threads 3 --direct \
		--min-size 4k --max-size 64k >"$T/out" 2>&1; then
		tap_check "wlog run --direct, check" "$WLOG" check "$j" "$img" --at end
	else
		tap_skip "wlog run --direct" "$(head -n 1 "$T/out")"
	fi

	expect_rc "wlog: usage" 2 "usage" "$WLOG"
	expect_rc "wlog run: no --journal" 2 "needs --journal" "$WLOG" run "$img"
	expect_rc "wlog run: bad size" 2 "multiples of 512" "$WLOG" run "$img" --journal "$j" --max-size 1000
	expect_rc "wlog run: region outside" 2 "does not fit" "$WLOG" run "$img" --journal "$j" --first 100000000
	expect_rc "wlog check: unknown mark" 2 "no such mark" "$WLOG" check "$j" "$img" --at mark:x
	expect_rc "wlog check: flush out of range" 2 "flushes 1\\.\\." "$WLOG" check "$j" "$img" --at flush:100000
	printf 'wlog-journal 1\nseed 1\nregion 0 100\nsubmit 2 0 1\n' >"$T/bad.journal"
	expect_rc "wlog check: corrupt journal" 2 "line 4 is not valid" "$WLOG" check "$T/bad.journal" "$img"
	printf 'wlog-journal 1\nseed 1\nregion 0 100000000\n' >"$T/big.journal"
	expect_rc "wlog check: device smaller than the region" 2 "region ends" \
		"$WLOG" check "$T/big.journal" "$img" --after start
	head -n 50 "$j" >"$T/part.journal"
	expect_rc "wlog check: incomplete journal, --at end" 2 "no \"end\" line" "$WLOG" check "$T/part.journal" "$img"
}

# ----------------------------------------------------------------- vhdcheck

# QEMU's VHDs: dynamic and fixed, compared with qemu-img convert.
test_vhdcheck_qemu() {
	local f
	if ! command -v qemu-io >/dev/null; then
		tap_skip "vhdcheck on qemu-img VHDs" "qemu-io not installed (qemu-utils)"
		return
	fi
	qemu-img create -q -f vpc "$T/q.vhd" 48M
	for f in "write -P 0x11 0 3k" "write -P 0x22 2047k 4k" "write -P 0x33 10m 1m" \
		"write -P 0x44 48127k 1k"; do
		qemu-io -f vpc -c "$f" "$T/q.vhd" >/dev/null
	done
	qemu-img create -q -f vpc -o subformat=fixed "$T/qf.vhd" 8M
	qemu-io -f vpc -c "write -P 0x55 1m 7k" "$T/qf.vhd" >/dev/null
	for f in q qf; do
		tap_check "vhdcheck check: qemu-img $f.vhd" "$PY" "$VHDCHECK" check --clean "$T/$f.vhd"
		qemu-img convert -f vpc -O raw "$T/$f.vhd" "$T/$f.raw"
		"$PY" "$VHDCHECK" decode "$T/$f.vhd" -o "$T/$f.dec"
		# qemu sizes "qemu"-created images by CHS: compare its length.
		truncate -s "$(stat -c %s "$T/$f.raw")" "$T/$f.dec"
		tap_check "vhdcheck decode: qemu-img $f.vhd equals qemu-img convert" cmp "$T/$f.raw" "$T/$f.dec"
	done
}


# vhd_expect_damage NAME PATTERN FILE [CHECK-ARGS...]
vhd_expect_damage() {
	local name=$1 pat=$2 file=$3
	shift 3
	expect_rc "vhdcheck: $name" 1 "$pat" "$PY" "$VHDCHECK" check "$@" "$file"
}

test_vhdcheck() {
	local d=$T/fx f img first count sum got alone bad=0 n=0 bat
	mkdir -p "$d"
	for f in "$FIX"/*.vhd.xz; do
		xz -dc "$f" | cp --sparse=always /dev/stdin "$d/$(basename "$f" .xz)"
	done
	tap_check "vhdcheck check: every OpenXT fixture" "$PY" "$VHDCHECK" check "$d"/*.vhd
	tap_check "vhdcheck check --clean: every OpenXT fixture" "$PY" "$VHDCHECK" check --clean "$d"/*.vhd

	while read -r img first count sum; do
		case $img in '#'*) continue ;; esac
		alone=
		case $img in alone/*) img=${img#alone/} alone=--alone ;; esac
		n=$((n + 1))
		got=$(cd "$d" && "$PY" "$VHDCHECK" decode "$img" --key-dir "$FIX/keys" $alone \
			--range "$first" "$count" --sha256 2>&1)
		[ "$got" = "$sum" ] || { bad=$((bad + 1)); tap_diag "$img $alone $first $count: $got"; }
	done <"$FIX/expected.sha256"
	tap_check "vhdcheck decode: all $n ranges of expected.sha256 ($bad differ)" test "$bad" = 0

	# -o FILE against expected.py, parents given explicitly.
	"$PY" "$FIX/expected.py" grandchild.vhd --out "$T/exp.raw"
	(cd / && "$PY" "$VHDCHECK" decode "$d/grandchild.vhd" --key-dir "$FIX/keys" \
		--parent "$d/child-inherit.vhd" --parent "$d/parent.vhd" -o "$T/got.raw")
	tap_check "vhdcheck decode -o, --parent: grandchild.vhd equals expected.py" cmp "$T/exp.raw" "$T/got.raw"

	# The negative key directories of the fixtures (tapdisk's rules).
	while read -r img f sum; do
		expect_rc "vhdcheck decode: $f refused" 1 "$sum" \
			"$PY" "$VHDCHECK" decode "$d/$img.vhd" --key-dir "$FIX/$f" --sha256
	done <<-EOF
		aes256xts keys-wrong does not match
		plain keys-unkeyed without key hash
		aes128xts keys-prefer512 does not match
		aes256xts-nonce keys-truncated no key file
		child-inherit keys-inherit-keyfile without key hash
		child-own keys-noparent no key file
	EOF
	expect_rc "vhdcheck decode: keys-trailing-newline works" 0 \
		"$(grep '^aes128xts-nonce.vhd' "$FIX/expected.sha256" | cut -d' ' -f4)" \
		"$PY" "$VHDCHECK" decode "$d/aes128xts-nonce.vhd" --key-dir "$FIX/keys-trailing-newline" --sha256
	expect_rc "vhdcheck decode --key-file" 0 \
		"$(grep '^aes128xts.vhd' "$FIX/expected.sha256" | cut -d' ' -f4)" \
		"$PY" "$VHDCHECK" decode "$d/aes128xts.vhd" --sha256 \
		--key-file "$FIX/keys/aes128xts,aes-xts-plain,256.key"
	# Without a key hash (as from qemu-img): --key-file works, a key dir does not.
	mkdir "$T/nohash"
	cp "$d/aes128xts.vhd" "$T/nohash/aes128xts.vhd"
	"$PY" "$IMGTOOL" poke "$T/nohash/aes128xts.vhd" $((0x800 + 29)) 1 0
	expect_rc "vhdcheck decode --key-file: image without key hash" 0 \
		"$(grep '^aes128xts.vhd' "$FIX/expected.sha256" | cut -d' ' -f4)" \
		"$PY" "$VHDCHECK" decode "$T/nohash/aes128xts.vhd" --sha256 \
		--key-file "$FIX/keys/aes128xts,aes-xts-plain,256.key"
	expect_rc "vhdcheck decode --key-dir: image without key hash refused" 1 "without key hash" \
		"$PY" "$VHDCHECK" decode "$T/nohash/aes128xts.vhd" --sha256 --key-dir "$FIX/keys"
	expect_rc "vhdcheck decode: key dir list" 0 "^[0-9a-f]\\{64\\}$" \
		"$PY" "$VHDCHECK" decode "$d/child-own.vhd" --key-dir "$FIX/keys-noparent,$FIX/keys" --sha256


	# Damage.  parent.vhd: BAT at 1536, batmap header 2048, map 2560;
	# block 0 at sector 7.
	img=$T/dmg.vhd
	cp "$d/parent.vhd" "$img"
	"$PY" "$IMGTOOL" xor "$img" 600 0x01
	vhd_expect_damage "dynamic header checksum" "bad dynamic header checksum" "$img"
	cp "$d/parent.vhd" "$img"
	"$PY" "$IMGTOOL" poke "$img" 1536 4 0x10000000
	vhd_expect_damage "BAT entry past the end" "block 0 .*beyond the end of the file" "$img"
	cp "$d/parent.vhd" "$img"
	bat=$("$PY" "$IMGTOOL" vhd-bat-entry "$img" 0 | awk '{ print $2 }')
	"$PY" "$IMGTOOL" poke "$img" $((1536 + 4 * 39)) 4 "$bat"
	vhd_expect_damage "two blocks at one offset" "block 39 .*overlaps block 0" "$img"
	"$PY" "$IMGTOOL" poke "$img" $((1536 + 4 * 39)) 4 $((bat + 2))
	vhd_expect_damage "overlapping blocks" "block 39 .*overlaps block 0" "$img"
	"$PY" "$IMGTOOL" poke "$img" $((1536 + 4 * 39)) 4 4
	vhd_expect_damage "block over the BAT" "overlaps" "$img"
	cp "$d/parent.vhd" "$img"
	"$PY" "$IMGTOOL" xor "$img" 2600 0x01
	vhd_expect_damage "batmap checksum" "batmap checksum is bad" "$img"
	cp "$d/aes256xts.vhd" "$img"
	"$PY" - "$img" <<-'EOF'
		import sys
		# Mark block 1 (allocated, not full) and block 3 (unallocated) full, and
		# fix the map's checksum.  aes256xts: 50 blocks, map at 0x800+512.
		with open(sys.argv[1], "r+b") as f:
		    f.seek(0xa00); m = bytearray(f.read(512)); m[0] |= 0x50
		    f.seek(0xa00); f.write(m)
		    f.seek(0x800 + 24); f.write((~sum(m) & 0xffffffff).to_bytes(4, "big"))
	EOF
	vhd_expect_damage "batmap full, bitmap not" "marks block 1 full but its bitmap" "$img"
	vhd_expect_damage "batmap full, unallocated" "marks unallocated block 3 full" "$img"
	# (in a directory of its own: the key file name follows the image's)
	mkdir "$T/crash"
	cp "$d/parent.vhd" "$T/crash/parent.vhd"
	img=$T/crash/parent.vhd
	"$PY" "$IMGTOOL" xor "$img" -512 0xff
	expect_rc "vhdcheck: trailing footer gone is fine after a crash" 0 \
		"no valid trailing footer" "$PY" "$VHDCHECK" check "$img"
	vhd_expect_damage "trailing footer gone, --clean" "trailing footer (--clean)" "$img" --clean
	expect_rc "vhdcheck decode: trailing footer gone" 0 \
		"$(grep '^parent.vhd' "$FIX/expected.sha256" | cut -d' ' -f4)" \
		"$PY" "$VHDCHECK" decode "$img" --key-dir "$FIX/keys" --sha256
	img=$T/dmg.vhd
	cp "$d/parent.vhd" "$img"
	"$PY" "$IMGTOOL" xor "$img" 100 0x01
	vhd_expect_damage "footer copy damaged" "copy at offset 0 is damaged" "$img"
	cp "$d/parent.vhd" "$img"
	"$PY" "$IMGTOOL" xor "$img" 0 0xff -512 0xff
	vhd_expect_damage "both footers damaged" "no valid footer" "$img"
	cp "$d/parent.vhd" "$img"
	"$PY" "$IMGTOOL" poke "$img" 24 4 12345
	"$PY" "$IMGTOOL" vhd-fix "$img"
	vhd_expect_damage "footers differ" "differs from the trailing footer" "$img"
	cp "$d/child-own.vhd" "$img"
	"$PY" "$IMGTOOL" poke "$img" $((512 + 576 + 16)) 8 100000000
	"$PY" "$IMGTOOL" vhd-fix "$img"
	vhd_expect_damage "parent locator outside the file" "parent locator 0 .*outside" "$img"
	cp "$d/parent.vhd" "$img"
	truncate -s -1M "$img"
	vhd_expect_damage "truncated in the last block" "beyond the end of the file" "$img"
	cp "$d/parent.vhd" "$img"
	truncate -s +100 "$img"
	vhd_expect_damage "size not a multiple of 512" "not a multiple of 512" "$img"
	expect_rc "vhdcheck decode refuses a damaged image" 1 "is damaged" \
		"$PY" "$VHDCHECK" decode "$img" --key-dir "$FIX/keys" --sha256
	expect_rc "vhdcheck: missing file" 2 "No such file" "$PY" "$VHDCHECK" check "$T/none.vhd"
}

: >"$T/crashes"
test_replay_format 512 2048
test_replay_format 4096 300
test_replay_details
test_replay_errors
test_wlog
test_vhdcheck
test_vhdcheck_qemu
tap_check "no command crashed (signal or sanitizer report)" test ! -s "$T/crashes"
tap_done
