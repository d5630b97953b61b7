#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=900
# check-kernels=6.12
#
# The I/O path after issue 14: encrypted reads under memory pressure (a
# squeezed memory cgroup) complete with the right data, and decryption and
# deferred metadata work run on two workqueues of their own; legacy AES
# qcow2 (crypt_method 1) reads its compressed clusters as QEMU does (not
# decrypted) while whole_disk decrypts them; the decompressor costs nothing
# until a compressed cluster is read; "key wipe" racing "resume" never lets
# a read return data once the key is wiped; and the worker's remaps
# are traced (block_bio_remap) like DM core's.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-img.sh"

start_image_test qemu-img qemu-io cryptsetup xz fio timeout
OX=$FIXTURES/openxt

majmin() {
	printf '%d:%d\n' "0x$(stat -L -c %t "$1")" "0x$(stat -L -c %T "$1")"
}

status_field() {
	dmsetup status "$CASE_PREFIX-$1" | sed -n "s/.* $2:\([0-9]*\).*/\1/p"
}

# ---------------------------------------------------------------------------
# The two encrypted mappings of 31-io-patterns.sh, smaller

# The OpenXT fixture (AES-256-XTS, virtual-sector IVs).
setup_vhd() {
	local k
	xz -dc "$OX/aes256xts.vhd.xz" >"$WORK/ox.vhd" &&
		python3 "$OX/expected.py" aes256xts.vhd --out "$WORK/ox.exp" || return 1
	k=$(od -An -v -tx1 "$OX/keys/aes256xts,aes-xts-plain,512.key" | tr -d ' \n')
	loop "$WORK/ox.vhd" || return 1
	OX_LOOP=$LOOP OX_KEY=$k
	OX_TABLE="0 $(($(vhd_current_size "$WORK/ox.vhd") / 512)) vhdcrypt vhd $LOOP aes-xts-plain $k 0"
}

# An 8M qcow2+LUKS image with 4k clusters of random data (host-sector IVs).
setup_luks() {
	local src=$WORK/luks.src img=$WORK/luks.qcow2 ck
	truncate -s 8M "$src" &&
		dd if=/dev/urandom of="$src" bs=64k count=32 seek=16 conv=notrunc status=none &&
		dd if=/dev/urandom of="$src" bs=4k count=100 seek=1500 conv=notrunc status=none &&
		qemu_retry qemu-img convert -O qcow2 --object secret,id=sec0,data=pw-34 \
			-o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10,cluster_size=4k \
			"$src" "$img" &&
		qemu-img convert --object secret,id=sec0,data=pw-34 \
			--image-opts "driver=qcow2,file.filename=$img,encrypt.key-secret=sec0" -O raw "$WORK/luks.exp" ||
		return 1
	ck=$(luks_key "$img" pw-34) || return 1
	loop "$img" || return 1
	LUKS_TABLE="0 16384 vhdcrypt qcow2 $LOOP $ck 0 1 iv_sector:host"
}

# ---------------------------------------------------------------------------
# Forward progress and workqueues

# A memory hog for a cgroup: holds about $1 MiB and keeps replacing 4 MiB
# of it; writes "ready" to $2 once it holds it all.
HOG='
import sys, time
open("/proc/self/oom_score_adj", "w").write("1000\n")   # the OOM killer takes it first
chunks, mib = [], 1 << 20
while len(chunks) * 4 < int(sys.argv[1]):
    chunks.append(b"\x5a" * (4 * mib))
open(sys.argv[2], "w").write("ready\n")
while True:
    chunks.pop(0)
    chunks.append(bytes([len(chunks) & 255]) * (4 * mib))
    time.sleep(0.05)
'

# squeezed NAME TABLE EXP HOT...: in a memory cgroup, fio reads O_DIRECT at
# random with 4 jobs while 2 checkers compare random O_DIRECT reads with
# EXP; then a memory hog joins them and the group's memory is squeezed to
# just above what it uses.  All readers complete, right, within 300 s.
squeezed() {
	local name=$1 table=$2 exp=$3 d pids=() hog i cur rc=0
	shift 3
	map "$name" "$table" && cgroup_child memory "st34io-$$-$name" || return 1
	d=$(dev "$name")
	spawn_in_cgroup "$CGROUP" timeout 300 fio --name=squeezed --filename="$d" --readonly \
		--rw=randread --direct=1 --ioengine=libaio --numjobs=4 --iodepth=8 --bsrange=512-64k \
		--runtime=10 --time_based --group_reporting --output="$WORK/fio.out" >/dev/null 2>&1
	pids+=("$SPAWNED")
	for i in 1 2; do
		spawn_in_cgroup "$CGROUP" timeout 300 \
			python3 "$SELFTEST_DIR/randread.py" "$d" "$exp" 100 "$i" "$@"
		pids+=("$SPAWNED")
	done
	spawn_in_cgroup "$CGROUP" python3 -c "$HOG" 48 "$WORK/hog.ready"
	hog=$SPAWNED
	for ((i = 0; i < 120; i++)); do
		[ -s "$WORK/hog.ready" ] && break
		sleep 0.5
	done
	rm -f "$WORK/hog.ready"
	# memory.high makes the group reclaim (and its allocations wait) above
	# it, memory.max is the hard limit: close, not so close that the OOM
	# killer takes a reader.
	cur=$(cat "$CGROUP/memory.current")
	echo $((cur + (2 << 20))) >"$CGROUP/memory.high" &&
		echo $((cur + (24 << 20))) >"$CGROUP/memory.max" || rc=1
	echo "memory.high $(cat "$CGROUP/memory.high"), memory.max $(cat "$CGROUP/memory.max")" \
		"(the hog holds 48 MiB)"
	for i in "${pids[@]}"; do
		wait "$i" || { echo "a reader failed (exit status $?)"; rc=1; }
	done
	grep -E 'err=|READ:' "$WORK/fio.out"
	grep -q 'err= *0' "$WORK/fio.out" || { echo "fio reported errors"; rc=1; }
	grep -E '^(high|max|oom|oom_kill) ' "$CGROUP/memory.events"
	kill "$hog" 2>/dev/null
	wait "$hog"
	return "$rc"
}

# The names of the kernel threads of the WQ_MEM_RECLAIM workqueues: each
# has a rescuer thread named after it, which /proc/PID/comm shows as
# "kworker/R-<name>" in full since 6.9, as <name> cut to 15 characters
# before.  (Workqueues have no sysfs entry unless WQ_SYSFS.)
rescuers() {
	local c
	for c in /proc/[0-9]*/comm; do
		read -r c 2>/dev/null <"$c" && echo "${c#kworker/R-}"
	done
}

# has_rescuer NAME NAMES: NAMES (one a line) has NAME, or NAME cut to 15
# characters.
has_rescuer() {
	grep -qxF -e "$1" -e "${1:0:15}" <<<"$2"
}

# Two workqueues per target, kvhdcryptd/<dev> (decryption) and
# kvhdcrypt_io/<dev> (deferred metadata work); <dev> is the device's
# major:minor (or its name).
workqueues() {
	local mm names q d ok=0
	map wq "$OX_TABLE" || return 1
	mm=$(majmin "$(dev wq)")
	names=$(rescuers | grep -E '^kvhdcrypt' | sort -u)
	echo "rescuer threads of dm-vhdcrypt workqueues: $(echo "$names" | tr '\n' ' ')"
	for q in kvhdcryptd kvhdcrypt_io; do
		for d in "$mm" "$CASE_PREFIX-wq" "dm-${mm#*:}" ''; do
			[ -n "$d" ] || { echo "no $q workqueue for $mm"; ok=1; break; }
			has_rescuer "$q/$d" "$names" && break
		done
	done
	return "$ok"
}

# ---------------------------------------------------------------------------
# Compressed clusters

# 4M: text (compressible) in the first 1.3M, zeros after.
make_compressed() {
	[ -f "$WORK/comp.qcow2" ] && return 0
	truncate -s 4M "$WORK/text.raw" &&
		seq 1 200000 | dd of="$WORK/text.raw" conv=notrunc status=none &&
		qemu-img convert -c -O qcow2 -o cluster_size=64k "$WORK/text.raw" "$WORK/comp.qcow2" &&
		qemu_raw -f qcow2 "$WORK/comp.qcow2" "$WORK/comp.raw"
}

# QEMU cannot make an encrypted image with compressed clusters, but reads
# one: a compressed plain qcow2 gets crypt_method 1 (legacy AES), then QEMU
# writes normal (encrypted) clusters into it.  QEMU returns the compressed
# clusters decompressed and not decrypted; vhdcrypt must read the same.
legacy_compressed() {
	local img=$WORK/legacy.qcow2 pass=legacy-pass key
	local opts=(--object "secret,id=sec0,data=$pass"
		--image-opts "driver=qcow2,file.filename=$img,encrypt.key-secret=sec0")
	make_compressed && cp "$WORK/comp.qcow2" "$img" && $IMGTOOL poke "$img" 32 4 1 &&
		qemu-io "${opts[@]}" -c "write -P 0x5a 2M 128k" -c "write -P 0xa5 512k 64k" >/dev/null &&
		qemu-img convert "${opts[@]}" -O raw "$WORK/legacy.raw" || return 1
	cmp -n $((512 << 10)) "$WORK/legacy.raw" "$WORK/text.raw" ||
		{ echo "QEMU does not return the compressed clusters as they are"; return 1; }
	# the key: the passphrase's first 16 bytes, zero-padded (21-qcow2-luks.sh)
	key=$(printf %s "$pass" | head -c 16 | od -An -tx1 | tr -d ' \n')
	while [ ${#key} -lt 32 ]; do key=${key}00; done
	loop "$img" && map legc "0 8192 vhdcrypt qcow2 $LOOP aes-cbc-plain64 $key 0" &&
		same "$(dev legc)" "$WORK/legacy.raw"
}

# With whole_disk the cipher covers the whole virtual disk, compressed
# clusters included: the expected data is the plain image decrypted with
# AES-256-CBC, IV = plain64 of the sector (python3-cryptography; CBC as ECB
# over everything, each block then xored with the ciphertext block before
# it, or with the sector's IV).
whole_disk_compressed() {
	local key
	make_compressed || return 1
	key=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
	python3 - "$key" "$WORK/comp.raw" "$WORK/wd.exp" <<-'EOF' || return 1
		import sys
		from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
		key, data = bytes.fromhex(sys.argv[1]), open(sys.argv[2], "rb").read()
		ecb = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
		plain = ecb.update(data) + ecb.finalize()
		prev = b"".join(s.to_bytes(16, "little") + data[s * 512:s * 512 + 496]
		                for s in range(len(data) // 512))
		out = int.from_bytes(plain, "big") ^ int.from_bytes(prev, "big")
		open(sys.argv[3], "wb").write(out.to_bytes(len(data), "big"))
	EOF
	loop "$WORK/comp.qcow2" &&
		map wdc "0 8192 vhdcrypt qcow2 $LOOP aes-cbc-plain64 $key 0 1 whole_disk" &&
		same "$(dev wdc)" "$WORK/wd.exp"
}

# A qcow2 with 2 MiB clusters and no compressed cluster: mem stays well
# below the ~4 MiB a decompressor for 2 MiB clusters takes.
mem_plain() {
	local img=$WORK/c2m.qcow2 mem
	qemu-img create -q -f qcow2 -o cluster_size=2M "$img" 64M &&
		qemu-io -f qcow2 -c "write -P 0x12 0 4M" -c "write -P 0x13 30M 64k" "$img" >/dev/null &&
		qemu_raw -f qcow2 "$img" "$WORK/c2m.raw" && loop "$img" &&
		map c2m "0 131072 vhdcrypt qcow2 $LOOP none - 0" && same "$(dev c2m)" "$WORK/c2m.raw" || return 1
	mem=$(status_field c2m mem)
	echo "mem:$mem"
	[ -n "$mem" ] && [ "$mem" -lt $((1 << 20)) ] || { echo "mem:$mem is not below 1 MiB"; return 1; }
}

# ... and one with compressed 2 MiB clusters reads right (the decompressor
# comes when it is needed).
mem_compressed() {
	local img=$WORK/z2m.qcow2 before
	truncate -s 8M "$WORK/z2m.src" && seq 1 500000 | dd of="$WORK/z2m.src" conv=notrunc status=none &&
		qemu-img convert -c -O qcow2 -o cluster_size=2M "$WORK/z2m.src" "$img" &&
		loop "$img" && map z2m "0 16384 vhdcrypt qcow2 $LOOP none - 0" || return 1
	before=$(status_field z2m mem)
	same "$(dev z2m)" "$WORK/z2m.src" || return 1
	echo "mem:$before before reading, mem:$(status_field z2m mem) after"
}

# ---------------------------------------------------------------------------
# key wipe racing resume

# WIPE_RACE NAME EXP OFFSET KEY N SECONDS: N times (or for SECONDS):
# suspend; "key wipe" and resume at the same time (two threads, raw DM
# ioctls: dmsetup is too slow to meet the window); a 4k O_DIRECT read at
# OFFSET must then fail with EIO if the wipe went through, and return EXP's
# data there if it was refused (the device was live first); then suspend,
# key set, resume.
WIPE_RACE='
import errno, fcntl, mmap, os, struct, sys, threading, time
name, exp, off, key = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
n, end = int(sys.argv[5]), time.monotonic() + int(sys.argv[6])
HDR, SUSPEND, STATUS, MSG, SUSPEND_FLAG = 312, 6, 7, 14, 1 << 1
ctl = os.open("/dev/mapper/control", os.O_RDWR)

def dm(cmd, flags=0, payload=b""):
    """One DM ioctl on device name; (errno, flags after)."""
    size = HDR + len(payload) + 64
    buf = bytearray(size)
    struct.pack_into("=3I5I", buf, 0, 4, 0, 0, size, HDR, 0, 0, flags)
    buf[48:48 + len(name)] = name.encode()
    buf[HDR:HDR + len(payload)] = payload
    try:
        fcntl.ioctl(ctl, (3 << 30) | (HDR << 16) | (0xfd << 8) | cmd, buf)
    except OSError as e:
        return e.errno, 0
    return 0, struct.unpack_from("=I", buf, 28)[0]

def msg(text):
    return dm(MSG, 0, struct.pack("=Q", 0) + text.encode() + b"\0")[0]

def check(e, what):
    if e:
        sys.exit("%s failed: %s" % (what, os.strerror(e)))

with open(exp, "rb") as f:
    f.seek(off)
    want = f.read(4096)
fd = os.open("/dev/mapper/" + name, os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
stats = dict(done=0, raced=0, eio=0, bad=0)
for i in range(n):
    if time.monotonic() > end:
        break
    stats["done"] += 1
    check(dm(SUSPEND, SUSPEND_FLAG)[0], "suspend")
    go, res = threading.Barrier(2), {}
    def wipe():
        go.wait()
        res["wipe"] = msg("key wipe")
    t = threading.Thread(target=wipe)
    t.start()
    go.wait()
    dm(SUSPEND)                      # resume
    t.join()
    e, flags = dm(STATUS)
    check(e, "status")
    if not flags & SUSPEND_FLAG:
        wiped = res["wipe"] == 0     # else the resume came first
        stats["raced"] += wiped
        try:
            os.preadv(fd, [buf], off)
            if wiped or buf[:] != want:
                stats["bad"] += 1
                print("iteration %d: a live device read %s" %
                      (i, "with its key wiped" if wiped else "wrong data"))
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            stats["eio"] += 1
            if not wiped:
                stats["bad"] += 1
                print("iteration %d: EIO with the key set" % i)
        check(dm(SUSPEND, SUSPEND_FLAG)[0], "suspend")
    check(msg("key set " + key), "key set")
    check(dm(SUSPEND)[0], "resume")
print("%d iterations: wipe and live %d times, EIO %d, wrong data %d" %
      (stats["done"], stats["raced"], stats["eio"], stats["bad"]))
sys.exit(1 if stats["bad"] else 0)
'

# Every resume sends a change event, and udev would scan the device after
# each: its queue waits during the race, until the device is gone.
wipe_race() {
	local rc=0
	map race "$OX_TABLE" || return 1
	udevadm control --stop-exec-queue && at_exit udevadm control --start-exec-queue || return 1
	timeout 300 python3 -c "$WIPE_RACE" "$CASE_PREFIX-race" "$WORK/ox.exp" $((30001 * 512)) \
		"$OX_KEY" 200 60 || rc=1
	cmp_dev_file "$(dev race)" "$WORK/ox.exp" $((32 << 20)) || rc=1
	dmsetup remove --noudevsync "$CASE_PREFIX-race" || rc=1
	udevadm control --start-exec-queue
	udev_settle
	return "$rc"
}

# ---------------------------------------------------------------------------
# block_bio_remap from the worker

TRACE=/sys/kernel/tracing

trace_on() {
	if [ ! -e "$TRACE/trace" ]; then
		mount -t tracefs nodev "$TRACE" || return 1
		at_exit umount "$TRACE"
	fi
	echo 1 >"$TRACE/events/block/block_bio_remap/enable" || return 1
	at_exit sh -c "echo 0 >$TRACE/events/block/block_bio_remap/enable"
}

# remapped DEV IMAGE_DEV: the trace has a block_bio_remap of a read from
# DEV to IMAGE_DEV ("<image maj,min> R... <sector> + <n> <- (<dm maj,min>)").
remapped() {
	local from to
	from=$(majmin "$1" | tr : ,) to=$(majmin "$2" | tr : ,)
	grep -E "block_bio_remap: $to R[A-Z]* [0-9]+ \+ [0-9]+ <- \($from\)" "$TRACE/trace"
}

# read4k DEV SECTOR: an O_DIRECT read of 4 KiB.
read4k() {
	dd if="$1" of=/dev/null bs=4k count=1 iflag=direct,skip_bytes skip=$(($2 * 512)) status=none
}

# worker_remap NAME CIPHER KEY: a read that misses the metadata cache goes
# through the worker; its remap to the image device is traced as DM
# core's are.  With cipher none, a read that map() serves from the cache is
# DM core's own remap first: that shows the tracing works.
# shellcheck disable=SC2034 # run_case reads SKIP_REASON
worker_remap() {
	local name=$1 d misses
	trace_on || { SKIP_REASON="no tracefs"; return 4; }
	map "$name" "0 204800 vhdcrypt vhd $OX_LOOP $2 $3 0" || return 1
	d=$(dev "$name")
	if [ "$2" = none ]; then
		read4k "$d" 30001 && echo >"$TRACE/trace" && read4k "$d" 30001 || return 1
		remapped "$d" "$OX_LOOP" >/dev/null ||
			{ SKIP_REASON="the trace shows no remap by DM core either"; return 4; }
	fi
	misses=$(status_field "$name" cache_misses)
	echo >"$TRACE/trace"
	read4k "$d" 61440 || return 1
	[ "$(status_field "$name" cache_misses)" -gt "$misses" ] ||
		{ echo "the read hit the metadata cache: not a worker read"; return 1; }
	remapped "$d" "$OX_LOOP" ||
		{ echo "no block_bio_remap from $d to $OX_LOOP for a read served by the worker"; return 1; }
}

# ---------------------------------------------------------------------------

setup() { setup_vhd && setup_luks; }

tap_plan 11
run_case "OpenXT fixture and a qcow2+LUKS image" setup
if [ -z "${LUKS_TABLE:-}" ]; then
	for i in $(seq 10); do run_case "I/O case $i (setup failed)" false; done
	tap_done
fi
run_case "OpenXT VHD: O_DIRECT readers in a squeezed memory cgroup, right data" \
	squeezed oxs "$OX_TABLE" "$WORK/ox.exp" 0 8190 30001 61440 65535
run_case "qcow2+LUKS: O_DIRECT readers in a squeezed memory cgroup, right data" \
	squeezed lks "$LUKS_TABLE" "$WORK/luks.exp" 0 2048 4096 12000 15000
run_case "workqueues kvhdcryptd/<dev> and kvhdcrypt_io/<dev> per target" workqueues
run_case "legacy AES qcow2: compressed clusters read as QEMU reads them" legacy_compressed
run_case "whole_disk: compressed clusters are decrypted" whole_disk_compressed
run_case "2 MiB clusters, none compressed: mem below 1 MiB (no decompressor)" mem_plain
run_case "2 MiB compressed clusters read right" mem_compressed
run_case "key wipe racing resume: reads fail once wiped, are right before" wipe_race
run_case "block_bio_remap for a worker read, cipher none" worker_remap wrn none -
run_case "block_bio_remap for a worker read, encrypted" worker_remap wre aes-xts-plain "$OX_KEY"
tap_done
