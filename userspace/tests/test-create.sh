#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# vhdcryptsetup create, the key slot and header commands and vhd-key on the
# host (no kernel target needed): every image is checked by qemu-img (qcow2:
# byte for byte against qemu-img create where the layout is QEMU's, and with
# the passphrase) or by selftests/tools/vhdcheck (VHD, with the key file made),
# key slots by qemu-img, refusals leave the target unchanged. The LUKS header
# inside a qcow2 is reached through a loop device: those checks need root.
cd "$(dirname "$0")/tmp" || { echo "Bail out! tests/tmp missing"; exit 1; }
U=${VHDCRYPT_TOOL:-$PWD/../../vhdcryptsetup}
VHDCHECK=$PWD/../../../selftests/tools/vhdcheck
QEMU_RETRY=$PWD/../../../scripts/qemu-retry
FIX=$PWD	# decompressed fixtures and key directories
n=0 fail=0
rm -rf create && mkdir create && cd create || exit 1

ok() { n=$((n + 1)); echo "ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
bad() {
	n=$((n + 1)); fail=$((fail + 1))
	echo "not ok $n - $1"
	shift
	printf '%s\n' "$@" | sed 's/^/#   /'
}
# check NAME WANT_RC MSG CMD...: exit status and a piece of the output
check() {
	local name=$1 want=$2 msg=$3 out rc
	shift 3
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" = "$want" ] && { [ -z "$msg" ] || printf '%s' "$out" | grep -qF -- "$msg"; }; then
		ok "$name"
	else
		bad "$name" "command: $*" "rc=$rc (want $want)" "$out"
	fi
}
# t NAME CMD...: CMD succeeds
t() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then ok "$name"; else bad "$name" "command: $*" "$out"; fi
}

have_qemu=0
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null && have_qemu=1
root=0
[ "$(id -u)" = 0 ] && losetup -f >/dev/null 2>&1 && root=1
printf pw-one >pw1
printf pw-two >pw2
printf pw-three >pw3

sec() { echo "secret,id=s,data=$1"; }
iopts() { echo "driver=qcow2,file.filename=$1,encrypt.key-secret=s"; }
# qchk NAME PASS IMAGE: qemu-img check with the passphrase
qchk() { t "$1" qemu-img check -q --object "$(sec "$2")" --image-opts "$(iopts "$3")"; }
qrefused() { check "$1" 1 "Invalid password" qemu-img check --object "$(sec "$2")" --image-opts "$(iopts "$3")"; }
sum() { sha256sum "$1" | cut -d' ' -f1; }

# --- qcow2 without encryption: byte for byte what qemu-img create writes
if [ $have_qemu = 1 ]; then
	for cs in 512 4k 8k 64k 2M; do
		qemu-img create -q -f qcow2 -o cluster_size=$cs "q-$cs.qemu" 64M
		"$U" create --type qcow2 --size 64M --cluster-size $cs "q-$cs.qcow2"
		t "qcow2 $cs clusters: identical to qemu-img's" cmp "q-$cs.qcow2" "q-$cs.qemu"
	done
	qemu-img create -q -f qcow2 big.qemu 3T
	"$U" create --type qcow2 --size 3T big.qcow2
	t "qcow2 3 TiB: identical to qemu-img's" cmp big.qcow2 big.qemu
	qemu-img create -q -f qcow2 -b q-64k.qcow2 -F qcow2 ov.qemu
	"$U" create --type qcow2 --backing q-64k.qcow2 ov.qcow2
	t "qcow2 overlay: identical to qemu-img create -b" cmp ov.qcow2 ov.qemu
	truncate -s 32M base.raw
	qemu-img create -q -f qcow2 -b base.raw -F raw ovr.qemu
	"$U" create --type qcow2 --backing base.raw ovr.qcow2
	t "qcow2 over a raw file: identical" cmp ovr.qcow2 ovr.qemu
	mkdir -p sub
	"$U" create --type vhd --size 16M sub/base.vhd
	qemu-img create -q -f qcow2 -b base.vhd -F vpc sub/ovv.qemu
	"$U" create --type qcow2 --backing base.vhd sub/ovv.qcow2
	t "qcow2 over a VHD, relative to the overlay: identical" cmp sub/ovv.qcow2 sub/ovv.qemu
	check "qcow2 overlay: qemu-img sees the backing chain" 0 "backing file format: vpc" \
		qemu-img info sub/ovv.qcow2
fi

# --- qcow2 with LUKS1 inside
if [ $have_qemu = 1 ]; then
	$QEMU_RETRY qemu-img create -q -f qcow2 --object "$(sec pw-one)" \
		-o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 l.qemu 64M
	"$U" create --type qcow2 --size 64M --key-file pw1 --iter-time 10 l.qcow2
	t "qcow2 LUKS: qemu-img's layout (header, refcounts, L1)" cmp -n 262144 l.qcow2 l.qemu
	check "qcow2 LUKS: same size as qemu-img's" 0 "" test "$(stat -c %s l.qcow2)" = "$(stat -c %s l.qemu)"
	qchk "qcow2 LUKS: qemu-img check with the passphrase" pw-one l.qcow2
	qrefused "qcow2 LUKS: a wrong passphrase is refused" pw-two l.qcow2
	check "qcow2 LUKS: qemu-img info: aes-256 xts plain64" 0 "cipher alg: aes-256" qemu-img info l.qcow2
	t "qcow2 LUKS: qemu-io writes and reads back" qemu-io --object "$(sec pw-one)" --image-opts "$(iopts l.qcow2)" \
		-c "write -P 0x5a 1M 64k" -c "read -P 0x5a 1M 64k" -c "read -P 0 0 64k"
	for spec in "aes-xts-plain64 256 aes-128" "aes-cbc-essiv:sha256 256 aes-256" \
		    "aes-cbc-plain64 128 aes-128"; do
		set -- $spec
		f=c-${1%%:*}-$2.qcow2
		"$U" create --type qcow2 --size 8M --cipher "$1" --key-size "$2" --key-file pw1 -i 10 "$f"
		check "qcow2 LUKS $1 $2: qemu-img info" 0 "cipher alg: $3" qemu-img info "$f"
		t "qcow2 LUKS $1 $2: qemu-io writes and reads back" qemu-io --object "$(sec pw-one)" \
			--image-opts "$(iopts "$f")" -c "write -P 0x77 4k 60k" -c "read -P 0x77 4k 60k"
	done
	"$U" create --type qcow2 --size 64M --cluster-size 512 --key-file pw1 -i 10 c512.qcow2
	qchk "qcow2 LUKS, 512-byte clusters: qemu-img check" pw-one c512.qcow2
	"$U" create --type qcow2 --size 64M --cluster-size 2M --key-file pw1 -i 10 c2m.qcow2
	qchk "qcow2 LUKS, 2 MiB clusters: qemu-img check" pw-one c2m.qcow2
	$QEMU_RETRY qemu-img create -q -f qcow2 --object "$(sec pw-one)" -b q-64k.qcow2 -F qcow2 \
		-o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 lo.qemu
	"$U" create --type qcow2 --backing q-64k.qcow2 --key-file pw1 -i 10 lo.qcow2
	t "qcow2 LUKS overlay: qemu-img's layout" cmp -n 262144 lo.qcow2 lo.qemu
	qchk "qcow2 LUKS overlay: qemu-img check" pw-one lo.qcow2
	printf 'pw-one\n' | "$U" create --type qcow2 --size 8M --key-file - -i 10 stdin.qcow2
	qrefused "--key-file -: the whole of standard input, newline included" pw-one stdin.qcow2
	check "qcow2: --pbkdf argon2id refused inside a qcow2 (LUKS1)" 1 "pbkdf2 only" \
		"$U" create --type qcow2 --size 8M --key-file pw1 --pbkdf argon2id x.qcow2
	check "qcow2: --cipher without a key refused" 1 "needs a key" \
		"$U" create --type qcow2 --size 8M --cipher aes-xts-plain64 x.qcow2
	check "refusals left nothing" 0 "" test ! -e x.qcow2
fi

# --- VHD
"$U" create --type vhd --size 64M d.vhd
check "VHD dynamic 64 MiB: vhd-util's layout (3584 bytes)" 0 "" test "$(stat -c %s d.vhd)" = 3584
check "VHD dynamic: vhdcheck" 0 "ok (dynamic, 131072 sectors" "$VHDCHECK" check --clean d.vhd
check "VHD dynamic: no key hash" 0 "none" "$U" vhd-key --print d.vhd
[ $have_qemu = 1 ] && check "VHD dynamic: qemu-img info, 64 MiB" 0 "virtual size: 64 MiB" qemu-img info d.vhd
# footer and header fields as vhd-util wrote them into the fixture (but size, time, uuid)
"$U" create --type vhd --size 96M p96.vhd
t "VHD: fields as in vhd-util's fixture plain.vhd" python3 - p96.vhd "$FIX/plain.vhd" <<'PY'
import sys
a, b = (open(f, 'rb').read() for f in sys.argv[1:])
skip = set(range(24, 28)) | set(range(64, 84))          # time, checksum, uuid
for off, n, what in ((0, 512, 'footer copy'), (512, 1024, 'header'), (0x800, 512, 'batmap header')):
    for i in range(n):
        if off == 0 and i in skip or off == 512 and 36 <= i < 40 or off == 0x800 and 24 <= i < 28:
            continue
        if a[off + i] != b[off + i]:
            sys.exit('%s differs at byte %d' % (what, i))
PY
mkdir -p keys
"$U" create --type vhd --size 40M --key-dir keys k512.vhd
check "VHD --key-dir: one key file, 64 bytes, mode 0400" 0 "" \
	test "$(stat -c '%s %a' 'keys/k512,aes-xts-plain,512.key')" = "64 400"
check "VHD --key-dir: its hash is the key's" 0 "0000000000000000000000000000000000000000000000000000000000000000 $("$U" vhd-key --calc --key-file 'keys/k512,aes-xts-plain,512.key')" \
	"$U" vhd-key --print k512.vhd
check "VHD --key-dir: vhdcheck decodes it with the key dir" 0 "$(head -c 41943040 /dev/zero | sha256sum | cut -d' ' -f1)" \
	"$VHDCHECK" decode k512.vhd --key-dir keys --sha256
N=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
"$U" create --type vhd --size 40M --key-dir keys --key-size 256 --nonce $N k256.vhd
check "VHD --key-size 256: a 32-byte ,256.key" 0 "" test "$(stat -c %s 'keys/k256,aes-xts-plain,256.key')" = 32
check "VHD --nonce: stored" 0 "$N " "$U" vhd-key --print k256.vhd
t "VHD --nonce: vhdcheck decodes it" "$VHDCHECK" decode k256.vhd --key-dir keys --sha256
check "VHD --key-dir: refused when the key file exists" 5 "already exists" \
	"$U" create --type vhd --size 40M --key-dir keys k512.vhd2
check "VHD: the refused image was not made" 0 "" test ! -e k512.vhd2
"$U" create --type vhd --size 40M --key-file 'keys/k512,aes-xts-plain,512.key' own.vhd
check "VHD --key-file: no key file written" 0 "" test ! -e 'keys/own,aes-xts-plain,512.key'
t "VHD --key-file: vhdcheck decodes it with that key" "$VHDCHECK" decode own.vhd \
	--key-file 'keys/k512,aes-xts-plain,512.key' --sha256
"$U" create --type vhd --backing k512.vhd --key-dir keys snap.vhd
check "VHD differencing: vhdcheck" 0 "ok (differencing, 81920 sectors" "$VHDCHECK" check --clean snap.vhd
t "VHD differencing: locator ./k512.vhd as vhd-util writes it" grep -qa "file://./k512.vhd" snap.vhd
t "VHD differencing: decoded with the key dir" "$VHDCHECK" decode snap.vhd --key-dir keys --sha256
mkdir -p sub2
"$U" create --type vhd --backing ../k512.vhd sub2/snap2.vhd
t "VHD differencing: a parent in another directory (../k512.vhd)" grep -qa "file://../k512.vhd" sub2/snap2.vhd
t "VHD differencing: ... and vhdcheck finds it" "$VHDCHECK" decode sub2/snap2.vhd --key-dir keys --sha256
"$U" create --type vhd --subformat fixed --size 10M f.vhd
check "VHD fixed: vhdcheck" 0 "ok (fixed, 20480 sectors" "$VHDCHECK" check f.vhd
check "VHD fixed: size + footer" 0 "" test "$(stat -c %s f.vhd)" = $((10 * 1048576 + 512))
check "VHD fixed with a key: refused" 1 "fixed VHD cannot carry" \
	"$U" create --type vhd --subformat fixed --size 10M --key-dir keys fk.vhd
check "VHD fixed with a key: no image, no key file" 0 "" \
	test ! -e fk.vhd -a ! -e 'keys/fk,aes-xts-plain,512.key' -a ! -e 'keys/fk,aes-xts-plain,256.key'
check "VHD: --cipher other than aes-xts-plain refused" 1 "aes-xts-plain only" \
	"$U" create --type vhd --size 8M --key-dir keys --cipher aes-xts-plain64 x.vhd

# --- detached headers (LUKS2 default, LUKS1)
"$U" create --type qcow2 --size 32M --key-file pw1 -i 10 --pbkdf pbkdf2 --header h2.luks hq.qcow2
check "--header: LUKS2, payload offset 0" 0 "offset: 0 [bytes]" cryptsetup luksDump h2.luks
[ $have_qemu = 1 ] && check "--header: the qcow2 itself is not encrypted" 0 "" \
	sh -c "! qemu-img info hq.qcow2 | grep -q encrypted"
t "--header: the passphrase opens it" cryptsetup open --test-passphrase --header h2.luks --key-file pw1 hq.qcow2
"$U" create --type vhd --size 32M --key-file pw1 -i 10 --luks-type luks1 --header h1.luks hv.vhd
check "--header --luks-type luks1" 0 "Version:       	1" cryptsetup luksDump h1.luks
check "--header over a VHD: open --dry-run maps the whole disk" 0 "whole_disk" \
	"$U" open --dry-run --header h1.luks --key-file pw1 hv.vhd x
check "--header with an OpenXT key refused" 1 "not both" \
	"$U" create --type vhd --size 8M --key-dir keys --key-file pw1 --header h3.luks x.vhd
check "--header exists: refused" 5 "exists" \
	"$U" create --type qcow2 --size 8M --key-file pw1 --header h2.luks x.qcow2

# --- an existing file or device is overwritten only when confirmed
before=$(sum d.vhd)
check "create over a file without a terminal or --batch-mode: refused" 1 "--batch-mode" \
	"$U" create --type qcow2 --size 8M d.vhd </dev/null
check "... and the file is unchanged" 0 "" test "$(sum d.vhd)" = "$before"
"$U" create --batch-mode --type qcow2 --size 8M d.vhd
[ $have_qemu = 1 ] && t "create --batch-mode over a file: a new qcow2" qemu-img check -q d.vhd
if [ $root = 1 ]; then
	truncate -s 64M dev.img
	head -c 1M /dev/urandom | dd of=dev.img conv=notrunc status=none
	dev=$(losetup -f --show dev.img)
	before=$(sum "$dev")
	check "create on a block device without confirmation: refused" 1 "--batch-mode" \
		"$U" create --type qcow2 --size 32M --key-file pw1 "$dev" </dev/null
	check "... and the device is unchanged" 0 "" test "$(sum "$dev")" = "$before"
	"$U" create -q --type qcow2 --size 32M --key-file pw1 -i 10 "$dev"
	[ $have_qemu = 1 ] && qchk "create on a block device (qcow2 LUKS): qemu-img check" pw-one "$dev"
	check "create on a block device: isLuks" 0 "" "$U" isLuks "$dev"
	"$U" create -q --type vhd --size 32M --key-dir keys "$dev"
	losetup -d "$dev"
	check "create on a block device (VHD): footer in the last sector" 0 "ok (dynamic, 65536 sectors" \
		"$VHDCHECK" check dev.img
fi

# --- key slots, on an image made by create and on one made by QEMU
if [ $root = 1 ] && [ $have_qemu = 1 ]; then
	"$U" create --type qcow2 --size 16M --key-file pw1 -i 10 ks.qcow2
	qemu-io --object "$(sec pw-one)" --image-opts "$(iopts ks.qcow2)" -c "write -P 0x42 2M 128k" >/dev/null
	check "isLuks: a qcow2 with LUKS" 0 "" "$U" isLuks ks.qcow2
	check "isLuks: a qcow2 without" 1 "" "$U" isLuks q-64k.qcow2
	check "isLuks: a VHD" 1 "" "$U" isLuks k512.vhd
	check "isLuks: no such file" 4 "" "$U" isLuks nonexistent.qcow2
	t "luksAddKey" "$U" luksAddKey --key-file pw1 -i 10 ks.qcow2 pw2
	qchk "luksAddKey: QEMU opens it with the new passphrase" pw-two ks.qcow2
	check "luksDump: cipher, key size, two slots" 0 "Key Slot 1: ENABLED" "$U" luksDump ks.qcow2
	check "luksDump: key size" 0 "MK bits:       	512" "$U" luksDump ks.qcow2
	check "luksRemoveKey without confirmation: refused" 1 "--batch-mode" \
		"$U" luksRemoveKey ks.qcow2 pw1 </dev/null
	qchk "... and the old passphrase still works" pw-one ks.qcow2
	t "luksRemoveKey --batch-mode" "$U" luksRemoveKey --batch-mode ks.qcow2 pw1
	qrefused "luksRemoveKey: QEMU refuses the removed passphrase" pw-one ks.qcow2
	check "luksRemoveKey: the tool refuses it too" 2 "" "$U" luksRemoveKey -q ks.qcow2 pw1
	t "luksChangeKey" "$U" luksChangeKey --key-file pw2 -i 10 ks.qcow2 pw3
	qchk "luksChangeKey: the new passphrase" pw-three ks.qcow2
	qrefused "luksChangeKey: not the old one" pw-two ks.qcow2
	check "luksChangeKey: a wrong passphrase" 2 "matches" "$U" luksChangeKey --key-file pw1 ks.qcow2 pw2
	t "luksHeaderBackup" "$U" luksHeaderBackup --header-backup-file ks.bak ks.qcow2
	"$U" luksChangeKey --key-file pw3 -i 10 ks.qcow2 pw1
	qrefused "after a change the backed-up passphrase fails" pw-three ks.qcow2
	"$U" create --type qcow2 --size 16M --key-file pw3 -i 10 other.qcow2
	"$U" luksHeaderBackup --header-backup-file other.bak other.qcow2
	before=$(sum ks.qcow2)
	check "luksHeaderRestore of another image's backup: refused" 1 "another LUKS header" \
		"$U" luksHeaderRestore -q --header-backup-file other.bak ks.qcow2
	check "... and nothing changed" 0 "" test "$(sum ks.qcow2)" = "$before"
	check "luksHeaderRestore without confirmation: refused" 1 "--batch-mode" \
		"$U" luksHeaderRestore --header-backup-file ks.bak ks.qcow2 </dev/null
	check "... and nothing changed" 0 "" test "$(sum ks.qcow2)" = "$before"
	t "luksHeaderRestore --batch-mode" "$U" luksHeaderRestore -q --header-backup-file ks.bak ks.qcow2
	qchk "luksHeaderRestore: the backed-up passphrase works again" pw-three ks.qcow2
	check "luksHeaderRestore --key-file: the volume key is checked" 0 "" \
		"$U" luksHeaderRestore -q --key-file pw3 --header-backup-file ks.bak ks.qcow2
	# luksKillSlot on QEMU's image
	$QEMU_RETRY qemu-img create -q -f qcow2 --object "$(sec pw-one)" \
		-o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 kq.qcow2 16M
	"$U" luksAddKey --key-file pw1 -i 10 kq.qcow2 pw2
	check "luksKillSlot: --key-file must open another slot" 2 "no other key slot" \
		"$U" luksKillSlot -q --key-file pw1 kq.qcow2 0
	check "luksKillSlot without confirmation: refused" 1 "--batch-mode" \
		"$U" luksKillSlot kq.qcow2 0 </dev/null
	t "luksKillSlot 0 on a qemu-img image" "$U" luksKillSlot -q --key-file pw2 kq.qcow2 0
	qrefused "luksKillSlot: QEMU refuses slot 0's passphrase" pw-one kq.qcow2
	qchk "luksKillSlot: slot 1 still works in QEMU" pw-two kq.qcow2
	check "luksKillSlot: an unused slot" 1 "not in use" "$U" luksKillSlot -q kq.qcow2 5
	# erase: every passphrase fails, the data clusters stay
	cp ks.qcow2 er.qcow2
	"$U" luksAddKey --key-file pw3 -i 10 er.qcow2 pw1
	before=$(sum er.qcow2)
	check "erase without confirmation: refused" 1 "--batch-mode" "$U" erase er.qcow2 </dev/null
	check "... and nothing changed" 0 "" test "$(sum er.qcow2)" = "$before"
	t "erase --batch-mode" "$U" erase --batch-mode er.qcow2
	qrefused_any() { check "$1" 1 "" qemu-img check --object "$(sec "$2")" --image-opts "$(iopts "$3")"; }
	qrefused_any "erase: QEMU cannot open it with the first passphrase" pw-three er.qcow2
	qrefused_any "erase: nor with the second" pw-one er.qcow2
	check "erase: isLuks fails" 1 "" "$U" isLuks er.qcow2
	check "erase: the tool's key slot commands fail" 1 "no valid LUKS header" \
		"$U" luksAddKey --key-file pw1 er.qcow2 pw2
	t "erase: every byte outside the LUKS region is unchanged" python3 - er.qcow2 ks.qcow2 <<'PY'
import struct, sys
a, b = (open(f, 'rb').read() for f in sys.argv[1:])
off = 0x70
while True:
    t, n = struct.unpack('>II', a[off:off + 8])
    if t == 0x0537be77:
        lo, ln = struct.unpack('>QQ', a[off + 8:off + 24]); break
    off += 8 + (n + 7) // 8 * 8
assert len(a) == len(b) and a[:lo] == b[:lo] and a[lo + ln:] == b[lo + ln:], 'data changed'
assert a[lo:lo + 4096] != b[lo:lo + 4096], 'header not overwritten'
PY
	t "erase: a header backup brings it back" "$U" luksHeaderRestore -q --header-backup-file ks.bak er.qcow2
	qchk "... and QEMU opens it again" pw-three er.qcow2
	# detached headers the same
	t "detached header: luksAddKey" "$U" luksAddKey --header h2.luks --key-file pw1 -i 10 hq.qcow2 pw2
	t "detached header: the new passphrase opens it" \
		cryptsetup open --test-passphrase --header h2.luks --key-file pw2 hq.qcow2
	t "detached header: luksRemoveKey" "$U" luksRemoveKey -q --header h2.luks hq.qcow2 pw1
	check "detached header: the old one is refused" 2 "" \
		cryptsetup open --test-passphrase --header h2.luks --key-file pw1 hq.qcow2
	t "detached header: luksHeaderBackup" "$U" luksHeaderBackup --header h2.luks --header-backup-file h2.bak hq.qcow2
	t "detached header: erase" "$U" erase -q --header h2.luks hq.qcow2
	check "detached header: erase leaves no passphrase" 1 "" \
		cryptsetup open --test-passphrase --header h2.luks --key-file pw2 hq.qcow2
	t "detached header: restore" "$U" luksHeaderRestore -q --header h2.luks --header-backup-file h2.bak hq.qcow2
	t "detached header: the passphrase works again" \
		cryptsetup open --test-passphrase --header h2.luks --key-file pw2 hq.qcow2
else
	skip "key slots" "needs root (loop devices) and qemu-img"
fi

# --- vhd-key, as vhd-util key
K=$FIX/keys
for img in aes256xts:512 aes256xts-nonce:512 aes128xts:256 aes128xts-nonce:256; do
	i=${img%:*} bits=${img#*:}
	printed=$("$U" vhd-key --print "$FIX/$i.vhd")
	nonce=${printed% *}
	check "vhd-key --calc: the known hash of $i" 0 "${printed#* }" \
		"$U" vhd-key --calc --nonce "$nonce" --key-file "$K/$i,aes-xts-plain,$bits.key"
	check "vhd-key --check: the key of $i" 0 "" "$U" vhd-key --check --key-file "$K/$i,aes-xts-plain,$bits.key" "$FIX/$i.vhd"
done
check "vhd-key --print: an image without key hash" 0 "none" "$U" vhd-key --print "$FIX/plain.vhd"
check "vhd-key --check: a wrong key" 2 "does not match" \
	"$U" vhd-key --check --key-file "$FIX/keys-wrong/aes256xts,aes-xts-plain,512.key" "$FIX/aes256xts.vhd"
check "vhd-key --check: no key hash" 1 "no key hash" \
	"$U" vhd-key --check --key-file "$K/aes256xts,aes-xts-plain,512.key" "$FIX/plain.vhd"
check "vhd-key --set: refused on a VHD with data" 1 "non-empty" \
	"$U" vhd-key --set --key-file "$K/aes256xts,aes-xts-plain,512.key" "$FIX/plain.vhd"
check "vhd-key --set: refused on a fixed VHD" 1 "fixed" \
	"$U" vhd-key --set --key-file "$K/aes256xts,aes-xts-plain,512.key" f.vhd
"$U" create --type vhd --size 24M set.vhd
t "vhd-key --set --key-file --nonce" "$U" vhd-key --set --nonce $N --key-file "$K/aes256xts,aes-xts-plain,512.key" set.vhd
check "vhd-key --set: --print shows it" 0 "$N $("$U" vhd-key --calc --nonce $N --key-file "$K/aes256xts,aes-xts-plain,512.key")" \
	"$U" vhd-key --print set.vhd
t "vhd-key --set: vhdcheck decodes with that key" "$VHDCHECK" decode set.vhd --key-file "$K/aes256xts,aes-xts-plain,512.key" --sha256
t "vhd-key --set --hash" "$U" vhd-key --set --hash "${N}" set.vhd
check "vhd-key --set --hash: stored as given" 0 "0000000000000000000000000000000000000000000000000000000000000000 $N" \
	"$U" vhd-key --print set.vhd
check "vhd-key --calc takes no image" 1 "no image" "$U" vhd-key --calc --key-file pw1 set.vhd
check "vhd-key: one action" 1 "one of" "$U" vhd-key --print --set set.vhd
if [ $have_qemu = 1 ]; then
	qemu-img create -q -f vpc qv.vhd 16M
	t "vhd-key --set on a VHD without batmap (qemu-img's): the xattr" \
		"$U" vhd-key --set --key-file "$K/aes256xts,aes-xts-plain,512.key" qv.vhd
	check "... read back" 0 "$("$U" vhd-key --calc --key-file "$K/aes256xts,aes-xts-plain,512.key")" \
		"$U" vhd-key --print qv.vhd
fi
# erase of an OpenXT VHD: the key hash goes, the key file is named
cp k512.vhd ek.vhd
cp 'keys/k512,aes-xts-plain,512.key' 'keys/ek,aes-xts-plain,512.key'
check "erase of a VHD without confirmation: refused" 1 "--batch-mode" "$U" erase --key-dir keys ek.vhd </dev/null
check "... and the key hash is still there" 0 "00000000" "$U" vhd-key --print ek.vhd
check "erase of an OpenXT VHD: names the key file" 0 "keys/ek,aes-xts-plain,512.key" \
	"$U" erase -q --key-dir keys ek.vhd
check "erase of an OpenXT VHD: no key hash" 0 "none" "$U" vhd-key --print ek.vhd
check "erase: the key is refused now (key file without key hash)" 1 "" \
	"$VHDCHECK" decode ek.vhd --key-dir keys --sha256

echo "1..$n"
[ $fail -eq 0 ]
