#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=300
#
# The device survives suspend, resume, table reloads (LVM's order: load the
# new table while the old one is live, suspend, resume) and a key wipe/set
# cycle while readers are running, on an encrypted OpenXT chain (the parent
# below reloaded as well) and on an unencrypted qcow2. Reads during all of it
# never fail, and the data is right afterwards.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-img.sh"

need_root
need_cmd xz fio dmsetup losetup od
load_vhdcrypt || skip_all "cannot load dm-vhdcrypt"
tap_plan 9

keys=$FIXTURES/openxt/keys
hexkey() { od -An -tx1 -v "$1" | tr -d ' \n'; }
expected() { awk -v i="$1" '$1 == i { print $4 }' "$FIXTURES/openxt/expected.sha256"; }

for f in parent child-own; do
	xz -dc "$FIXTURES/openxt/$f.vhd.xz" >"$SELFTEST_TMP/$f.vhd"
done
lp=$(new_loop "$SELFTEST_TMP/parent.vhd" --ro)
lc=$(new_loop "$SELFTEST_TMP/child-own.vhd" --ro)
p=st33-parent-$$ c=st33-child-$$
ptable="0 163840 vhdcrypt vhd $lp aes-xts-plain $(hexkey "$keys/parent,aes-xts-plain,512.key") 0"
ckey=$(hexkey "$keys/child-own,aes-xts-plain,256.key")
ctable="0 163840 vhdcrypt vhd $lc aes-xts-plain $ckey 0 1 backing:/dev/mapper/$p"
dm_create "$p" "$ptable" --readonly
dm_create "$c" "$ctable" --readonly

# readers NAME SECONDS: random direct reads of several sizes, in the
# background ($! is fio's pid).
readers() {
	fio --name=r --filename="/dev/mapper/$1" --readonly --rw=randread \
		--bssplit=512/20:4k/40:64k/30:1m/10 --direct=1 --ioengine=libaio \
		--iodepth=8 --numjobs=2 --time_based --runtime="$2" \
		--output="$SELFTEST_TMP/fio-$1.txt" >/dev/null 2>&1 &
}

# cycle NAME TABLE N: suspend/resume, then reload the same table, N times.
cycle() {
	for _ in $(seq 1 "$3"); do
		dmsetup suspend "$1" && dmsetup resume "$1" || return 1
		dmsetup load --readonly "$1" --table "$2" && dmsetup suspend "$1" &&
			dmsetup resume "$1" || return 1
	done
}

readers "$c" 25
pid=$!
sleep 2
tap_check "child: suspend/resume and reload 5 times under reads" cycle "$c" "$ctable" 5
tap_check "parent below: suspend/resume and reload 5 times under reads" \
	cycle "$p" "$ptable" 5

key_cycle() {
	dmsetup suspend "$c" &&
		dmsetup message "$c" 0 key wipe &&
		dmsetup message "$c" 0 key set "$ckey" &&
		dmsetup resume "$c"
}
tap_check "child: key wipe and key set while suspended, under reads" key_cycle
wait "$pid"
rc=$?
tap_check "readers finished without an I/O error (fio exit $rc)" test "$rc" = 0
tap_diag "$(grep -E 'READ:|err=' "$SELFTEST_TMP/fio-$c.txt" | head -n 3)"
tap_check "chain reads the expected data afterwards" \
	test "$(sha256_dev "/dev/mapper/$c")" = "$(expected child-own.vhd)"

# Reload with a different table under reads: the same image through another
# loop device, and back.
img=$SELFTEST_TMP/q.qcow2
qemu-img create -q -f qcow2 "$img" 32M
qemu-io -f qcow2 -c "write -P 0x5a 1M 3M" -c "write -P 0x21 20M 64k" "$img" >/dev/null
qemu-img convert -O raw "$img" "$SELFTEST_TMP/q.raw"
want=$(sha256_dev "$SELFTEST_TMP/q.raw")
lq=$(new_loop "$img" --ro)
lq2=$(new_loop "$img" --ro)
q=st33-q-$$
qtable="0 65536 vhdcrypt qcow2 $lq none - 0"
dm_create "$q" "$qtable" --readonly
readers "$q" 10
pid=$!
sleep 1
swap() {
	dmsetup load --readonly "$q" --table "0 65536 vhdcrypt qcow2 $lq2 none - 0" &&
		dmsetup suspend "$q" && dmsetup resume "$q" &&
		dmsetup load --readonly "$q" --table "$qtable" &&
		dmsetup suspend "$q" && dmsetup resume "$q"
}
tap_check "qcow2: reload with another table and back, under reads" swap
wait "$pid"
rc=$?
tap_check "qcow2 readers finished without an I/O error (fio exit $rc)" test "$rc" = 0
tap_check "qcow2 reads the expected data afterwards" \
	test "$(sha256_dev "/dev/mapper/$q")" = "$want"
no_io_errors() {
	! dmsetup status "$c" "$q" | grep -v ' io_errors:0 '
}
tap_check "status counts no I/O errors" no_io_errors
tap_done
