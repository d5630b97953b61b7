#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Key hygiene of vhdcryptsetup on the host (no device-mapper: open --dry-run).
# An OpenXT fixture VHD with its key directory and a qcow2 with LUKS and a
# passphrase are opened under gdb, stopped once the key is read and derived
# and the table that carries it is built (the second vc_table_format() call:
# the unmasked table exists, the masked one is next), and dumped:
#   - gdb's gcore, which leaves out MADV_DONTDUMP mappings ("dd" in smaps),
#   - the same with "set dump-excluded-mappings on": the control that proves
#     the key was in memory and that the search finds it,
#   - the kernel's core of a real crash (SIGABRT there, ulimit -c unlimited).
# Neither real core may hold the key (raw, either XTS half, hex) or the
# passphrase. The --dry-run, --debug and --verbose output may not either.
cd "$(dirname "$0")/tmp" || { echo "Bail out! tests/tmp missing"; exit 1; }
U=$(realpath "${VHDCRYPT_TOOL:-../../vhdcryptsetup}")
n=0 fail=0
W=$PWD/keys-work

ok() {	# ok NAME CONDITION-STATUS [DETAIL]
	n=$((n + 1))
	if [ "$2" = 0 ]; then
		echo "ok $n - $1"
	else
		echo "not ok $n - $1"
		[ -n "${3:-}" ] && printf '%s\n' "$3" | sed 's/^/#   /'
		fail=$((fail + 1))
	fi
}

skip() {
	n=$((n + 1))
	echo "ok $n - $1 # SKIP $2"
}

# What of the key (hex) and passphrase (file) FILE holds; nothing: empty.
leaks() {	# leaks FILE KEYHEX [PASSFILE]
	python3 - "$@" <<'EOF'
import sys
data = open(sys.argv[1], 'rb').read()
key = bytes.fromhex(sys.argv[2])
half = len(key) // 2
needles = {'raw key': key, 'key, first half': key[:half], 'key, second half': key[half:],
	   'hex key': key.hex().encode(), 'hex key, upper case': key.hex().upper().encode(),
	   'hex of a half': key[:half].hex().encode()}
if len(sys.argv) > 3:
	needles['passphrase'] = open(sys.argv[3], 'rb').read()
for what, b in needles.items():
	if b and b in data:
		print(f'{what} at offset {data.index(b)}')
EOF
}

# The LUKS header QEMU put in a qcow2 (its crypto header extension) into a file.
luks_header() {	# luks_header QCOW2 OUT
	python3 - "$@" <<'EOF'
import struct, sys
f = open(sys.argv[1], 'rb')
h = f.read(4096)
o = struct.unpack('>I', h[100:104])[0]
while True:
	t, ln = struct.unpack('>II', h[o:o + 8])
	if t == 0:
		sys.exit('no crypto header extension')
	if t == 0x0537be77:
		off, size = struct.unpack('>QQ', h[o + 8:o + 24])
		f.seek(off)
		open(sys.argv[2], 'wb').write(f.read(size))
		break
	o += 8 + (ln + 7) // 8 * 8
EOF
}

noleak() {	# noleak NAME FILE (the key in $hex, the passphrase file in $pass)
	local found

	found=$(leaks "$2" "$hex" ${pass:+"$pass"})
	ok "$1" "$([ -z "$found" ]; echo $?)" "$found"
}

# The tests of one open: leak_case NAME OPEN-ARGS... ($hex, $pass as above)
leak_case() {
	local name=$1 dir=$W/$1 core o
	shift
	rm -rf "$dir" && mkdir -p "$dir"
	for o in --dry-run --debug --verbose; do
		"$U" open --dry-run "$o" "$@" x >"$dir/out" 2>&1
		noleak "$name: $o output has no key" "$dir/out"
	done
	if [ -z "$GDB" ]; then
		skip "$name: core dumps hold no key" "gdb is not installed (scripts/install-deps)"
		return
	fi
	if ! "$GDB" -q -batch -ex run --args /bin/true >/dev/null 2>&1; then
		skip "$name: core dumps hold no key" "gdb cannot run a program here (ptrace refused?)"
		return
	fi
	cat >"$dir/gdb" <<-EOF
	set pagination off
	set confirm off
	break vc_table_format
	run
	continue
	gcore $dir/gcore
	set dump-excluded-mappings on
	gcore $dir/gcore-all
	signal SIGABRT
	quit
	EOF
	(cd "$dir" && ulimit -c unlimited &&
	 "$GDB" -q -batch -x gdb --args "$U" open --dry-run "$@" x >gdb.log 2>&1)
	ok "$name: gdb stopped after the key was read" "$([ -s "$dir/gcore" ]; echo $?)" \
		"$(tail -5 "$dir/gdb.log")"
	[ -s "$dir/gcore" ] || return
	noleak "$name: gcore holds no key" "$dir/gcore"
	ok "$name: control: gcore with dump-excluded-mappings on holds the key" \
		"$(leaks "$dir/gcore-all" "$hex" | grep 'raw key' >/dev/null; echo $?)"
	if [ -z "$CORE_NAME" ]; then
		skip "$name: crash core holds no key" "core_pattern is $(cat /proc/sys/kernel/core_pattern)"
		return
	fi
	core=$(find "$dir" -maxdepth 1 -name "$CORE_NAME*" -newer "$dir/gdb" | head -1)
	ok "$name: SIGABRT wrote a core" "$([ -n "$core" ]; echo $?)" "$(tail -5 "$dir/gdb.log")"
	[ -n "$core" ] || return
	noleak "$name: crash core holds no key" "$core"
}

GDB=$(command -v gdb)
# a core file in the working directory: a pattern without '|' or '/'
CORE_NAME=$(sed -n '/^[^|/]/{s/%.*//;p}' /proc/sys/kernel/core_pattern)
unset TAPDISK2_CRYPTO_KEYDIR TAPDISK3_CRYPTO_KEYDIR VHDCRYPT_DEBUG
rm -rf "$W" && mkdir -p "$W"

key=$PWD/keys/aes256xts,aes-xts-plain,512.key
hex=$(od -An -tx1 -v "$key" | tr -d ' \n') pass=
leak_case openxt-hex --disable-keyring --key-dir "$PWD/keys" "$PWD/aes256xts.vhd"
leak_case openxt-keyring --key-dir "$PWD/keys" "$PWD/aes256xts.vhd"

if command -v qemu-img >/dev/null && command -v cryptsetup >/dev/null; then
	printf 'correct horse battery' >"$W/pass"
	# qemu-retry: qemu-img's LUKS PBKDF benchmark fails now and then under load
	"$PWD/../../../scripts/qemu-retry" qemu-img create -q -f qcow2 --object secret,id=s0,file="$W/pass" \
		-o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 "$W/luks.qcow2" 8M
	luks_header "$W/luks.qcow2" "$W/hdr"
	vk=$(cryptsetup luksDump -q --dump-volume-key --key-file "$W/pass" "$W/hdr" 2>/dev/null |
	     sed -n '/^MK dump:/,/^[^[:space:]M]/p' | sed 's/^MK dump://' | tr -dc '0-9a-f')
	rm -f "$W/hdr"
	ok "qcow2-luks: volume key read back" "$([ ${#vk} = 128 ]; echo $?)" "got '$vk'"
	hex=$vk pass=$W/pass
	leak_case qcow2-luks-hex --disable-keyring --key-file "$W/pass" "$W/luks.qcow2"
	leak_case qcow2-luks-keyring --key-file "$W/pass" "$W/luks.qcow2"
else
	skip "qcow2 LUKS cases" "qemu-img or cryptsetup missing"
fi
rm -rf "$W"
echo "1..$n"
[ $fail -eq 0 ]
