#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=600
#
# qcow2 images with QEMU's built-in LUKS encryption (and one with the legacy
# AES encryption), made with qemu-img/qemu-io, mapped with the volume key
# that cryptsetup reads from the image's LUKS header and compared with
# qemu-img convert -O raw: several ciphers, 512-byte and 64k clusters, zero
# clusters, encrypted overlays over plain and encrypted bases, and the key
# passed through the kernel keyring.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-img.sh"
# shellcheck disable=SC2034 # read by run_case in lib-img.sh
CASE_SPLIT=1	# independent cases: make check spreads them over the kernels

start_image_test qemu-img qemu-io cryptsetup

PATTERN=(
	-c "write -P 0x11 0 512"
	-c "write -P 0xab 1M 64k"
	-c "write -P 0x5c 3584512 7680"
	-c "write -P 0x22 4092k 8k"
	-c "write -P 0x66 9M 256k"
	-c "write -z 9M 64k"
	-c "write -z 11M 64k"
	-c "write -P 0x33 16383k 1k"
)

# enc_args IMG PASS [BACKING_PASS]: ENC=(arguments for qemu-io and qemu-img
# convert that open the encrypted qcow2 IMG, and its encrypted backing image
# if BACKING_PASS is given).
enc_args() {
	local opts="driver=qcow2,file.filename=$1,encrypt.key-secret=sec0"
	ENC=(--object "secret,id=sec0,data=$2")
	if [ -n "$3" ]; then
		ENC+=(--object "secret,id=sec1,data=$3")
		opts+=",backing.encrypt.key-secret=sec1"
	fi
	ENC+=(--image-opts "$opts")
}

# fill_and_convert IMG PASS [BACKING_PASS]: write PATTERN into IMG, its
# plaintext (as QEMU reads it) into IMG's name with .raw instead of .qcow2.
fill_and_convert() {
	enc_args "$@"
	qemu-io "${ENC[@]}" "${PATTERN[@]}" >/dev/null &&
		qemu-img convert "${ENC[@]}" -O raw "${1%.qcow2}.raw"
}

# map_luks NAME IMG PASS [BACKING_DEV]: map an encrypted qcow2 with its
# volume key (host-sector IVs), in $DEV.
map_luks() {
	local name=$1 img=$2 pass=$3 back=$4 ck q_size opts="1 iv_sector:host"
	ck=$(luks_key "$img" "$pass") || { echo "cannot read the LUKS key of $img"; return 1; }
	echo "$name: cipher ${ck% *}"
	q_size=$(qcow2_size "$img")
	[ -n "$back" ] && opts="2 iv_sector:host backing:$back"
	loop "$img" || return 1
	map "$name" "0 $((q_size / 512)) vhdcrypt qcow2 $LOOP $ck 0 $opts" || return 1
	DEV=$(dev "$name")
}

# make_luks NAME CLUSTER [encrypt.* options]: $WORK/NAME.qcow2 with the
# passphrase pw-NAME, written with PATTERN, and its plaintext $WORK/NAME.raw.
make_luks() {
	local name=$1 img=$WORK/$1.qcow2
	luks_create "$img" 16M "pw-$name" "cluster_size=$2${3:+,$3}" &&
		fill_and_convert "$img" "pw-$name"
}

# cipher_case NAME CLUSTER [encrypt.* options]
cipher_case() {
	make_luks "$@" && map_luks "$1" "$WORK/$1.qcow2" "pw-$1" && same "$DEV" "$WORK/$1.raw"
}

# An encrypted overlay over a plain qcow2 base.
over_plain() {
	local base=$WORK/pbase.qcow2 img=$WORK/eover.qcow2
	qemu-img create -q -f qcow2 "$base" 16M &&
		qemu-io -f qcow2 -c "write -P 0x71 0 16M" "$base" >/dev/null &&
		luks_create "$img" 16M pw-over "cluster_size=64k" -b "$base" -F qcow2 &&
		fill_and_convert "$img" pw-over || return 1
	loop "$base" || return 1
	map pbase "0 32768 vhdcrypt qcow2 $LOOP none - 0" || return 1
	map_luks eover "$img" pw-over "$(dev pbase)" && same "$DEV" "$WORK/eover.raw"
}

# An encrypted overlay (4k clusters) over an encrypted base (512-byte
# clusters) with another passphrase and cipher: each layer is decrypted with
# its own key and its own host offsets.
over_encrypted() {
	local base=$WORK/ebase.qcow2 img=$WORK/eeover.qcow2
	luks_create "$base" 16M pw-base "cluster_size=512,encrypt.cipher-alg=aes-128" &&
		enc_args "$base" pw-base &&
		qemu-io "${ENC[@]}" -c "write -P 0x72 0 6M" -c "write -P 0x73 8M 8M" >/dev/null &&
		luks_create "$img" 16M pw-top "cluster_size=4k" -b "$base" -F qcow2 &&
		fill_and_convert "$img" pw-top pw-base || return 1
	map_luks ebase "$base" pw-base && map_luks eeover "$img" pw-top "$(dev ebase)" &&
		same "$DEV" "$WORK/eeover.raw"
}

# The same volume key given as ":64:logon:DESC": same data, and the table
# shows the key reference, never the key.
keyring() {
	local img=$WORK/aes256.qcow2 ck cipher key q_size desc=vhdcrypt:selftest-$$ name=$CASE_PREFIX-kr table
	python3 -c 'import ctypes; ctypes.CDLL("libkeyutils.so.1")' 2>/dev/null ||
		{ SKIP_REASON="libkeyutils.so.1 missing"; return 4; }
	# the image of the first case
	[ -f "$WORK/aes256.raw" ] || make_luks aes256 64k || return 1
	ck=$(luks_key "$img" pw-aes256) || return 1
	cipher=${ck% *} key=${ck#* }
	q_size=$(qcow2_size "$img")
	loop "$img" || return 1
	dm_track "$name"
	with_logon_key "$desc" "$key" dmsetup create --readonly "$name" --table \
		"0 $((q_size / 512)) vhdcrypt qcow2 $LOOP $cipher :$((${#key} / 2)):logon:$desc 0 1 iv_sector:host" ||
		return 1
	udev_settle
	same "/dev/mapper/$name" "$WORK/aes256.raw" || return 1
	table=$(dmsetup table "$name")
	echo "table: $table"
	case $table in
	*"$key"*) echo "the hex key is visible in dmsetup table"; return 1 ;;
	*":$((${#key} / 2)):logon:$desc"*) ;;
	*) echo "the key reference is missing from dmsetup table"; return 1 ;;
	esac
	# A key of the wrong size and a key that is not in the keyring are refused.
	dm_track "$name-bad"
	kmsg_mark
	if with_logon_key "$desc" "$key" dmsetup create --readonly "$name-bad" --table \
		"0 $((q_size / 512)) vhdcrypt qcow2 $LOOP $cipher :32:logon:$desc 0 1 iv_sector:host" 2>/dev/null; then
		echo "a 32-byte key reference to a 64-byte key was accepted"
		return 1
	fi
	failure_explained || return 1
	kmsg_mark
	if dmsetup create --readonly "$name-bad" --table \
		"0 $((q_size / 512)) vhdcrypt qcow2 $LOOP $cipher :64:logon:vhdcrypt:absent-$$ 0 1 iv_sector:host" 2>/dev/null; then
		echo "a key that is not in any keyring was accepted"
		return 1
	fi
	failure_explained
}

# QEMU's legacy "aes" encryption (crypt_method 1): AES-128-CBC, the key is
# the passphrase's first 16 bytes zero-padded, IV = plain64(guest sector).
# shellcheck disable=SC2034 # run_case reads SKIP_REASON
legacy_aes() {
	local img=$WORK/legacy.qcow2 pass=legacy-pass q_size key
	qemu-img create -q -f qcow2 --object "secret,id=sec0,data=$pass" -o encrypt.format=aes,encrypt.key-secret=sec0 \
		"$img" 16M 2>"$WORK/legacy.err" ||
		{ SKIP_REASON="qemu-img cannot create legacy AES images: $(head -n 1 "$WORK/legacy.err")"; return 4; }
	fill_and_convert "$img" "$pass" || return 1
	key=$(printf %s "$pass" | head -c 16 | od -An -tx1 | tr -d ' \n')
	while [ ${#key} -lt 32 ]; do key=${key}00; done
	q_size=$(qcow2_size "$img")
	loop "$img" || return 1
	map legacy "0 $((q_size / 512)) vhdcrypt qcow2 $LOOP aes-cbc-plain64 $key 0" &&
		same "$(dev legacy)" "$WORK/legacy.raw"
}

tap_plan 11
run_case "aes-256-xts-plain64 (QEMU default), 64k clusters" cipher_case aes256 64k
run_case "aes-256-xts-plain64, 512-byte clusters" cipher_case aes256c512 512
run_case "aes-128-xts-plain64, 64k clusters" cipher_case aes128 64k encrypt.cipher-alg=aes-128
run_case "aes-256-cbc-essiv:sha256, 64k clusters" cipher_case essiv 64k \
	encrypt.cipher-alg=aes-256,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,encrypt.ivgen-hash-alg=sha256
run_case "aes-256-cbc-plain64, 512-byte clusters" cipher_case cbc 512 encrypt.cipher-mode=cbc
run_case "serpent-256-xts-plain64, 64k clusters" cipher_case serpent 64k encrypt.cipher-alg=serpent-256
run_case "twofish-256-xts-plain64, 512-byte clusters" cipher_case twofish 512 encrypt.cipher-alg=twofish-256
run_case "encrypted overlay over a plain base" over_plain
run_case "encrypted overlay over an encrypted base, other passphrase" over_encrypted
run_case "volume key from the kernel keyring (logon key)" keyring
run_case "legacy AES (crypt_method 1)" legacy_aes
tap_done
